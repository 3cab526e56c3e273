"""`offline-bundle` (alias `bundle`): the click front door.

Build-side commands live here; the installer's commands are generated from the same option
specs as the standalone argparse CLI and call the same functions (installer.cli.commands).
"""

import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import click


def _check_installer_package() -> None:
    """pypa/installer is also imported as `installer`; refuse to run on top of it."""
    import installer

    if getattr(installer, "OFFLINE_BUNDLE_FORMAT", None) != 1:
        where = getattr(installer, "__file__", None) or "an unknown location"
        sys.stderr.write(
            "offline-bundle: another package named 'installer' (%s; probably pypa/installer, a poetry or pdm "
            "dependency) shadows offline-bundle's own; install offline-bundle with pipx or into a dedicated "
            "virtual environment\n" % where)
        sys.exit(1)


_check_installer_package()

from installer import TOOL_NAME, __version__  # noqa: E402
from installer.cli.main import execute, install_signal_handlers, report_error  # noqa: E402
from installer.cli.commands import COMMANDS, COMMON, Command, Opt  # noqa: E402
from installer.errors import UsageError  # noqa: E402


def _opt_decorator(opt: Opt) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if opt.positional:
        return click.argument(opt.dest, metavar=opt.metavar, required=opt.required)
    if opt.is_flag:
        return click.option(*opt.flags, opt.dest, is_flag=True, help=opt.help)
    extra: Dict[str, Any] = {}  # click's own default unless one is given
    if opt.multiple:
        extra["default"] = ()
    elif opt.default is not None:  # click >= 8.3 treats an explicit None as a value, defeating required=
        extra["default"] = opt.default
    return click.option(*opt.flags, opt.dest, metavar=opt.metavar, help=opt.help, required=opt.required,
                        multiple=opt.multiple, type=click.Choice(opt.choices) if opt.choices else None, **extra)


def make_command(cmd: Command[Any], name: str, last_line: str = "") -> click.Command:
    def callback(**kwargs: Any) -> None:
        as_json = kwargs.pop("json")
        quiet = kwargs.pop("quiet")
        for opt in cmd.opts:
            if opt.multiple:
                kwargs[opt.dest] = list(kwargs[opt.dest])
        raise SystemExit(execute(cmd, kwargs, as_json, quiet, TOOL_NAME, last_line or None))

    for opt in reversed(cmd.opts + COMMON):
        callback = _opt_decorator(opt)(callback)
    return click.command(name, help=cmd.help, short_help=cmd.help)(callback)


@click.group(name=TOOL_NAME, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=TOOL_NAME)
def cli() -> None:
    """Build, verify and install signed offline bundles for air-gapped sites."""


def _register(commands: List[Command[Any]]) -> None:
    groups: Dict[str, click.Group] = {}
    for cmd in commands:
        words = cmd.name.split()
        if len(words) == 1:
            cli.add_command(make_command(cmd, words[0], "archive" if cmd.name in ("build", "seal") else ""))
            continue
        if words[0] not in groups:
            groups[words[0]] = click.Group(words[0], help="%s commands" % words[0])
            cli.add_command(groups[words[0]])
        groups[words[0]].add_command(make_command(cmd, words[1]))


def _build_commands() -> List[Command[Any]]:
    from bundler.commands import BUILD_COMMANDS

    return BUILD_COMMANDS


_register(_build_commands() + COMMANDS)


def main(argv: Optional[Sequence[str]] = None) -> None:
    install_signal_handlers()
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        cli.main(args=args, prog_name=TOOL_NAME, standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__.startswith("NoArgsIsHelp"):  # click >= 8.2, a bare group: its help, exit 0
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(0)
        # One sentence, exit 2: no usage dump.
        hint = " (see '%s --help')" % exc.ctx.command_path if exc.ctx else ""
        sys.exit(report_error(UsageError(exc.format_message().rstrip(".") + hint), "--json" in args))
    except click.Abort:
        sys.exit(report_error(UsageError("aborted"), "--json" in args))
    except SystemExit:
        raise
    sys.exit(0)
