"""The standalone installer's command line (argparse; standard library only).

`python3 -I installer.pyz install ...` and `python -m installer ...` land here; `offline-bundle`
(click) exposes the same commands through ``execute``.
"""

import argparse
import json
import os
import signal
import sys
import traceback
from typing import Any, Dict, List, NoReturn, Optional

from installer import OFFLINE_BUNDLE_FORMAT, TOOL_NAME, __version__
from installer.cli.commands import COMMANDS
from installer.cli.options import COMMON, Command, Opt
from installer.errors import BundleError, InternalError, Interrupted, LocalEnvironmentError, UsageError
from installer.textsafe import printable


def _on_signal(signum: int, _frame: object) -> NoReturn:
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _on_signal)


def envelope(ok: bool, code: int, error: Optional[BundleError], result: Any) -> str:
    return json.dumps({"ok": ok, "exit_code": code, "error": error.to_json() if error else None,
                       "result": result}, sort_keys=True, indent=2, ensure_ascii=True)  # ESC stays \u001b


def _as_bundle_error(exc: BaseException) -> BundleError:
    if isinstance(exc, BundleError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted(signal.SIGINT)
    if isinstance(exc, OSError):
        where = " (%s)" % exc.filename if exc.filename else ""
        return LocalEnvironmentError("%s%s" % (exc.strerror or exc, where))
    return InternalError("internal error: %s: %s (set OFFLINE_BUNDLE_DEBUG=1 for a traceback)"
                         % (type(exc).__name__, exc))


def report_error(err: BundleError, as_json: bool, prog: str = TOOL_NAME) -> int:
    if as_json:
        print(envelope(False, err.exit_code, err, None))  # json.dumps escapes every control character
    else:
        # Messages quote member names, paths and registry answers: escaped, they cannot drive the terminal.
        lines = ["%s: %s" % (prog, printable(err.message))] + ["  - %s" % printable(p) for p in err.problems]
        sys.stderr.write("\n".join(lines) + "\n")
    return err.exit_code


def execute(cmd: "Command[Any]", kwargs: Dict[str, Any], as_json: bool, quiet: bool, prog: str = TOOL_NAME,
            last_line: Optional[str] = None) -> int:
    """Run one command; print its result or its one-sentence error; return the exit code."""
    try:
        result = cmd.run(quiet=quiet, **kwargs)
    except BaseException as exc:  # the one handler: every failure becomes a sentence and an exit code
        if isinstance(exc, SystemExit):
            raise
        if os.environ.get("OFFLINE_BUNDLE_DEBUG") and not isinstance(exc, BundleError):
            sys.stderr.write("".join(printable(line) + "\n" for line in traceback.format_exc().splitlines()))
        return report_error(_as_bundle_error(exc), as_json, prog)
    if as_json:
        print(envelope(True, 0, None, cmd.to_json(result)))
    elif not quiet:
        lines = cmd.text(result)
        if lines:
            # One list item is one line: a newline inside an item is data (escaped), never a line of ours.
            print("\n".join(printable(line) for line in lines))
    if last_line and not as_json:
        data = cmd.to_json(result)
        if isinstance(data, dict) and last_line in data:
            print(printable(str(data[last_line])))
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one sentence, exit 2: no usage dump
        raise UsageError("%s (see '%s --help')" % (message, self.prog))


def add_opt(parser: argparse.ArgumentParser, opt: Opt) -> None:
    if opt.positional:
        parser.add_argument(opt.dest, metavar=opt.metavar, help=opt.help, nargs=None if opt.required else "?")
    elif opt.is_flag:
        parser.add_argument(*opt.flags, dest=opt.dest, action="store_true", help=opt.help)
    else:
        parser.add_argument(*opt.flags, dest=opt.dest, metavar=opt.metavar, help=opt.help,
                            required=opt.required, action="append" if opt.multiple else "store",
                            default=[] if opt.multiple else opt.default,
                            choices=opt.choices or None)


def build_parser(prog: str, commands: List["Command[Any]"]) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="verify, unpack and deploy offline bundles")
    parser.add_argument("--version", action="version", version="%s %s" % (TOOL_NAME, __version__))
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    groups: Dict[str, Any] = {}
    for cmd in commands:
        words = cmd.name.split()
        container = subs
        if len(words) == 2:
            if words[0] not in groups:
                group = subs.add_parser(words[0], help="%s commands" % words[0])
                groups[words[0]] = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=_Parser)
            container = groups[words[0]]
        sub = container.add_parser(words[-1], help=cmd.help, description=cmd.help)
        for opt in cmd.opts + COMMON:
            add_opt(sub, opt)
        sub.set_defaults(_command=cmd)
    return parser


def main(argv: Optional[List[str]] = None, prog: str = "offline-bundle-installer") -> int:
    install_signal_handlers()
    argv = sys.argv[1:] if argv is None else argv
    as_json = "--json" in argv
    try:
        args = build_parser(prog, COMMANDS).parse_args(argv)
        if getattr(args, "_command", None) is None:
            raise UsageError("name a command (see '%s --help')" % prog)
    except UsageError as err:
        return report_error(err, as_json, prog)
    cmd: Command[Any] = args._command
    kwargs = {o.dest: getattr(args, o.dest) for o in cmd.opts}
    return execute(cmd, kwargs, args.json, args.quiet, prog)


def entry() -> None:
    if OFFLINE_BUNDLE_FORMAT != 1:  # pragma: no cover - guards a mixed installation
        sys.exit(1)
    sys.exit(main())
