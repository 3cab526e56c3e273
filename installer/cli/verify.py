"""Verify an archive, or with --kit what is installed."""

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from installer.cli.options import TRUST_OPT, Command, Opt
from installer.errors import UsageError
from installer.format.model import Json
from installer.format.semver import is_semver
from installer.kit.check import VersionCheck
from installer.kit.layout import Kit, resolve_keys
from installer.trust.provenance import PROVENANCE_PATH
from installer.trust.verify import VerifyReport, verify_file


TARGET_RE = re.compile(r"([a-z0-9][a-z0-9-]{0,62})(?:@(.+))?")  # NAME[@VERSION], used with fullmatch


@dataclass(frozen=True)
class ArchiveVerified:
    """verify ARCHIVE: the report, and the path as the user named it."""

    archive: str
    report: VerifyReport


@dataclass(frozen=True)
class KitVerified:
    """verify --kit: every installed version checked (all of them good, or the command failed)."""

    kit: str
    versions: Tuple[VersionCheck, ...]


VerifyResult = Union[ArchiveVerified, KitVerified]


def run_verify(archive: Optional[str] = None, trust: Sequence[str] = (), kit: Optional[str] = None,
               quiet: bool = False, **_: Any) -> VerifyResult:
    """An archive (signature, every checksum, structure), or with --kit and no archive (or NAME[@VERSION])
    the installed versions themselves, re-hashed against their signed SHA256SUMS and today's keys."""
    target = _kit_target(archive, kit)
    if kit is not None and target is not None:
        return verify_kit(kit, trust, *target)
    if archive is None:
        raise UsageError("name an ARCHIVE to verify, or give --kit DIR to verify what is installed there")
    k = Kit.existing(kit) if kit else None
    keys = resolve_keys(trust, k)
    index = None
    if k is not None:
        from installer.kit.deltaindex import KitIndex

        index = KitIndex(k)
    return ArchiveVerified(archive, verify_file(archive, keys, show_progress=not quiet, kit_index=index))


def _kit_target(arg: Optional[str], kit: Optional[str]) -> Optional[Tuple[Optional[str], Optional[str]]]:
    """(name, version) when the command verifies the kit itself: --kit with no archive, or with NAME[@VERSION]
    that is not a file or folder on disk (a bundle name has no '.', an archive's file name always has one)."""
    if not kit:
        return None
    if arg is None:
        return None, None
    match = TARGET_RE.fullmatch(arg)
    if match is None or os.path.lexists(arg):
        return None
    version = match.group(2)
    if version is not None and not is_semver(version):
        raise UsageError("%r: the version after @ is not SemVer" % arg)
    return match.group(1), version


def verify_kit(kit: str, trust: Sequence[str], name: Optional[str], version: Optional[str]) -> KitVerified:
    from installer.kit.check import check_kit, summary_error

    k = Kit.existing(kit)
    checks = check_kit(k, resolve_keys(trust, k), name, version)
    if name and not checks:
        raise UsageError("%s%s is not installed in %s" % (name, "@" + version if version else "", kit))
    failure = summary_error(checks)
    if failure is not None:
        cls, sentence, lines = failure
        raise cls(sentence, lines)
    return KitVerified(k.root, tuple(checks))


def report_json(r: VerifyReport) -> Dict[str, Json]:
    """A verified archive as JSON: the verify command's result, and the first part of install's."""
    d = r.delta
    return {
        "name": r.name,
        "version": r.version,
        "bundle_id": r.bundle_id,
        "signer": r.signer,
        "files": r.files,
        "total_size": r.total_size,
        "complete": r.complete,
        "delta": {"base": [b.to_dict() for b in d.base], "omitted": d.omitted, "omitted_bytes": d.omitted_bytes,
                  "checked_in_kit": d.checked_in_kit} if d is not None else None,
        "archive_sha256": r.archive_sha256 or None,
        "sidecar": r.sidecar,
        "provenance": provenance_json(r),
    }


def provenance_json(r: VerifyReport) -> Dict[str, Json]:
    """The provenance statement as verified, or why there is none to show."""
    if r.provenance is not None:
        return r.provenance.to_dict()
    if PROVENANCE_PATH in r.head.sums_entries:
        return {"path": PROVENANCE_PATH, "verified": False,
                "reason": "a delta that omits it: pass --kit DIR to check it in the kit"}
    return {"path": None, "verified": False, "reason": "the bundle carries no provenance statement (built before "
                                                       "they existed)"}


def check_json(c: VersionCheck) -> Dict[str, Json]:
    """One installed version as verify --kit (and status --verify's failures) show it."""
    return {"name": c.name, "version": c.version, "bundle_id": c.bundle_id, "signer": c.signer, "ok": c.ok,
            "problems": c.problems + c.trust_problems}


def json_verify(r: VerifyResult) -> Dict[str, Json]:
    if isinstance(r, KitVerified):
        return {"kit": r.kit, "versions": [check_json(c) for c in r.versions]}
    result = report_json(r.report)
    result.update(archive=r.archive, checks={"signature": "ok", "bundle.json": "ok", "members": "ok",
                                             "structure": "ok", "sidecar": r.report.sidecar})
    result["upstream_signatures"] = [
        {"ref": i.ref, "digest": g.digest, "key": g.key, "signature": g.signature,
         "checked": "now and at build time" if g.signature and r.report.complete else "at build time"}
        for i in r.report.head.meta.images for g in i.signatures]
    return result


def text_verify(r: VerifyResult) -> List[str]:
    if isinstance(r, KitVerified):
        return ["OK %s %s: every file matches its signed SHA256SUMS; signed by %s" % (c.name, c.version, c.signer)
                for c in r.versions] or ["kit %s holds no bundles" % r.kit]
    v = r.report
    delta = v.delta
    extra = []
    if delta is not None:
        extra = ["delta against %s: %d files (%d bytes) omitted, %d of them checked in the kit%s" % (
            ", ".join("%s %s" % (b.name, b.version) for b in delta.base), delta.omitted,
            delta.omitted_bytes, delta.checked_in_kit,
            "" if v.complete else "; complete: false (pass --kit DIR to check the rest)")]
    verdict = "OK" if v.complete else "INCOMPLETE (a delta: signature and carried files good)"
    p = v.provenance
    provenance = "provenance: %s" % (
        "%s verified (DSSE signature by %s; %d subjects, exactly the files and image manifests listed; builder %s)"
        % (p.path, p.signer, p.subjects, p.builder_id) if p is not None else provenance_json(v)["reason"])
    for image in v.head.meta.images:
        for g in image.signatures:
            extra.append("upstream signature of %s (%s): cosign, key %s; %s" % (
                image.ref, g.digest, g.key, "verified again from the archive" if g.signature and v.complete
                else "verified at build time (the signature is not carried)"))
    return extra + ["%s %s %s: signature by %s; %d files (%d payload bytes) listed in SHA256SUMS" % (
                verdict, v.name, v.version, v.signer, v.files, v.total_size),
            "bundle_id %s" % v.bundle_id,
            "archive sha256 %s (sidecar: %s)" % (v.archive_sha256 or None, v.sidecar), provenance]


COMMANDS = [Command("verify", "check an archive's signature, checksums and structure; with --kit and no archive (or "
                      "NAME[@VERSION]), re-check what is installed",
            [Opt("archive", metavar="[ARCHIVE|NAME[@VERSION]]"), TRUST_OPT,
             Opt("--kit", metavar="DIR", help="use this kit's trust store (and its files for deltas); without an "
                                               "archive, verify the kit's installed versions")],
            run_verify, text_verify, json_verify)]
