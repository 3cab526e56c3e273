"""The kit's trust store."""

import os
from typing import Any, Dict, List, Optional, Sequence

from installer.cli.options import KIT_OPT, Command, Opt
from installer.errors import UsageError
from installer.format.model import Json
from installer.kit.layout import Kit
from installer.trust.signing import load_public_key
from installer.trust.store import TrustedKey, TrustStore


def run_trust_add(file: str, kit: str, names: Sequence[str] = (), not_after: Optional[str] = None,
                  **_: Any) -> TrustedKey:
    if not os.path.isfile(file):
        raise UsageError("the key %s does not exist" % file)
    load_public_key(file)
    k = Kit(kit)
    k.prepare()  # a new kit is made here; an existing one must pass Kit.check first
    with k.locked():
        return TrustStore(k.trust).add(file, list(names), not_after)


def run_trust_remove(fp: str, kit: str, **_: Any) -> str:
    """The fingerprint removed."""
    k = Kit.existing(kit)
    with k.locked():
        if not TrustStore(k.trust).remove(fp):
            raise UsageError("no key %s is in the kit's trust store" % fp)
    return fp


def run_trust_list(kit: str, **_: Any) -> List[TrustedKey]:
    return TrustStore(Kit.existing(kit).trust).keys()


def _key_line(k: TrustedKey) -> str:
    return "%s  %s  names %s%s" % (k.fingerprint, k.key.algorithm, ",".join(k.names),
                                   "  until %s" % k.not_after if k.not_after else "")


def json_trust_add(k: TrustedKey) -> Dict[str, Json]:
    return dict(k.to_json())


def text_trust_add(k: TrustedKey) -> List[str]:
    return [_key_line(k)]


def json_trust_remove(fp: str) -> Dict[str, Json]:
    return {"removed": fp}


def text_trust_remove(fp: str) -> List[str]:
    return ["removed %s" % fp]


def json_trust_list(keys: List[TrustedKey]) -> Dict[str, Json]:
    return {"keys": [k.to_json() for k in keys]}


def text_trust_list(keys: List[TrustedKey]) -> List[str]:
    return [_key_line(k) for k in keys] or ["no trusted keys"]


COMMANDS: List[Command[Any]] = [
    Command("trust add", "trust a public key for this kit",
            [Opt("file", metavar="FILE"), KIT_OPT,
             Opt("--names", metavar="GLOB", multiple=True, help="bundle names this key may sign (default: all)"),
             Opt("--not-after", metavar="DATE", help="last day (YYYY-MM-DD) this key is trusted")],
            run_trust_add, text_trust_add, json_trust_add),
    Command("trust remove", "stop trusting a key", [Opt("fp", metavar="FP"), KIT_OPT], run_trust_remove,
            text_trust_remove, json_trust_remove),
    Command("trust list", "list the kit's trusted keys", [KIT_OPT], run_trust_list, text_trust_list, json_trust_list),
]
