"""`build`: manifest -> one signed, reproducible format-1 archive and its .sha256 sidecar."""

import datetime
import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from installer import TOOL_NAME, __version__
from installer.errors import ContentMismatch, LocalEnvironmentError, UsageError
from installer.meta import FORMAT, canonical_json
from installer.sums import META_NAME, SIG_NAME, SUMS_NAME, bundle_id, format_sums

from .archive import ArchiveWriter
from .keys import Signer, load_signer
from .manifest import Manifest, load_manifest
from .tenants import check_tenant_files

CHUNK = 1 << 20


@dataclass(frozen=True)
class PlannedMember:
    path: str
    source_path: str
    size: int
    sha256: str
    executable: bool


def file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return
            yield chunk


def hash_file(path: str) -> Tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    for chunk in file_chunks(path):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def build_time(manifest: Manifest) -> Tuple[int, str]:
    """SOURCE_DATE_EPOCH, else metadata.created, else 0: never the clock."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is not None and env.strip():
        if not env.strip().isdigit():
            raise UsageError("SOURCE_DATE_EPOCH must be a whole number of seconds, not %r" % env)
        epoch = int(env)
    elif manifest.created:
        stamp = datetime.datetime.strptime(manifest.created, "%Y-%m-%dT%H:%M:%SZ")
        epoch = int(stamp.replace(tzinfo=datetime.timezone.utc).timestamp())
    else:
        epoch = 0
    iso = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return epoch, iso


def plan_members(manifest: Manifest) -> Tuple[List[PlannedMember], List[dict], Dict[str, dict]]:
    """Hash every source once; check pins. Returns members, bundle.json files and tenants."""
    members: List[PlannedMember] = []
    files: List[dict] = []
    mismatches: List[str] = []
    for i, entry in enumerate(manifest.files):
        digest, size = hash_file(entry.source_path)
        if entry.sha256 and entry.sha256 != digest:
            mismatches.append("%s: %s has sha256 %s, the manifest pins %s"
                              % (manifest.doc.where(("spec", "files", i, "sha256")), entry.source, digest, entry.sha256))
        members.append(PlannedMember(entry.target, entry.source_path, size, digest, entry.executable))
        files.append({"target": entry.target, "source": entry.source, "sha256": digest, "size": size,
                      "executable": entry.executable})
    if mismatches:
        raise ContentMismatch("a file differs from its pinned sha256", mismatches)
    tenants: Dict[str, dict] = {}
    for entry in manifest.tenants:
        digest, size = hash_file(entry.source_path)
        members.append(PlannedMember(entry.target, entry.source_path, size, digest, False))
        tenants[entry.component] = {"path": entry.target, "source": entry.source, "sha256": digest, "size": size}
    members.sort(key=lambda m: m.path.encode())
    return members, sorted(files, key=lambda f: f["target"].encode()), tenants


def bundle_document(manifest: Manifest, created: str, members: List[PlannedMember], files: List[dict],
                    tenants: Dict[str, dict]) -> dict:
    return {
        "format": FORMAT,
        "name": manifest.name,
        "version": manifest.version,
        "created": created,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "members": [{"path": m.path, "size": m.size, "executable": m.executable} for m in members],
        "total_size": sum(m.size for m in members),
        "files": files,
        "tenants": tenants,
        "images": [],
        "charts": [],
        "mirrors": [],
        "lock": {"status": "none"},
    }


class _Staged:
    """Everything but the signature: what `build --unsigned` stops at and `seal` finishes."""

    def __init__(self, manifest: Manifest, epoch: int, meta_bytes: bytes, sums: bytes,
                 members: List[PlannedMember]) -> None:
        self.manifest = manifest
        self.epoch = epoch
        self.meta_bytes = meta_bytes
        self.sums = sums
        self.members = members


def stage(manifest: Manifest) -> _Staged:
    check_tenant_files(manifest.tenants)
    epoch, created = build_time(manifest)
    members, files, tenants = plan_members(manifest)
    meta_bytes = canonical_json(bundle_document(manifest, created, members, files, tenants))
    entries = {m.path: m.sha256 for m in members}
    entries[META_NAME] = hashlib.sha256(meta_bytes).hexdigest()
    return _Staged(manifest, epoch, meta_bytes, format_sums(entries), members)


def _write_archive(staged: _Staged, signature: bytes, final_path: str) -> str:
    """Stream every member into a temp file beside ``final_path``; rename when complete."""
    folder = os.path.dirname(final_path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".building-", dir=folder)
    try:
        with os.fdopen(fd, "wb", buffering=CHUNK) as fh:
            writer = ArchiveWriter(fh, staged.epoch)
            writer.add(SUMS_NAME, len(staged.sums), [staged.sums])
            writer.add(SIG_NAME, len(signature), [signature])
            writer.add(META_NAME, len(staged.meta_bytes), [staged.meta_bytes])
            for m in staged.members:
                digest = writer.add(m.path, m.size, file_chunks(m.source_path), m.executable)
                if digest != m.sha256:
                    raise ContentMismatch("%s changed while the bundle was being built; build again" % m.source_path)
            archive_sha = writer.close()
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, final_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return archive_sha


def _write_sidecar(archive_path: str, archive_sha: str) -> str:
    sidecar = archive_path + ".sha256"
    tmp = sidecar + ".tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write("%s  %s\n" % (archive_sha, os.path.basename(archive_path)))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, sidecar)
    return sidecar


def build(manifest_path: str, key_path: str, out_dir: str = ".", signer: Optional[Signer] = None) -> dict:
    manifest = load_manifest(manifest_path)
    signer = signer or load_signer(key_path)
    staged = stage(manifest)
    signature = signer.sign(staged.sums)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise LocalEnvironmentError("cannot create the output folder %s: %s" % (out_dir, exc.strerror))
    archive = os.path.join(out_dir, "%s-%s.bundle.tar.zst" % (manifest.name, manifest.version))
    try:
        archive_sha = _write_archive(staged, signature, archive)
        _write_sidecar(archive, archive_sha)
    except OSError as exc:
        raise LocalEnvironmentError("cannot write the bundle into %s: %s" % (out_dir, exc.strerror or exc))
    return {
        "archive": archive,
        "sha256": archive_sha,
        "size": os.path.getsize(archive),
        "bundle_id": bundle_id(staged.sums),
        "name": manifest.name,
        "version": manifest.version,
        "signer": signer.public.fingerprint,
        "files": len(staged.members) + 1,
        "total_size": sum(m.size for m in staged.members),
    }


