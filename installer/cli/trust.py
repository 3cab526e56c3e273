"""The kit's trust store."""

import os
from typing import List, Optional, Sequence

from installer.cli.options import KIT_OPT, Command, Opt
from installer.errors import UsageError
from installer.kit.layout import Kit
from installer.trust.signing import load_public_key
from installer.trust.store import TrustStore


def run_trust_add(file: str, kit: str, names: Sequence[str] = (), not_after: Optional[str] = None, **_) -> dict:
    if not os.path.isfile(file):
        raise UsageError("the key %s does not exist" % file)
    load_public_key(file)
    k = Kit(kit)
    k.prepare()  # a new kit is made here; an existing one must pass Kit.check first
    with k.locked():
        return TrustStore(k.trust).add(file, list(names), not_after).to_json()


def run_trust_remove(fp: str, kit: str, **_) -> dict:
    k = Kit.existing(kit)
    with k.locked():
        if not TrustStore(k.trust).remove(fp):
            raise UsageError("no key %s is in the kit's trust store" % fp)
    return {"removed": fp}


def run_trust_list(kit: str, **_) -> dict:
    return {"keys": [k.to_json() for k in TrustStore(Kit.existing(kit).trust).keys()]}


def text_trust(r: dict) -> List[str]:
    if "removed" in r:
        return ["removed %s" % r["removed"]]
    keys = r["keys"] if "keys" in r else [r]
    return ["%s  %s  names %s%s" % (k["fingerprint"], k["algorithm"], ",".join(k["names"]),
                                    "  until %s" % k["not_after"] if k["not_after"] else "")
            for k in keys] or ["no trusted keys"]


COMMANDS = [
    Command("trust add", "trust a public key for this kit",
            [Opt("file", metavar="FILE"), KIT_OPT,
             Opt("--names", metavar="GLOB", multiple=True, help="bundle names this key may sign (default: all)"),
             Opt("--not-after", metavar="DATE", help="last day (YYYY-MM-DD) this key is trusted")],
            run_trust_add, text_trust),
    Command("trust remove", "stop trusting a key", [Opt("fp", metavar="FP"), KIT_OPT], run_trust_remove, text_trust),
    Command("trust list", "list the kit's trusted keys", [KIT_OPT], run_trust_list, text_trust),
]
