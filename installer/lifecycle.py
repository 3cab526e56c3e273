"""`rollback` and `gc`: moving between installed versions, and removing old ones.

rollback NAME: the version that was current before this one (from the receipts; else the highest
installed version below it) becomes current again — phase 5, an atomic switch — and, for every site
that version was pushed to, its registry tags are moved back (phase 6). Its site outputs are still in
KIT/deploy/<name>/<version>/. What could not be reverted is reported (exit 10) while the switch stands.
The highest version ever made current does not go down, so the newer bundle can be installed again
but an older one replayed from elsewhere is still refused.

gc: removes whole old versions — bundles/, deploy/ and secrets/ of each — keeping the N most recent
by SemVer and never the current one.
"""

import os
from typing import List, Optional

from .errors import BundleError, DeployError, UsageError
from .install import PHASES, Receipt
from .kit import Kit, remove_tree
from .meta import parse_meta
from .semver import Version


def _previous(kit: Kit, name: str, current: str) -> Optional[str]:
    for receipt in reversed(kit.receipts_list(name)):
        switched = any(p.get("phase") == 5 and p.get("status") == "done" for p in receipt.get("phases", []))
        if switched and receipt.get("version") == current and receipt.get("previous") not in (None, current):
            if receipt["previous"] in kit.versions(name):
                return receipt["previous"]
    older = [v for v in kit.versions(name) if Version(v) < Version(current)]
    return older[-1] if older else None


def _sites(kit: Kit, name: str, version: str) -> dict:
    """Site registry options recorded by the installs of this version (no secrets are ever recorded)."""
    sites = {}
    for receipt in kit.receipts_list(name):
        if receipt.get("version") == version:
            for site, options in (receipt.get("site_options") or {}).items():
                sites[site] = options
    return sites


def rollback(name: str, kit_dir: str) -> dict:
    from .push import SitePush

    kit = Kit(kit_dir)
    if not kit.exists():
        raise UsageError("the kit %s does not exist" % kit_dir)
    with kit.locked():
        current = kit.current_version(name)
        if current is None:
            raise UsageError("%s has no current version in %s" % (name, kit_dir))
        target = _previous(kit, name, current)
        if target is None:
            raise UsageError("%s %s is the only version installed; there is nothing to roll back to" % (name, current))
        tree = kit.version_dir(name, target)
        with open(os.path.join(tree, "bundle.json"), "rb") as fh:
            meta = parse_meta(fh.read())
        receipt = Receipt(kit, "rollback")
        receipt.doc.update(action="rollback", name=name, version=target, previous=current,
                           bundle_id=kit.bundle_id_of(name, target))
        kit.switch_current(name, target)
        receipt.phase(5, "done", "current/%s -> %s (was %s)" % (name, target, current))
        not_reverted: List[str] = []
        moved = []
        for site, options in sorted(_sites(kit, name, target).items()):
            try:
                pusher = SitePush(tree, meta, site, strip_source_host=options.get("strip_source_host", False),
                                  registry_ca=options.get("registry_ca"), insecure=tuple(options.get("insecure", ())))
                report = pusher.move_tags()
                moved.append({"site": site, "tags_moved": report["tags_moved"], "tags_current": report["tags_current"]})
            except BundleError as exc:
                not_reverted.append("tags on %s: %s" % (site, exc.message))
        outputs = sorted(os.listdir(os.path.join(kit.deploy, name, target))) if os.path.isdir(
            os.path.join(kit.deploy, name, target)) else []
        if not_reverted:
            receipt.phase(6, "failed", "; ".join(not_reverted))
            error = DeployError("rolled %s back to %s, but could not revert everything" % (name, target), not_reverted)
            receipt.finish("rolled-back-incomplete", error)
            raise error
        receipt.phase(6, "done" if moved else "skipped", "; ".join("%s: %d tags moved back" % (m["site"], m["tags_moved"])
                                                                   for m in moved) or "no site registry recorded")
        receipt.finish("rolled-back")
        return {"name": name, "current": target, "previous": current, "sites": moved,
                "outputs": ["deploy/%s/%s/%s" % (name, target, site) for site in outputs],
                "receipt": os.path.relpath(receipt.path, kit.root), "phases": [PHASES[5], PHASES[6]]}


def gc(kit_dir: str, keep: int = 3) -> dict:
    if keep < 1:
        raise UsageError("--keep takes a number of versions of at least 1")
    kit = Kit(kit_dir)
    if not kit.exists():
        raise UsageError("the kit %s does not exist" % kit_dir)
    removed = []
    freed = 0
    with kit.locked():
        for name in kit.names():
            current = kit.current_version(name)
            versions = kit.versions(name)  # ascending SemVer
            kept = set(versions[-keep:]) | ({current} if current else set())
            for version in versions:
                if version in kept:
                    continue
                for root in (kit.bundles, kit.deploy, kit.secrets):
                    folder = os.path.join(root, name, version)
                    if os.path.isdir(folder):
                        freed += sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
                        remove_tree(folder)
                removed.append("%s %s" % (name, version))
    return {"removed": removed, "bytes_freed": freed, "kept_per_name": keep}
