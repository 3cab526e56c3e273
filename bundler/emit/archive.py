"""Writing a staged, signed version out: the archive (whole or in parts), its sidecar and warm-rebuild stamp,
or, for offline signing, the staged folder `seal` finishes."""

import hashlib
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypedDict

from installer.errors import BundleError, ContentMismatch, LocalEnvironmentError
from installer.format.meta import MAX_META_BYTES
from installer.fsutil import sha256_file, write_atomic
from installer.format.meta import canonical_json
from installer.format.sums import DELTA_NAME, META_NAME, SIG_NAME, SUMS_NAME, bundle_id
from installer.format.tarstream import TarReader
from installer.trust.verify import sidecar_sha256
from installer.format.zstd import open_decompressed

from installer.format.parts import parts_list

from bundler.seal.archive import ArchiveWriter, PartsWriter
from bundler.stage.provenance import pae_bytes
from bundler.stage.stage import CHUNK, Staged


def make_out_dir(out_dir: str) -> None:
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise LocalEnvironmentError("cannot create the output folder %s: %s" % (out_dir, exc.strerror)) from exc


STAGED_PLAN = "staged.json"
PAE_NAME = "provenance.pae"     # step 1 of offline signing: the provenance envelope's signed bytes
STEP_PROVENANCE = "provenance"
STEP_SUMS = "sums"


class _PlanEntryRequired(TypedDict):
    path: str
    size: int
    sha256: str
    executable: bool


class PlanEntry(_PlanEntryRequired, total=False):
    """A member in staged.json: its bytes in ``inline/<sha256>`` (``inline``), or a file to read (``source``)."""
    inline: str
    source: str


def write_staged(staged: Staged, out_dir: str, split_size: int) -> Dict[str, Any]:
    """DIR/<name>-<version>.staged/: what to sign elsewhere, and the plan `seal` follows.

    Offline signing takes two signatures, in this order (docs/FORMAT.md "Staged builds"): first provenance.pae,
    the provenance statement's DSSE pre-authentication encoding (step ``provenance``: SHA256SUMS lists the
    envelope, so it cannot exist before); then, after `seal` made the envelope, SHA256SUMS (step ``sums``)."""
    name, version = staged.manifest.name, staged.manifest.version
    folder = os.path.join(out_dir, "%s-%s.staged" % (name, version))
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "inline"))
    plan: List[PlanEntry] = []
    for m in staged.members:
        entry: PlanEntry = {"path": m.path, "size": m.size, "sha256": m.sha256, "executable": m.executable}
        if m.data is not None:
            _write_inline(folder, m.sha256, m.data)
            entry["inline"] = m.sha256
        else:
            entry["source"] = os.path.abspath(m.source_path)
        plan.append(entry)
    doc: Dict[str, Any] = {"format": 1, "name": name, "version": version, "epoch": staged.epoch,
                           "split_size": split_size, "members": plan}
    if not staged.sums:  # step 1: the provenance statement is to be signed
        statement = hashlib.sha256(staged.statement).hexdigest()
        _write_inline(folder, statement, staged.statement)
        doc.update(step=STEP_PROVENANCE, statement=statement, head=staged.head.to_dict())
        files: Tuple[Tuple[str, bytes], ...] = ((PAE_NAME, pae_bytes(staged.statement)),
                                                 (STAGED_PLAN, canonical_json(doc)))
        sign = os.path.join(folder, PAE_NAME)
    else:
        doc["step"] = STEP_SUMS
        files = ((SUMS_NAME, staged.sums), (META_NAME, staged.meta_bytes), (STAGED_PLAN, canonical_json(doc)))
        sign = os.path.join(folder, SUMS_NAME)
    for filename, data in files:
        with open(os.path.join(folder, filename), "wb") as fh:
            fh.write(data)
    return {"staged": folder, "sign": sign, "step": doc["step"],
            "bundle_id": bundle_id(staged.sums) if staged.sums else None,
            "name": name, "version": version, "files": len(staged.members) + 1,
            "total_size": sum(m.size for m in staged.members), "images": 0, "charts": 0, "lock": {"status": "-"}}


def _write_inline(folder: str, name: str, data: bytes) -> None:
    with open(os.path.join(folder, "inline", name), "wb") as fh:
        fh.write(data)


def _add_members(writer: ArchiveWriter, staged: Staged, signature: bytes) -> None:
    writer.add(SUMS_NAME, len(staged.sums), [staged.sums])
    writer.add(SIG_NAME, len(signature), [signature])
    writer.add(META_NAME, len(staged.meta_bytes), [staged.meta_bytes])
    if staged.delta_bytes is not None:
        writer.add(DELTA_NAME, len(staged.delta_bytes), [staged.delta_bytes])
    for m in staged.members:
        digest = writer.add(m.path, m.size, m.chunks(), m.executable)
        if digest != m.sha256:
            if m.path.startswith("images/blobs/") and staged.cache is not None:
                # A corrupt cache entry is dropped so the next build fetches it; by digest, through the
                # cache, never by a path a staged plan could name.
                staged.cache.discard("sha256:" + m.sha256)
                raise ContentMismatch("the cached blob sha256:%s was corrupt and has been removed; build again"
                                      % m.sha256)
            raise ContentMismatch("%s changed while the bundle was being built; build again" % m.source_path)


def _write_archive(staged: Staged, signature: bytes, final_path: str) -> str:
    """Stream every member into a temp file beside ``final_path``; rename when complete."""
    folder = os.path.dirname(final_path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".building-", dir=folder)
    try:
        with os.fdopen(fd, "wb", buffering=CHUNK) as fh:
            writer = ArchiveWriter(fh, staged.epoch)
            _add_members(writer, staged, signature)
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


def _write_parts(staged: Staged, signature: bytes, final_base: str, size: int) -> Tuple[str, List[Tuple[str, str]]]:
    """The archive cut into parts while it is compressed: no whole-archive temporary copy."""
    sink = PartsWriter(final_base, size)
    try:
        writer = ArchiveWriter(sink, staged.epoch)
        _add_members(writer, staged, signature)
        archive_sha = writer.close()
        parts = sink.finish()
    except BaseException:
        sink.abort()
        raise
    listing = "".join("%s  %s\n" % (sha, os.path.basename(path)) for path, sha in parts)
    try:
        write_atomic(parts_list(final_base), listing.encode("ascii"))
    except BaseException:
        _remove([p for p, _ in parts])  # parts without their list are no bundle
        raise
    return archive_sha, parts


def _write_sidecar(archive_path: str, archive_sha: str, written: Sequence[str]) -> str:
    """The .sha256 sidecar; if it cannot be written the build failed, so what it wrote goes too."""
    sidecar = archive_path + ".sha256"
    try:
        write_atomic(sidecar, ("%s  %s\n" % (archive_sha, os.path.basename(archive_path))).encode("ascii"))
    except BaseException:
        _remove(written)
        raise
    return sidecar


def _remove(paths: Sequence[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def _reusable(archive: str, staged: Staged, signature: bytes) -> Optional[str]:
    """The sha256 of an archive already at the destination that IS this build's output, else None.

    Reproducibility makes a warm rebuild's output byte-identical to what is there: when its signed head
    (SHA256SUMS, signature, bundle.json, DELTA.json) equals the staged one and its bytes still match its
    sidecar (one hash pass, no decompression, no rewrite), rewriting it would change nothing.
    """
    expected = sidecar_sha256(archive)
    if expected is None:
        return None
    try:
        with open(archive, "rb") as fh:
            stream = open_decompressed(fh)
            try:
                reader = TarReader(stream)
                head = []
                for _ in range(4 if staged.delta_bytes is not None else 3):
                    member = reader.next()
                    if member is None or member.size > MAX_META_BYTES:
                        return None
                    head.append(b"".join(reader.chunks()))
            finally:
                stream.close()
    except (OSError, UnicodeDecodeError, BundleError):
        return None
    wanted = [staged.sums, signature, staged.meta_bytes]
    if staged.delta_bytes is not None:
        wanted.append(staged.delta_bytes)
    if head != wanted:
        return None
    if _stamp(archive, expected) == _read_stamp(archive):
        return expected  # the very file this tool wrote and hashed, untouched since (size, mtime, inode)
    actual, _size = sha256_file(archive)
    return actual if actual == expected else None


def _stamp_path(archive: str) -> str:
    return os.path.join(os.path.dirname(archive) or ".", "." + os.path.basename(archive) + ".stamp")


def _stamp(archive: str, sha256_hex: str) -> str:
    st = os.stat(archive)
    return "%d %d %d %d %s\n" % (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, sha256_hex)


def _read_stamp(archive: str) -> str:
    try:
        with open(_stamp_path(archive), encoding="ascii") as fh:
            return fh.read(300)
    except (OSError, UnicodeDecodeError):
        return ""


def _write_stamp(archive: str, sha256_hex: str) -> None:
    """What a warm rebuild compares to skip re-hashing an archive this tool wrote (like make's mtimes)."""
    try:
        write_atomic(_stamp_path(archive), _stamp(archive, sha256_hex).encode("ascii"))
    except OSError:
        pass  # only an optimisation


def emit(staged: Staged, signature: bytes, out_dir: str, split_size: int, signer_fp: Optional[str]) -> Dict[str, Any]:
    """Write the signed archive (or its parts) and the sidecar."""
    manifest = staged.manifest
    kind = "delta.bundle" if staged.delta_bytes is not None else "bundle"
    archive = os.path.join(out_dir, "%s-%s.%s.tar.zst" % (manifest.name, manifest.version, kind))
    parts: List[Tuple[str, str]] = []
    reused = None if split_size else _reusable(archive, staged, signature)
    try:
        if reused:
            archive_sha, written = reused, []
        elif split_size:
            archive_sha, parts = _write_parts(staged, signature, archive, split_size)
            written = [p for p, _ in parts] + [parts_list(archive)]
        else:
            archive_sha = _write_archive(staged, signature, archive)
            written = [archive]
        if not reused:
            _write_sidecar(archive, archive_sha, written)
            if not split_size:
                _write_stamp(archive, archive_sha)
    except OSError as exc:
        raise LocalEnvironmentError("cannot write the bundle into %s: %s" % (out_dir, exc.strerror or exc)) from exc
    head = staged.head
    return {
        "archive": parts[0][0] if parts else archive,
        "parts": [{"path": p, "sha256": s} for p, s in parts],
        "sha256": archive_sha,
        "size": sum(os.path.getsize(p) for p, _ in parts) if parts else os.path.getsize(archive),
        "bundle_id": bundle_id(staged.sums),
        "name": manifest.name,
        "version": manifest.version,
        "signer": signer_fp,
        "files": len(staged.members) + 1,
        "total_size": sum(m.size for m in staged.members),
        "images": len(head.images),
        "charts": len(head.charts),
        "helm_check": staged.helm_check,
        "lock": head.lock,
        "warnings": staged.warnings,
        "reused": bool(reused),
        "delta": {"omitted": len(staged.omitted), "omitted_bytes": sum(staged.omitted.values()),
                  "base": [b.to_dict() for b in staged.delta.base]} if staged.delta is not None else None,
    }
