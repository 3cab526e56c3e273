"""The kit's bundles, versions and last installs."""

import os
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from installer.cli.options import KIT_OPT, TRUST_OPT, Command, Opt
from installer.format.model import Json, Outcome, Phase, ReceiptRecord
from installer.kit.check import VersionCheck
from installer.kit.layout import Kit, resolve_keys


@dataclass(frozen=True)
class VersionStatus:
    """One installed version. ``signer`` and ``installed_at`` are what its install receipt says (None without
    one); ``integrity`` is its check against the signed SHA256SUMS, with --verify."""

    version: str
    bundle_id: Optional[str]
    signer: Json
    installed_at: Json
    current: bool
    integrity: Optional[VersionCheck] = None


@dataclass(frozen=True)
class OutputStatus:
    """One site's outputs rendered for a version (KIT/deploy/<name>/<version>/<site>)."""

    version: str
    site: str
    folder: str               # relative to the kit
    files: Tuple[str, ...]    # relative to the folder, sorted


@dataclass(frozen=True)
class BundleStatus:
    name: str
    current: Optional[str]
    highest_current: Optional[str]
    versions: Tuple[VersionStatus, ...]
    outputs: Tuple[OutputStatus, ...]
    last: Optional[ReceiptRecord]  # the newest receipt of this name


@dataclass(frozen=True)
class KitStatus:
    kit: str
    bundles: Tuple[BundleStatus, ...]


def run_status(kit: str, signer: Optional[str] = None, verify: bool = False, trust: Sequence[str] = (),
               **_: Any) -> KitStatus:
    k = Kit.existing(kit)
    result = _status(k, signer)
    if verify:
        from installer.kit.check import check_kit, summary_error

        checks = {(c.name, c.version): c for c in check_kit(k, resolve_keys(trust, k))}
        result = _with_integrity(result, checks)
        failure = summary_error(list(checks.values()))
        if failure is not None:
            cls, sentence, lines = failure
            raise cls(sentence, lines)
    return result


def _with_integrity(status: KitStatus, checks: Mapping[Tuple[str, str], VersionCheck]) -> KitStatus:
    return replace(status, bundles=tuple(
        replace(b, versions=tuple(replace(v, integrity=checks[(b.name, v.version)]) for v in b.versions))
        for b in status.bundles))


def _admitted(receipts: Sequence[ReceiptRecord]) -> Dict[str, Tuple[Json, Json]]:
    """version -> (who signed it, when it was installed), from the receipts that admitted it."""
    admitted: Dict[str, Tuple[Json, Json]] = {}
    for receipt in receipts:
        if receipt.version is None:
            continue  # an install that failed before its head was read admitted nothing
        promoted = [p for p in receipt.phases if p.done(Phase.PROMOTE)]
        if promoted:
            admitted[receipt.version] = (receipt.signer, receipt.finished or promoted[0].at)
        elif receipt.outcome in (Outcome.INSTALLED, Outcome.ALREADY_INSTALLED) and receipt.version not in admitted:
            admitted[receipt.version] = (receipt.signer, receipt.finished)
    return admitted


def _outputs(k: Kit, name: str) -> List[OutputStatus]:
    deploy_root = os.path.join(k.deploy, name)
    outputs = []
    for version in k.versions(name):
        folder = os.path.join(deploy_root, version)
        if os.path.isdir(folder):
            for site in sorted(os.listdir(folder)):
                if ".tmp-" in site or ".old-" in site:
                    continue
                files = sorted(os.path.relpath(os.path.join(d, f), os.path.join(folder, site))
                               for d, _, fs in os.walk(os.path.join(folder, site)) for f in fs)
                outputs.append(OutputStatus(version, site, os.path.relpath(os.path.join(folder, site), k.root),
                                            tuple(files)))
    return outputs


def _status(k: Kit, signer: Optional[str]) -> KitStatus:
    bundles = []
    for name in k.names():
        receipts = k.receipts_list(name)
        admitted = _admitted(receipts)
        current = k.current_version(name)
        versions = []
        for version in k.versions(name):
            who, when = admitted.get(version, (None, None))
            if signer and who != signer:
                continue
            versions.append(VersionStatus(version, k.bundle_id_of(name, version), who, when, version == current))
        if signer and not versions:
            continue
        bundles.append(BundleStatus(name, current, k.highest_current(name), tuple(versions),
                                    tuple(_outputs(k, name)), receipts[-1] if receipts else None))
    return KitStatus(k.root, tuple(bundles))


def _version_json(v: VersionStatus) -> Dict[str, Json]:
    out: Dict[str, Json] = {"version": v.version, "bundle_id": v.bundle_id, "signer": v.signer,
                            "installed_at": v.installed_at, "current": v.current}
    if v.integrity is not None:
        check = v.integrity
        out["integrity"] = "ok" if check.ok else check.problems + check.trust_problems
    return out


def _last_json(last: ReceiptRecord) -> Dict[str, Json]:
    return {"outcome": last.outcome, "version": last.version, "finished": last.finished,
            "error": last.error.get("message") if isinstance(last.error, dict) else None,
            "phases": [{"phase": p.phase, "name": p.name, "status": p.status} for p in last.phases]}


def json_status(r: KitStatus) -> Dict[str, Json]:
    return {"kit": r.kit, "bundles": [{
        "name": b.name, "current": b.current, "highest_current": b.highest_current,
        "versions": [_version_json(v) for v in b.versions],
        "outputs": [{"version": o.version, "site": o.site, "folder": o.folder, "files": list(o.files)}
                    for o in b.outputs],
        "last": _last_json(b.last) if b.last else None,
    } for b in r.bundles]}


def text_status(r: KitStatus) -> List[str]:
    if not r.bundles:
        return ["kit %s holds no bundles" % r.kit]
    lines = ["kit %s" % r.kit]
    for b in r.bundles:
        lines.append("%s: current %s" % (b.name, b.current or "none"))
        for v in b.versions:
            lines.append("  %s %-16s bundle_id %s  signer %s%s%s" % (
                "*" if v.current else " ", v.version, (v.bundle_id or "?")[:16], (v.signer or "none"),
                "  installed %s" % v.installed_at if v.installed_at else "",
                "  verified: every file matches its signed SHA256SUMS" if v.integrity and v.integrity.ok else ""))
        for o in b.outputs:
            lines.append("  outputs for %s, site %s: %s (%d files)" % (o.version, o.site, o.folder, len(o.files)))
        last = b.last
        if last:
            error = _last_json(last)["error"]
            lines.append("  last install: %s %s at %s%s" % (last.outcome, last.version, last.finished,
                                                            ": " + error if error else ""))
    return lines


COMMANDS = [Command("status", "show the kit's bundles, versions and last installs",
            [KIT_OPT, Opt("--signer", metavar="FP", help="only versions admitted by this key fingerprint"),
             Opt("--verify", help="also re-hash every installed version against its signed SHA256SUMS and today's "
                                  "trusted keys (exit 5 or 4 when anything differs)"), TRUST_OPT],
            run_status, text_status, json_status)]
