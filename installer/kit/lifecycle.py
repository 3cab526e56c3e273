"""`gc` and the kit side of `rollback`: which version was current before, and removing old ones.

gc: removes whole old versions — bundles/, deploy/ and secrets/ of each — keeping the N most recent
by SemVer and never the current one. rollback itself (installer/rollback.py) also moves site tags.
"""

import os
import stat
from dataclasses import dataclass
from typing import List, Optional, Tuple

from installer.errors import UsageError
from installer.kit.layout import Kit, remove_tree
from installer.format.model import Phase
from installer.format.semver import Version


def previous_version(kit: Kit, name: str, current: str) -> Optional[str]:
    """The version rollback returns to: the one current before ``current`` (receipts), else the highest below it."""
    for receipt in reversed(kit.receipts_list(name)):
        if (receipt.done(Phase.SWITCH_CURRENT) and receipt.version == current
                and receipt.previous not in (None, current)):
            previous: str = receipt.previous
            if previous in kit.versions(name):
                return previous
    older = [v for v in kit.versions(name) if Version(v) < Version(current)]
    return older[-1] if older else None


def _size_of(folder: str) -> int:
    """Bytes of the regular files under a real folder (links are not followed, nor counted)."""
    total = 0
    for d, _dirs, files in os.walk(folder):
        for f in files:
            st = os.lstat(os.path.join(d, f))
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


@dataclass(frozen=True)
class GcResult:
    """What gc removed: "name version" labels, the bytes they held, and how many versions of each name it keeps."""

    removed: List[str]
    bytes_freed: int
    kept_per_name: int


def gc(kit_dir: str, keep: int = 3) -> GcResult:
    if keep < 1:
        raise UsageError("--keep takes a number of versions of at least 1")
    kit = Kit.existing(kit_dir)
    removed: List[str] = []
    freed = 0
    with kit.locked():
        # every folder is checked (no link on the way) before the first one is removed
        plan: List[Tuple[str, List[str]]] = []
        for name in kit.names():
            current = kit.current_version(name)
            versions = kit.versions(name)  # ascending SemVer; a link among them is exit 9
            kept = set(versions[-keep:]) | ({current} if current else set())
            for version in versions:
                if version not in kept:
                    inside = [_inside_kit(kit, root, name, version) for root in (kit.bundles, kit.deploy, kit.secrets)]
                    plan.append(("%s %s" % (name, version), [f for f in inside if f is not None]))
        for label, folders in plan:
            for folder in folders:
                freed += _size_of(folder)
                remove_tree(folder)
            removed.append(label)
    return GcResult(removed, freed, keep)


def _inside_kit(kit: Kit, root: str, name: str, version: str) -> Optional[str]:
    """root/<name>/<version> when both are real folders; a link on the way is exit 9, never followed."""
    folder = os.path.join(root, name, version)
    return folder if kit.real_dir(os.path.dirname(folder)) and kit.real_dir(folder) else None
