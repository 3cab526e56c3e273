"""The option specs and the command record both front doors build from.

``installer.cli.main`` (argparse, standalone) and ``bundler.cli`` (click) make their options from these specs
and call the same functions, so their options are identical by design. A command's ``run`` returns a result
(a dataclass, or a plain dict for the small ones); ``to_json`` turns it into the JSON ``result`` and ``text``
into lines for people: results are rendered here in ``cli/`` and nowhere else.
"""

from typing import Any, Callable, Generic, List, Optional, Sequence, TypeVar

R = TypeVar("R")


class Opt:
    """One option or positional argument. ``metavar=None`` on an option makes it a flag."""

    def __init__(self, *flags: str, dest: str = "", metavar: Optional[str] = None, help: str = "",
                 required: bool = False, multiple: bool = False, choices: Sequence[str] = (),
                 default: Optional[str] = None) -> None:
        self.flags = flags
        self.positional = not flags[0].startswith("-")
        self.dest = dest or flags[0].lstrip("-").replace("-", "_")
        self.metavar = metavar if metavar or self.positional else None
        self.is_flag = not self.positional and metavar is None
        self.help = help
        # Positionals are required unless the spec says otherwise (then written [NAME]).
        self.required = required if not self.positional else required or metavar is None or not metavar.startswith("[")
        self.multiple = multiple
        self.choices = tuple(choices)
        self.default = default


def as_is(result: Any) -> Any:
    """The JSON of a result that is already a JSON-able dict."""
    return result


class Command(Generic[R]):
    def __init__(self, name: str, help: str, opts: List[Opt], run: Callable[..., R],
                 text: Callable[[R], List[str]], to_json: Callable[[R], Any] = as_is) -> None:
        self.name = name
        self.help = help
        self.opts = opts
        self.run = run
        self.text = text
        self.to_json = to_json


COMMON = [
    Opt("--json", help="print exactly one JSON object {ok, exit_code, error, result} on stdout"),
    Opt("--quiet", help="print nothing but errors (and, for build, the archive path)"),
]
TRUST_OPT = Opt("--trust", metavar="KEY_OR_DIR", multiple=True,
                help="trusted public key (.pub) or folder of them; default: the kit's trust store")
KIT_OPT = Opt("--kit", metavar="DIR", required=True, help="the Offline Kit folder")
