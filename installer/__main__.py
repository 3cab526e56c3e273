from installer.cli.main import entry

entry()
