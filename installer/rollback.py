"""`rollback NAME`: the version that was current before this one becomes current again.

The target (from the receipts; else the highest installed version below it), once re-hashed against its signed
SHA256SUMS and its signature checked with today's trusted keys (--trust, else the kit's store) and their scopes,
becomes current again — phase 5, an atomic switch — and, for every site that version was pushed to, its registry
tags are moved back (phase 6). Its site outputs are still in KIT/deploy/<name>/<version>/. What could not be
reverted is reported (exit 10) while the switch stands. The highest version ever made current does not go down,
so the newer bundle can be installed again but an older one replayed from elsewhere is still refused.
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from installer.errors import BundleError, ContentMismatch, DeployError, InternalError, TrustError, UsageError
from installer.kit.layout import Kit, resolve_keys
from installer.kit.check import check_version
from installer.kit.lifecycle import previous_version
from installer.format.meta import MAX_META_BYTES, parse_meta
from installer.format.model import BundleHead, Outcome, Phase, SiteOptions, Status
from installer.site.owners import claims, conflicts, refuse, registry_tags, site_key
from installer.site.push import PushReport, SitePush, check_site_names
from installer.kit.receipts import Receipt
from installer.trust.store import TrustedKey


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did. The CLI turns it into text or JSON (installer/cli/rollback.py)."""

    name: str
    current: str                # the version made current again
    previous: str               # the version that was current
    signer: str                 # the fingerprint of the key trusted today that signed ``current``
    sites: List[PushReport]     # one per site registry whose tags were moved back (phase 6)
    outputs: List[str]          # its site outputs, deploy/<name>/<version>/<site>, relative to the kit
    receipt: str                # relative to the kit
    phases: List[str]           # the labels of the phases a rollback runs


def _sites(kit: Kit, name: str, version: str) -> Dict[str, SiteOptions]:
    """Site registry options recorded by the installs of this version (no secrets are ever recorded)."""
    sites: Dict[str, SiteOptions] = {}
    for receipt in kit.receipts_list(name):
        if receipt.version == version:
            sites.update(receipt.site_options)
    return sites


def _check_target(kit: Kit, name: str, target: str, trust: Sequence[str]) -> Tuple[BundleHead, TrustedKey, str]:
    """Issue 10 point 7: the version rollback makes current is checked against TODAY's trusted keys and their
    scopes (a key removed or narrowed since its install no longer vouches for it: exit 4), and re-hashed
    against its signed SHA256SUMS (exit 5) before anything changes. Returns (its meta, its signer)."""
    keys = resolve_keys(trust, kit)
    check = check_version(kit, name, target, keys)
    if check.problems:
        raise ContentMismatch("%s %s differs from what was signed; not rolling back to it" % (name, target),
                              check.lines())
    if check.trust_problems:
        raise TrustError("%s %s is not signed by a key trusted today for %s; not rolling back to it"
                         % (name, target, name), check.lines())
    if check.bundle_id is None:  # set once SHA256SUMS was read; unread, it is one of check.problems
        raise InternalError("%s %s was checked without its SHA256SUMS" % (name, target))
    meta = parse_meta(kit.read_member(name, target, "bundle.json", MAX_META_BYTES))
    signer = next(k for k in keys if k.fingerprint == check.signer)
    return meta, signer, check.bundle_id


def rollback(name: str, kit_dir: str, trust: Sequence[str] = ()) -> RollbackResult:
    kit = Kit.existing(kit_dir)
    with kit.locked():
        current = kit.current_version(name)
        if current is None:
            raise UsageError("%s has no current version in %s" % (name, kit_dir))
        target = previous_version(kit, name, current)
        if target is None:
            raise UsageError("%s %s is the only version installed; there is nothing to roll back to" % (name, current))
        meta, signer, bid = _check_target(kit, name, target, trust)
        sites = _sites(kit, name, target)
        owned = kit.owners()
        problems: List[str] = []
        for site, options in sorted(sites.items()):
            check_site_names(meta, site, options.strip_source_host)  # exit 3 before anything changes
            tags = registry_tags(meta, site, options.strip_source_host)
            problems += conflicts(owned.get(site_key(site), {}), tags, name, signer, site_key(site) + "/")
        refuse(problems, name, target)
        tree = kit.version_dir(name, target)
        outputs_dir = os.path.join(kit.deploy, name, target)
        outputs = sorted(os.listdir(outputs_dir)) if kit.real_dir(outputs_dir) else []  # checked before any change
        receipt = Receipt(kit, "rollback")
        receipt.update(action="rollback", name=name, version=target, previous=current, bundle_id=bid,
                       signer=signer.fingerprint)
        kit.switch_current(name, target)
        receipt.phase(Phase.SWITCH_CURRENT, Status.DONE, "current/%s -> %s (was %s)" % (name, target, current))
        not_reverted: List[str] = []
        moved: List[PushReport] = []
        for site, options in sorted(sites.items()):
            try:
                pusher = SitePush(tree, meta, site, strip_source_host=options.strip_source_host,
                                  registry_ca=options.registry_ca, insecure=options.insecure)
                report = pusher.move_tags()
                kit.record_owners(site_key(site),
                                  claims(registry_tags(meta, site, options.strip_source_host), meta, bid))
                moved.append(report)
            except BundleError as exc:
                not_reverted.append("tags on %s: %s" % (site, exc.message))
        if not_reverted:
            receipt.phase(Phase.TAGS_AND_APPLY, Status.FAILED, "; ".join(not_reverted))
            error = DeployError("rolled %s back to %s, but could not revert everything" % (name, target), not_reverted)
            receipt.finish(Outcome.ROLLED_BACK_INCOMPLETE, error)
            raise error
        receipt.phase(Phase.TAGS_AND_APPLY, Status.DONE if moved else Status.SKIPPED,
                      "; ".join("%s: %d tags moved back" % (m.site, m.tags_moved) for m in moved)
                      or "no site registry recorded")
        receipt.finish(Outcome.ROLLED_BACK)
        return RollbackResult(name=name, current=target, previous=current, signer=signer.fingerprint, sites=moved,
                              outputs=["deploy/%s/%s/%s" % (name, target, site) for site in outputs],
                              receipt=os.path.relpath(receipt.path, kit.root),
                              phases=[Phase.SWITCH_CURRENT.label, Phase.TAGS_AND_APPLY.label])
