"""Make the previous version current again."""

from typing import TYPE_CHECKING, Any, Dict, List, Sequence

from installer.cli.options import KIT_OPT, TRUST_OPT, Command, Opt

if TYPE_CHECKING:
    from installer.rollback import RollbackResult


def run_rollback(name: str, kit: str, trust: Sequence[str] = (), **_: Any) -> "RollbackResult":
    from installer.rollback import rollback

    return rollback(name, kit, trust)


def rollback_json(r: "RollbackResult") -> Dict[str, Any]:
    return {"name": r.name, "current": r.current, "previous": r.previous, "signer": r.signer,
            "sites": [{"site": s.site, "tags_moved": s.tags_moved, "tags_current": s.tags_current} for s in r.sites],
            "outputs": list(r.outputs), "receipt": r.receipt, "phases": list(r.phases)}


def text_rollback(r: "RollbackResult") -> List[str]:
    lines = ["rolled %s back: current %s (was %s)" % (r.name, r.current, r.previous)]
    lines += ["  %s: %d tags moved back" % (s.site, s.tags_moved) for s in r.sites]
    lines += ["  site outputs: %s (re-apply them with its COMMANDS.txt)" % o for o in r.outputs]
    return lines


COMMANDS = [Command("rollback", "make the previous version current again and move registry tags back",
            [Opt("name", metavar="NAME"), KIT_OPT, TRUST_OPT], run_rollback, text_rollback, rollback_json)]
