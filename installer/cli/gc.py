"""Remove old versions."""

from typing import Any, Dict, List, Optional

from installer.cli.options import KIT_OPT, Command, Opt
from installer.errors import UsageError
from installer.kit.lifecycle import GcResult, gc


def run_gc(kit: str, keep: Optional[str] = None, **_: Any) -> GcResult:
    try:
        n = int(keep) if keep is not None else 3
    except ValueError as exc:
        raise UsageError("--keep takes a number, not %r" % keep) from exc
    return gc(kit, n)


def json_gc(r: GcResult) -> Dict[str, Any]:
    return {"removed": list(r.removed), "bytes_freed": r.bytes_freed, "kept_per_name": r.kept_per_name}


def text_gc(r: GcResult) -> List[str]:
    if not r.removed:
        return ["nothing to remove (keeping %d versions of each bundle, and every current one)" % r.kept_per_name]
    return ["removed %s (%d bytes freed)" % (", ".join(r.removed), r.bytes_freed)]


COMMANDS = [Command("gc", "remove old versions (never the current one)",
            [KIT_OPT, Opt("--keep", metavar="N", help="versions of each bundle to keep (default 3)")],
            run_gc, text_gc, json_gc)]
