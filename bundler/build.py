"""`build`: manifest -> one signed, reproducible format-1 archive and its .sha256 sidecar."""

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from installer import TOOL_NAME, __version__
from installer.errors import BundleError, ContentMismatch, InvalidInput, LocalEnvironmentError, TrustError, UsageError
from installer.format.meta import MAX_META_BYTES
from installer.trust.signing import verify as verify_sig
from installer.fsutil import file_chunks, sha256_file, write_atomic
from installer.format.meta import canonical_json
from installer.format.model import BundleFile, BundleHead, DeltaBase, DeltaDoc, Json, Member, Tenant, Tool
from installer.format.oci import LAYOUT_FILE
from installer.format.paths import INDEX_PATH, LAYOUT_PATH, blob_path, c_key
from installer.progress import Progress
from installer.format.reference import parse_mirror, strict_hex
from installer.format.delta import INVENTORY_KIND, delta_document
from installer.format.sums import DELTA_NAME, META_NAME, SIG_NAME, SUMS_NAME, bundle_id, format_sums, parse_sums
from installer.format.tarstream import TarReader
from installer.trust.verify import open_archive, read_head, sidecar_sha256
from installer.format.zstd import open_decompressed

from installer.format.parts import parts_list
from installer.site.transport import Transport

from bundler.seal.archive import ArchiveWriter, PartsWriter
from bundler.pull.charts import ChartFetcher, PulledChart, fetch_charts, split_mirrors
from bundler.stage.helmcheck import check_charts
from bundler.plan.lock import LockCheck, write_lock
from bundler.pull.images import BlobCache, PulledImage, Puller, default_cache_dir, layout_index, pull_images
from bundler.seal.keys import Signer, load_signer
from bundler.plan.manifest import Manifest, load_manifest
from bundler.plan.tenants import check_tenant_files

CHUNK = 1 << 20
MAX_INVENTORY_BYTES = 64 * 1024 * 1024  # as SHA256SUMS: an inventory lists no more than the kit's sums


@dataclass(frozen=True)
class PlannedMember:
    path: str
    source_path: str          # a file to stream from, or "" when ``data`` holds the bytes
    size: int
    sha256: str
    executable: bool
    data: Optional[bytes] = None

    def chunks(self) -> Iterator[bytes]:
        return iter((self.data,)) if self.data is not None else file_chunks(self.source_path)


def bytes_member(path: str, data: bytes) -> PlannedMember:
    return PlannedMember(path, "", len(data), hashlib.sha256(data).hexdigest(), False, data)


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


def plan_members(manifest: Manifest) -> Tuple[List[PlannedMember], List[BundleFile], List[Tenant]]:
    """Hash every source once; check pins. Returns members, bundle.json files and tenants."""
    members: List[PlannedMember] = []
    files: List[BundleFile] = []
    mismatches: List[str] = []
    for i, entry in enumerate(manifest.files):
        digest, size = sha256_file(entry.source_path)
        if entry.sha256 and entry.sha256 != digest:
            mismatches.append("%s: %s has sha256 %s, the manifest pins %s"
                              % (manifest.doc.where(("spec", "files", i, "sha256")), entry.source, digest, entry.sha256))
        members.append(PlannedMember(entry.target, entry.source_path, size, digest, entry.executable))
        files.append(BundleFile(entry.target, digest, size, entry.executable, source=entry.source))
    if mismatches:
        raise ContentMismatch("a file differs from its pinned sha256", mismatches)
    tenants: List[Tenant] = []
    for entry in manifest.tenants:
        digest, size = sha256_file(entry.source_path)
        members.append(PlannedMember(entry.target, entry.source_path, size, digest, False))
        tenants.append(Tenant(entry.component, entry.target, source=entry.source, sha256=digest, size=size))
    members.sort(key=lambda m: c_key(m.path))
    return members, sorted(files, key=lambda f: c_key(f.target)), tenants


def image_members(images: List[PulledImage], cache: BlobCache, charts: Optional[List[PulledChart]] = None
                  ) -> List[PlannedMember]:
    """images/: the OCI layout (every blob once, streamed from the verified cache); charts/: archives and values."""
    charts = charts or []
    members: List[PlannedMember] = []
    for chart in charts:
        members.append(PlannedMember(chart.entry.path, cache.path(chart.tgz_digest), chart.entry.size,
                                     chart.entry.sha256, False))
        if chart.values is not None and chart.entry.values is not None:
            members.append(bytes_member(chart.entry.values, chart.values))
    if not images and not charts:
        return members
    blobs: Dict[str, int] = {}
    for image in images:
        blobs.update(image.blobs)
    for chart in charts:
        blobs.update(chart.blobs)
    members += [PlannedMember(blob_path(d), cache.path(d), size, d.split(":", 1)[1], False) for d, size in blobs.items()]
    members.append(bytes_member(INDEX_PATH, layout_index(images)))
    members.append(bytes_member(LAYOUT_PATH, LAYOUT_FILE))
    return members


def bundle_document(manifest: Manifest, created: str, members: List[PlannedMember], files: List[BundleFile],
                    tenants: List[Tenant], images: Optional[List[PulledImage]] = None,
                    mirrors: Optional[List[Json]] = None, charts: Optional[List[PulledChart]] = None,
                    lock: Optional[Json] = None) -> BundleHead:
    """bundle.json for these members (in C order): images sorted by reference, charts by name."""
    return BundleHead(
        name=manifest.name, version=manifest.version, created=created, tool=Tool(TOOL_NAME, __version__),
        members=tuple(Member(m.path, m.size, m.executable) for m in members),
        total_size=sum(m.size for m in members),
        files=tuple(files), tenants=tuple(tenants),
        images=tuple(i.entry for i in sorted(images or [], key=lambda i: i.entry.ref)),
        charts=tuple(c.entry for c in sorted(charts or [], key=lambda c: c.name)),
        mirrors=mirrors or [], lock=lock if lock is not None else {"status": "none"},
        deploy=manifest.deploy)  # signed with the rest; the installer parses it strictly (format/deployspec.py)


class _Staged:
    """Everything but the signature: what `build --unsigned` stops at and `seal` finishes."""

    def __init__(self, manifest: Manifest, epoch: int, meta_bytes: bytes, sums: bytes,
                 members: List[PlannedMember]) -> None:
        self.manifest = manifest
        self.epoch = epoch
        self.meta_bytes = meta_bytes
        self.sums = sums
        self.members = members
        self.helm_check: Dict[str, str] = {}
        self.warnings: List[str] = []
        self.delta_bytes: Optional[bytes] = None  # a delta's DELTA.json (written fourth)
        self.omitted: Dict[str, int] = {}
        self.cache: Optional[BlobCache] = None  # where images/blobs/ come from; None when sealing a plan


@dataclass
class SourceOptions:
    """Where images come from (cache, mirrors, TLS trust, insecure hosts) and how the lock file applies."""
    cache_dir: str = ""
    mirrors: Tuple[str, ...] = ()
    registry_ca: Optional[str] = None
    insecure: Tuple[str, ...] = ()
    show_progress: bool = True
    lock_mode: str = "default"  # default | locked | ignore
    transport: Optional[Transport] = None  # to the registries; None: the real one (tests pass an in-memory registry)


def _pull(manifest: Manifest, opts: SourceOptions, epoch: int, lockcheck: Optional[LockCheck] = None,
          fetch: bool = True) -> Tuple[List[PulledImage], List[PulledChart], BlobCache, List[dict]]:
    cache = BlobCache(opts.cache_dir or default_cache_dir())
    if not manifest.images and not manifest.charts:
        return [], [], cache, []
    if opts.registry_ca and not os.path.isfile(opts.registry_ca):
        raise UsageError("the CA file %s does not exist" % opts.registry_ca)
    registry_specs, url_mirrors = split_mirrors(opts.mirrors)
    mirrors = [parse_mirror(m) for m in registry_specs]
    progress = (lambda total, desc: Progress(total, desc, opts.show_progress))
    puller = Puller(cache, mirrors, opts.registry_ca, opts.insecure, progress, transport=opts.transport)
    where = [manifest.doc.where(("spec", "images", i)) for i in range(len(manifest.images))]
    images = pull_images(manifest.images, where, puller, lockcheck, fetch)
    fetcher = ChartFetcher(cache, puller, url_mirrors, opts.registry_ca, opts.insecure, epoch)
    chart_where = [manifest.doc.where(("spec", "charts", i)) for i in range(len(manifest.charts))]
    charts = fetch_charts(manifest.charts, chart_where, fetcher, os.path.dirname(os.path.abspath(manifest.path)))
    if lockcheck is not None:
        for chart in charts:
            lockcheck.chart(chart.name, chart.version, chart.lock_digest)
    used: Dict[str, dict] = {}
    for image in images:
        if image.mirror is not None:
            used.setdefault(image.mirror.source, dict(image.mirror.to_json(), refs=[]))["refs"].append(str(image.ref))
    for chart in charts:
        if chart.mirror is not None:
            used.setdefault(chart.mirror["source"], dict(chart.mirror, refs=[]))["refs"].append(
                "chart %s %s" % (chart.name, chart.version))
    for entry in used.values():
        entry["refs"].sort()
    return images, charts, cache, [used[k] for k in sorted(used)]


def stage(manifest: Manifest, opts: Optional[SourceOptions] = None) -> _Staged:
    opts = opts or SourceOptions()
    check_tenant_files(manifest.tenants)
    epoch, created = build_time(manifest)
    lockcheck = LockCheck(manifest, opts.lock_mode)
    members, files, tenants = plan_members(manifest)
    for m in members:
        lockcheck.file(m.path, m.sha256)
    images, charts, cache, mirrors = _pull(manifest, opts, epoch, lockcheck)
    lock_status = lockcheck.finish()
    helm_check = check_charts(charts, images, cache, manifest.namespace)
    members = sorted(members + image_members(images, cache, charts), key=lambda m: c_key(m.path))
    head = bundle_document(manifest, created, members, files, tenants, images, mirrors, charts, lock_status)
    meta_bytes = canonical_json(head.to_dict())
    entries = {m.path: m.sha256 for m in members}
    entries[META_NAME] = hashlib.sha256(meta_bytes).hexdigest()
    staged = _Staged(manifest, epoch, meta_bytes, format_sums(entries), members)
    staged.helm_check = helm_check
    staged.warnings = lockcheck.warnings
    staged.cache = cache
    return staged


def _add_members(writer: ArchiveWriter, staged: _Staged, signature: bytes) -> None:
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


def _write_archive(staged: _Staged, signature: bytes, final_path: str) -> str:
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


def _write_parts(staged: _Staged, signature: bytes, final_base: str, size: int) -> Tuple[str, list]:
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


def build(manifest_path: str, key_path: str, out_dir: str = ".", signer: Optional[Signer] = None,
          opts: Optional[SourceOptions] = None, split_size: int = 0, unsigned: bool = False,
          delta_from: Optional[str] = None) -> dict:
    manifest = load_manifest(manifest_path)
    if not unsigned:
        signer = signer or load_signer(key_path)
    base = load_delta_base(delta_from) if delta_from else None
    staged = stage(manifest, opts)
    if base is not None:
        staged = make_delta(staged, *base)
    _make_dir(out_dir)
    if unsigned:
        return write_staged(staged, out_dir, split_size)
    return emit(staged, signer.sign(staged.sums), out_dir, split_size, signer.public.fingerprint)


# --- deltas --------------------------------------------------------------------------------------
def load_delta_base(path: str) -> Tuple[List[DeltaBase], set]:
    """(base bundles, sha256 set) from a kit's inventory or from an old bundle's signed list."""
    if not os.path.isfile(path):
        raise UsageError("--delta-from %s does not exist" % path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"\x28\xb5\x2f\xfd":  # not zstd: an inventory
        return _load_inventory(path)
    with open_archive(path) as fh:
        stream = open_decompressed(fh)
        try:
            v = read_head(TarReader(stream), [], require_trust=False)
        finally:
            stream.close()
    return [DeltaBase(v.meta.name, v.meta.version, v.bundle_id)], set(v.sums_entries.values())


def _load_inventory(path: str) -> Tuple[List[DeltaBase], set]:
    """An inventory's bases and sha256 list; every sha256 and bundle_id strictly 64 lower-case hex (exit 3)."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_INVENTORY_BYTES + 1)
    if len(raw) > MAX_INVENTORY_BYTES:
        raise InvalidInput("the inventory %s is larger than %d MiB" % (path, MAX_INVENTORY_BYTES >> 20))
    try:
        doc = json.loads(raw)
        assert doc.get("kind") == INVENTORY_KIND and isinstance(doc.get("sha256"), list)
        base = [DeltaBase(b["name"], b["version"], b["bundle_id"]) for b in doc["bundles"]]
    except (ValueError, AssertionError, KeyError, TypeError, AttributeError, RecursionError):
        raise InvalidInput("%s is neither a bundle archive nor an inventory (offline-bundle inventory)" % path)
    source = "the inventory %s" % path
    for b in base:
        strict_hex(b.bundle_id, source)
    return base, {strict_hex(d, source) for d in doc["sha256"]}


def make_delta(staged: _Staged, base: List[DeltaBase], digests: set) -> _Staged:
    """Keep only the files the base lacks; SHA256SUMS and bundle.json still describe the full version."""
    omitted = {m.path: m.size for m in staged.members if m.sha256 in digests}
    delta_bytes = delta_document(DeltaDoc.of(base, omitted))
    entries = parse_sums(staged.sums)
    entries[DELTA_NAME] = hashlib.sha256(delta_bytes).hexdigest()
    delta = _Staged(staged.manifest, staged.epoch, staged.meta_bytes, format_sums(entries),
                    [m for m in staged.members if m.path not in omitted])
    delta.delta_bytes = delta_bytes
    delta.helm_check, delta.warnings = staged.helm_check, staged.warnings
    delta.omitted = omitted
    delta.cache = staged.cache
    return delta


def _make_dir(out_dir: str) -> None:
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise LocalEnvironmentError("cannot create the output folder %s: %s" % (out_dir, exc.strerror))


# --- offline signing: build --unsigned, then seal ------------------------------------------------
STAGED_PLAN = "staged.json"


def write_staged(staged: _Staged, out_dir: str, split_size: int) -> dict:
    """DIR/<name>-<version>.staged/: SHA256SUMS to sign elsewhere, bundle.json, and the plan `seal` follows."""
    name, version = staged.manifest.name, staged.manifest.version
    folder = os.path.join(out_dir, "%s-%s.staged" % (name, version))
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "inline"))
    plan = []
    for m in staged.members:
        entry = {"path": m.path, "size": m.size, "sha256": m.sha256, "executable": m.executable}
        if m.data is not None:
            with open(os.path.join(folder, "inline", m.sha256), "wb") as fh:
                fh.write(m.data)
            entry["inline"] = m.sha256
        else:
            entry["source"] = os.path.abspath(m.source_path)
        plan.append(entry)
    doc = {"format": 1, "name": name, "version": version, "epoch": staged.epoch, "split_size": split_size,
           "members": plan}
    for filename, data in ((SUMS_NAME, staged.sums), (META_NAME, staged.meta_bytes),
                           (STAGED_PLAN, canonical_json(doc))):
        with open(os.path.join(folder, filename), "wb") as fh:
            fh.write(data)
    return {"staged": folder, "sign": os.path.join(folder, SUMS_NAME), "bundle_id": bundle_id(staged.sums),
            "name": name, "version": version, "files": len(staged.members) + 1,
            "total_size": sum(m.size for m in staged.members), "images": 0, "charts": 0, "lock": {"status": "-"}}


def seal(staged_dir: str, sig_path: str, trust: Sequence[str] = ()) -> dict:
    """Write the archive beside STAGED from a signature made elsewhere; check it with --trust when given."""
    from installer.format.sums import MAX_SIG_BYTES
    from installer.trust.signing import canonical_signature
    from installer.trust.store import load_trust_paths

    for path in (staged_dir, sig_path):
        if not os.path.exists(path):
            raise UsageError("%s does not exist" % path)
    with open(os.path.join(staged_dir, STAGED_PLAN), "rb") as fh:
        plan = json.loads(fh.read())
    with open(os.path.join(staged_dir, SUMS_NAME), "rb") as fh:
        sums = fh.read()
    with open(os.path.join(staged_dir, META_NAME), "rb") as fh:
        meta_bytes = fh.read()
    with open(sig_path, "rb") as fh:
        signature = fh.read(MAX_SIG_BYTES + 1)
    if len(signature) > MAX_SIG_BYTES:
        raise TrustError("%s is larger than a signature can be (1 KiB)" % sig_path)
    signer_fp = None
    if trust:
        keys = load_trust_paths(trust)
        good = [k for k in keys if canonical_signature(k.key.algorithm, signature) and verify_sig(k.key, sums, signature)]
        if not good:
            raise TrustError("%s is not a valid signature of %s by any of the given keys"
                             % (sig_path, os.path.join(staged_dir, SUMS_NAME)))
        signer_fp = good[0].fingerprint
    members = []
    for m in plan["members"]:
        source = os.path.join(staged_dir, "inline", m["inline"]) if "inline" in m else m["source"]
        members.append(PlannedMember(m["path"], source, m["size"], m["sha256"], m["executable"]))
    staged = _Staged(_Named(plan["name"], plan["version"]), plan["epoch"], meta_bytes, sums, members)
    out_dir = os.path.dirname(os.path.abspath(staged_dir))
    return emit(staged, signature, out_dir, plan.get("split_size", 0), signer_fp)


class _Named:
    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version


def _reusable(archive: str, staged: _Staged, signature: bytes) -> Optional[str]:
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
    wanted = [staged.sums, signature, staged.meta_bytes] + ([staged.delta_bytes] if staged.delta_bytes is not None else [])
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


def emit(staged: _Staged, signature: bytes, out_dir: str, split_size: int, signer_fp: Optional[str]) -> dict:
    """Write the signed archive (or its parts) and the sidecar."""
    manifest = staged.manifest
    kind = "delta.bundle" if staged.delta_bytes is not None else "bundle"
    archive = os.path.join(out_dir, "%s-%s.%s.tar.zst" % (manifest.name, manifest.version, kind))
    parts: list = []
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
        raise LocalEnvironmentError("cannot write the bundle into %s: %s" % (out_dir, exc.strerror or exc))
    meta = json.loads(staged.meta_bytes)
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
        "images": len(meta["images"]),
        "charts": len(meta["charts"]),
        "helm_check": staged.helm_check,
        "lock": meta["lock"],
        "warnings": staged.warnings,
        "reused": bool(reused),
        "delta": {"omitted": len(staged.omitted), "omitted_bytes": sum(staged.omitted.values()),
                  "base": json.loads(staged.delta_bytes)["base"]} if staged.delta_bytes is not None else None,
    }


def lock(manifest_path: str, opts: Optional[SourceOptions] = None) -> dict:
    """Resolve every image, chart and file of the manifest and write <stem>.lock.json beside it."""
    manifest = load_manifest(manifest_path)
    opts = opts or SourceOptions()
    epoch, _ = build_time(manifest)
    members, _files, _tenants = plan_members(manifest)
    images, charts, _cache, _mirrors = _pull(manifest, opts, epoch, None, fetch=False)
    return write_lock(manifest, images, charts, {m.path: m.sha256 for m in members})


