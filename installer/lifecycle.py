"""`rollback` and `gc`: moving between installed versions, and removing old ones.

rollback NAME: the version that was current before this one (from the receipts; else the highest
installed version below it), once re-hashed against its signed SHA256SUMS and its signature checked
with today's trusted keys (--trust, else the kit's store) and their scopes, becomes current again — phase 5, an atomic switch — and, for every site
that version was pushed to, its registry tags are moved back (phase 6). Its site outputs are still in
KIT/deploy/<name>/<version>/. What could not be reverted is reported (exit 10) while the switch stands.
The highest version ever made current does not go down, so the newer bundle can be installed again
but an older one replayed from elsewhere is still refused.

gc: removes whole old versions — bundles/, deploy/ and secrets/ of each — keeping the N most recent
by SemVer and never the current one.
"""

import os
import stat
from typing import List, Optional, Sequence

from .errors import BundleError, ContentMismatch, DeployError, TrustError, UsageError
from .install import PHASES, Receipt
from .kit import Kit, remove_tree
from .meta import MAX_META_BYTES, parse_meta
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


def _check_target(kit: Kit, name: str, target: str, trust: Sequence[str]):
    """Issue 10 point 7: the version rollback makes current is checked against TODAY's trusted keys and their
    scopes (a key removed or narrowed since its install no longer vouches for it: exit 4), and re-hashed
    against its signed SHA256SUMS (exit 5) before anything changes. Returns (its meta, its signer)."""
    from .install import resolve_keys
    from .kitcheck import check_version

    keys = resolve_keys(trust, kit)
    check = check_version(kit, name, target, keys)
    if check.problems:
        raise ContentMismatch("%s %s differs from what was signed; not rolling back to it" % (name, target),
                              check.lines())
    if check.trust_problems:
        raise TrustError("%s %s is not signed by a key trusted today for %s; not rolling back to it"
                         % (name, target, name), check.lines())
    meta = parse_meta(kit.read_member(name, target, "bundle.json", MAX_META_BYTES))
    signer = next(k for k in keys if k.fingerprint == check.signer)
    return meta, signer, check.bundle_id


def rollback(name: str, kit_dir: str, trust: Sequence[str] = ()) -> dict:
    from .owners import claims, conflicts, refuse, registry_tags, site_key
    from .push import SitePush

    kit = Kit.existing(kit_dir)
    with kit.locked():
        current = kit.current_version(name)
        if current is None:
            raise UsageError("%s has no current version in %s" % (name, kit_dir))
        target = _previous(kit, name, current)
        if target is None:
            raise UsageError("%s %s is the only version installed; there is nothing to roll back to" % (name, current))
        meta, signer, bid = _check_target(kit, name, target, trust)
        sites = _sites(kit, name, target)
        owned = kit.owners()
        problems = []
        for site, options in sorted(sites.items()):
            tags = registry_tags(meta, site, options.get("strip_source_host", False))
            problems += conflicts(owned.get(site_key(site), {}), tags, name, signer, site_key(site) + "/")
        refuse(problems, name, target)
        tree = kit.version_dir(name, target)
        outputs_dir = os.path.join(kit.deploy, name, target)
        outputs = sorted(os.listdir(outputs_dir)) if kit.real_dir(outputs_dir) else []  # checked before any change
        receipt = Receipt(kit, "rollback")
        receipt.doc.update(action="rollback", name=name, version=target, previous=current, bundle_id=bid,
                           signer=signer.fingerprint)
        kit.switch_current(name, target)
        receipt.phase(5, "done", "current/%s -> %s (was %s)" % (name, target, current))
        not_reverted: List[str] = []
        moved = []
        for site, options in sorted(sites.items()):
            try:
                pusher = SitePush(tree, meta, site, strip_source_host=options.get("strip_source_host", False),
                                  registry_ca=options.get("registry_ca"), insecure=tuple(options.get("insecure", ())))
                report = pusher.move_tags()
                kit.record_owners(site_key(site), claims(registry_tags(meta, site, options.get("strip_source_host",
                                                                                                False)), meta, bid))
                moved.append({"site": site, "tags_moved": report["tags_moved"], "tags_current": report["tags_current"]})
            except BundleError as exc:
                not_reverted.append("tags on %s: %s" % (site, exc.message))
        if not_reverted:
            receipt.phase(6, "failed", "; ".join(not_reverted))
            error = DeployError("rolled %s back to %s, but could not revert everything" % (name, target), not_reverted)
            receipt.finish("rolled-back-incomplete", error)
            raise error
        receipt.phase(6, "done" if moved else "skipped", "; ".join("%s: %d tags moved back" % (m["site"], m["tags_moved"])
                                                                   for m in moved) or "no site registry recorded")
        receipt.finish("rolled-back")
        return {"name": name, "current": target, "previous": current, "sites": moved, "signer": signer.fingerprint,
                "outputs": ["deploy/%s/%s/%s" % (name, target, site) for site in outputs],
                "receipt": os.path.relpath(receipt.path, kit.root), "phases": [PHASES[5], PHASES[6]]}


def _size_of(folder: str) -> int:
    """Bytes of the regular files under a real folder (links are not followed, nor counted)."""
    total = 0
    for d, _dirs, files in os.walk(folder):
        for f in files:
            st = os.lstat(os.path.join(d, f))
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def gc(kit_dir: str, keep: int = 3) -> dict:
    if keep < 1:
        raise UsageError("--keep takes a number of versions of at least 1")
    kit = Kit.existing(kit_dir)
    removed = []
    freed = 0
    with kit.locked():
        plan = []  # every folder is checked (no link on the way) before the first one is removed
        for name in kit.names():
            current = kit.current_version(name)
            versions = kit.versions(name)  # ascending SemVer; a link among them is exit 9
            kept = set(versions[-keep:]) | ({current} if current else set())
            for version in versions:
                if version not in kept:
                    folders = [_inside_kit(kit, root, name, version) for root in (kit.bundles, kit.deploy, kit.secrets)]
                    plan.append(("%s %s" % (name, version), [f for f in folders if f is not None]))
        for label, folders in plan:
            for folder in folders:
                freed += _size_of(folder)
                remove_tree(folder)
            removed.append(label)
    return {"removed": removed, "bytes_freed": freed, "kept_per_name": keep}


def _inside_kit(kit: Kit, root: str, name: str, version: str) -> Optional[str]:
    """root/<name>/<version> when both are real folders; a link on the way is exit 9, never followed."""
    folder = os.path.join(root, name, version)
    return folder if kit.real_dir(os.path.dirname(folder)) and kit.real_dir(folder) else None
