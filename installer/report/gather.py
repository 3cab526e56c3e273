"""What the verification report says (issue 14 point 3): an archive verified as `verify` does, or a kit's installed
version checked as `verify --kit` does, turned into the dict installer/report/html.py renders (and `--json` prints).

Nothing is shown before it is checked. For an archive, the SBOMs are captured while the archive is verified and
read only after every member matched the signed SHA256SUMS; for a kit, only after the installed version passed
the integrity check of issue 8 (every file re-hashed against its signed SHA256SUMS and today's keys). A failed
check still gives a report: its verdict says FAILED, the exit code and why, and it carries what was known.
"""

import datetime
import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from installer import TOOL_NAME, __version__
from installer.errors import BundleError, ContentMismatch, TrustError
from installer.format.meta import MAX_META_BYTES, parse_meta
from installer.format.model import BundleHead
from installer.format.sums import META_NAME, SUMS_NAME, parse_sums
from installer.fsutil import read_under
from installer.report.byhand import commands, quote
from installer.trust.provenance import PROVENANCE_PATH, ProvenanceSummary, check_provenance
from installer.trust.store import TrustedKey
from installer.trust.verify import DiscardSink, FileIndex, ProvenHead, VerifyReport, verify_file

Report = Dict[str, Any]
MAX_SBOM_BYTES = 64 << 20        # one CycloneDX document read for its package list; larger ones are only listed
MAX_SHOWN_PACKAGES = 20000       # per image


class CaptureSink(DiscardSink):
    """verify's sink for a report: hashes and drops every member, keeping the CycloneDX SBOMs (up to a size) to
    read once the whole archive verified."""

    def __init__(self, kit_index: Optional[FileIndex] = None) -> None:
        super().__init__(kit_index)
        self.kept: Dict[str, bytes] = {}

    def write(self, path: str, size: int, chunks: Iterator[bytes], executable: bool) -> None:
        if path.startswith("sbom/") and path.endswith(".cdx.json") and size <= MAX_SBOM_BYTES:
            self.kept[path] = b"".join(chunks)
        else:
            super().write(path, size, chunks, executable)


def _now() -> str:
    """The report's own time: SOURCE_DATE_EPOCH when set (reproducible reports), else the clock."""
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = (datetime.datetime.fromtimestamp(int(env), datetime.timezone.utc) if env.isdigit()
            else datetime.datetime.now(datetime.timezone.utc))
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _base(kind: str, path: str) -> Report:
    return {"generated": {"tool": "%s %s" % (TOOL_NAME, __version__), "time": _now()},
            "subject": {"kind": kind, "path": path}, "warnings": []}


def failed(report: Report, error: BundleError) -> Report:
    """The verdict of a check that stopped: FAILED, verify's exit code, the sentence and its problems."""
    report["verdict"] = {"ok": False, "exit_code": error.exit_code, "reason": error.message,
                         "problems": list(error.problems)[:200],
                         "headline": "FAILED (exit %d): %s" % (error.exit_code, error.message)}
    return report


def _signer(key: TrustedKey) -> Dict[str, Any]:
    return {"fingerprint": key.fingerprint, "algorithm": key.key.algorithm, "key_file": key.origin,
            "names": list(key.names), "not_after": key.not_after}


def _bundle(meta: BundleHead, bundle_id: str) -> Dict[str, Any]:
    return {"name": meta.name, "version": meta.version, "bundle_id": bundle_id, "created": meta.created,
            "tool": "%s %s" % (meta.tool.name, meta.tool.version)}


def _files(entries: Mapping[str, str], meta: BundleHead, meta_size: int) -> List[Dict[str, Any]]:
    sizes = dict(meta.sizes)
    sizes[META_NAME] = meta_size
    return [{"path": path, "size": sizes.get(path), "sha256": digest} for path, digest in sorted(entries.items())]


def _images(meta: BundleHead, rechecked: bool) -> List[Dict[str, Any]]:
    out = []
    for image in meta.images:
        out.append({
            "ref": image.ref, "digest": image.digest,
            "index_digest": image.index_digest if isinstance(image.index_digest, str) else None,
            "platforms": [m.platform for m in image.manifests],
            "upstream_signatures": [{"key": s.key, "digest": s.digest,
                                     "checked": "now and at build time" if s.signature and rechecked
                                     else "at build time"} for s in image.signatures],
            "signed_by_required": bool(image.signatures),
            "referrers": [{"kind": r.kind, "digest": r.digest, "subject": r.subject,
                           "artifact_type": r.artifact_type if isinstance(r.artifact_type, str) else None}
                          for r in image.referrers],
        })
    return out


def _licenses(component: Mapping[str, Any]) -> List[str]:
    found = []
    for entry in component.get("licenses") or []:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("expression"), str):
            found.append(entry["expression"])
        lic = entry.get("license")
        if isinstance(lic, dict):
            value = lic.get("id") or lic.get("name")
            if isinstance(value, str):
                found.append(value)
    return found


def summarise_cdx(data: bytes) -> Dict[str, Any]:
    """The packages of a CycloneDX document (every component but the operating system and plain files): each
    with its name, version, type (the purl's type, else the component's), licenses and purl; counts by type and
    by license."""
    doc = json.loads(data.decode("utf-8"))
    components = doc.get("components") if isinstance(doc, dict) else None
    packages: List[Dict[str, Any]] = []
    by_type: Dict[str, int] = {}
    licenses: Dict[str, int] = {}
    for c in components if isinstance(components, list) else []:
        if not isinstance(c, dict) or c.get("type") in ("operating-system", "file"):
            continue
        purl = c["purl"] if isinstance(c.get("purl"), str) else ""
        kind = purl[4:].split("/", 1)[0] if purl.startswith("pkg:") else str(c.get("type") or "unknown")
        names = _licenses(c)
        by_type[kind] = by_type.get(kind, 0) + 1
        for name in names or ["(none declared)"]:
            licenses[name] = licenses.get(name, 0) + 1
        if len(packages) < MAX_SHOWN_PACKAGES:
            packages.append({"name": c.get("name"), "version": c.get("version"), "type": kind,
                             "license": " AND ".join(names) if names else None, "purl": purl or None})
    packages.sort(key=lambda p: (str(p["type"]), str(p["name"]), str(p["version"])))
    return {"packages": packages, "by_type": by_type, "licenses": licenses}


def _sboms(meta: BundleHead, sums: Mapping[str, str], read: Mapping[str, bytes],
           warnings: List[str]) -> Optional[Dict[str, Any]]:
    record = meta.sboms if isinstance(meta.sboms, dict) else None
    if record is None:
        return None
    out: Dict[str, Any] = {"made": record.get("made") is True, "reason": record.get("reason"),
                           "tool": record.get("tool"), "images": [], "others": []}
    seen = set()
    for entry in record.get("images") or []:
        if not isinstance(entry, dict):
            continue
        origin = entry.get("origin") if isinstance(entry.get("origin"), str) else "syft"
        files = [f for f in entry.get("files") or [] if isinstance(f, str)]
        if origin == "upstream":  # carried in images/ (issue 10): its documents are blobs, listed, not opened
            files = [str(d["path"]) for d in entry.get("documents") or []
                     if isinstance(d, dict) and isinstance(d.get("path"), str)]
        seen.update(files)
        item: Dict[str, Any] = {"ref": entry.get("ref"), "digest": entry.get("digest"),
                                "platform": entry.get("platform"), "files": files, "origin": origin}
        if origin == "upstream":
            item.update(kind=entry.get("kind"), referrer=entry.get("referrer"))
            out["images"].append(item)
            continue
        cdx = next((f for f in files if f.endswith(".cdx.json")), None)
        if cdx is not None and cdx in read:
            try:
                item.update(summarise_cdx(read[cdx]))
            except (ValueError, UnicodeDecodeError, RecursionError):
                warnings.append("%s is not a CycloneDX JSON document; its packages are not shown" % cdx)
        elif cdx is not None:
            warnings.append("%s is larger than %d MiB; its packages are not shown" % (cdx, MAX_SBOM_BYTES >> 20))
        out["images"].append(item)
    for path in sorted(p for p in meta.sizes if p.startswith("sbom/") and p not in seen):
        kind = "CycloneDX" if path.endswith(".cdx.json") else "SPDX" if path.endswith(".spdx.json") else "document"
        if path.startswith("sbom/bundle-content."):
            kind += ": the bundle's files, tenant files and charts, with their hashes"
        out["others"].append({"path": path, "kind": kind, "sha256": sums.get(path)})
    return out


def _provenance(summary: Optional[ProvenanceSummary], listed: bool) -> Dict[str, Any]:
    if summary is not None:
        doc = summary.to_dict()
        doc["present"] = True
        return doc
    return {"present": listed, "verified": False,
            "reason": "omitted by this delta and not checked (give --kit)" if listed else
            "the bundle carries no provenance statement (built before they existed)"}


def _verdict_ok(report: Report, name: str, version: str, signer: str, what: str) -> None:
    report["verdict"] = {"ok": True, "exit_code": 0, "reason": None, "problems": [],
                         "headline": "%s %s is signed by %s, and %s." % (name, version, signer, what)}


def _fill(report: Report, head: ProvenHead, meta_size: int, provenance: Optional[ProvenanceSummary],
          read: Mapping[str, bytes], rechecked: bool, public_key: str) -> None:
    meta = head.meta
    report["signer"] = _signer(head.signer)
    report["bundle"] = _bundle(meta, head.bundle_id)
    report["files"] = _files(head.sums_entries, meta, meta_size)
    report["images"] = _images(meta, rechecked)
    report["sboms"] = _sboms(meta, head.sums_entries, read, report["warnings"])
    report["provenance"] = _provenance(provenance, PROVENANCE_PATH in head.sums_entries)
    report["commands"] = commands(report["subject"]["path"], public_key, head.signer.key.algorithm)


def archive_report(archive: str, keys: Sequence[TrustedKey], kit_index: Optional[FileIndex] = None,
                   show_progress: bool = False) -> Tuple[Report, Optional[BundleError]]:
    """The report of ``archive`` verified with ``keys``, and the error that stopped the check (None: verified)."""
    report = _base("archive", os.path.abspath(archive))
    sink = CaptureSink(kit_index)
    try:
        result: VerifyReport = verify_file(archive, keys, lambda _head: sink, show_progress, kit_index=kit_index)
    except BundleError as exc:
        return failed(report, exc), exc
    report["subject"].update(sha256=result.archive_sha256 or None, sidecar=result.sidecar,
                             size=_size(archive))
    _fill(report, result.head, len(result.head.meta_bytes), result.provenance, sink.kept, result.complete,
          _key_file(result.head.signer))
    if not result.complete:
        report["warnings"].append("a delta: %d files are not in this archive and were not checked (give --kit)"
                                  % len(result.not_in_archive))
        report["verdict"] = {"ok": False, "exit_code": 0, "reason": "incomplete: a delta checked without its kit",
                             "problems": list(result.not_in_archive)[:200],
                             "headline": "INCOMPLETE: the signature and the carried files of %s %s are good; "
                                         "%d files were not checked" % (result.name, result.version,
                                                                       len(result.not_in_archive))}
    else:
        _verdict_ok(report, result.name, result.version, result.signer,
                    "every file matches its signed SHA256SUMS")
    return report, None


def _size(archive: str) -> Optional[int]:
    try:
        return os.path.getsize(archive) if os.path.isfile(archive) else None
    except OSError:
        return None


def _key_file(key: TrustedKey) -> str:
    """The public key file the by-hand commands name: the --trust file when it is one, else a placeholder."""
    origin = key.origin
    return origin if origin.endswith(".pub") and os.path.isfile(origin) else "bundle.pub"


def kit_report(kit_root: str, keys: Sequence[TrustedKey], name: str, version: str) -> Tuple[Report,
                                                                                           Optional[BundleError]]:
    """The report of one installed version: the kit's integrity check (issue 8), then what it holds."""
    from installer.kit.check import check_version
    from installer.kit.layout import Kit

    kit = Kit.existing(kit_root)
    root = kit.version_dir(name, version)
    report = _base("kit", os.path.abspath(kit_root))
    report["subject"].update(path=root, active_version=kit.current_version(name))
    check = check_version(kit, name, version, keys)
    if not check.ok:
        cls = ContentMismatch if check.problems else TrustError
        error = cls("the installed %s %s does not match its signed SHA256SUMS" % (name, version)
                    if check.problems else "the installed %s %s is not signed by a trusted key" % (name, version),
                    check.lines())
        return failed(report, error), error
    try:
        sums = read_under(root, SUMS_NAME, 16 << 20)
        meta_bytes = read_under(root, META_NAME, MAX_META_BYTES)
        entries = parse_sums(sums)
        meta = parse_meta(meta_bytes)
        signer = next(k for k in keys if k.fingerprint == check.signer)
        provenance = None
        if PROVENANCE_PATH in entries:
            provenance = check_provenance(read_under(root, PROVENANCE_PATH, 16 << 20), signer.key, entries, meta)
        read = {p: read_under(root, p, MAX_SBOM_BYTES) for p in entries
                if p.startswith("sbom/") and p.endswith(".cdx.json") and meta.sizes.get(p, 0) <= MAX_SBOM_BYTES}
    except BundleError as exc:
        return failed(report, exc), exc
    except (OSError, StopIteration) as exc:
        error = ContentMismatch("the installed %s %s cannot be read back: %s" % (name, version, exc))
        return failed(report, error), error
    head = ProvenHead(sums, b"", entries, check.bundle_id or "", signer, meta, meta_bytes, None, b"")
    report["subject"]["sha256"] = None
    _fill(report, head, len(meta_bytes), provenance, read, True, _key_file(signer))
    report["commands"] = [{"say": "In the kit: every installed file against the signed list (docs/VERIFY.md step 5)",
                           "run": "cd %s && sha256sum -c --strict SHA256SUMS\n" % quote(root)}]
    _verdict_ok(report, name, version, signer.fingerprint,
                "every installed file matches its signed SHA256SUMS (re-hashed now)")
    return report, None

