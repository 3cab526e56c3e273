"""Make the previous version current again."""

from typing import List, Sequence

from installer.cli.options import KIT_OPT, TRUST_OPT, Command, Opt


def run_rollback(name: str, kit: str, trust: Sequence[str] = (), **_) -> dict:
    from installer.rollback import rollback

    return rollback(name, kit, trust)


def text_rollback(r: dict) -> List[str]:
    lines = ["rolled %s back: current %s (was %s)" % (r["name"], r["current"], r["previous"])]
    lines += ["  %s: %d tags moved back" % (s["site"], s["tags_moved"]) for s in r["sites"]]
    lines += ["  site outputs: %s (re-apply them with its COMMANDS.txt)" % o for o in r["outputs"]]
    return lines


COMMANDS = [Command("rollback", "make the previous version current again and move registry tags back",
            [Opt("name", metavar="NAME"), KIT_OPT, TRUST_OPT], run_rollback, text_rollback)]
