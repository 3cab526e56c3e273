"""Staging one version: plan its members from the manifest, pull its images and charts, check the charts
render against the bundle, and describe it in bundle.json (through the typed model) and SHA256SUMS."""

import datetime
import hashlib
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Protocol, Tuple, TypedDict

from installer import TOOL_NAME, __version__
from installer.errors import ContentMismatch, LocalEnvironmentError, UsageError
from installer.fsutil import file_chunks, sha256_file
from installer.format.meta import canonical_json
from installer.format.model import BundleFile, BundleHead, DeltaDoc, Json, Member, Tenant, Tool
from installer.format.oci import LAYOUT_FILE
from installer.format.paths import INDEX_PATH, LAYOUT_PATH, blob_path, c_key
from installer.progress import Progress
from installer.format.reference import MirrorJSON, parse_mirror
from installer.format.sums import META_NAME, format_sums

from installer.site.transport import Transport

from bundler.pull.charts import ChartFetcher, PulledChart, fetch_charts, split_mirrors
from bundler.stage.helmcheck import check_charts
from bundler.plan.lock import LockCheck, manifest_sha256, write_lock
from bundler.stage.provenance import PROVENANCE_PATH, statement as provenance_statement
from bundler.pull.images import BlobCache, PulledImage, Puller, default_cache_dir, layout_index, pull_images
from bundler.plan.manifest import Manifest, load_manifest
from bundler.plan.tenants import check_tenant_files

if TYPE_CHECKING:
    from bundler.stage.contentsbom import ContentChart, ContentFile


CHUNK = 1 << 20


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
                              % (manifest.doc.where(("spec", "files", i, "sha256")), entry.source, digest,
                                 entry.sha256))
        members.append(PlannedMember(entry.target, entry.source_path, size, digest, entry.executable))
        files.append(BundleFile(entry.target, digest, size, entry.executable, source=entry.source))
    if mismatches:
        raise ContentMismatch("a file differs from its pinned sha256", mismatches)
    tenants: List[Tenant] = []
    for tenant in manifest.tenants:
        digest, size = sha256_file(tenant.source_path)
        members.append(PlannedMember(tenant.target, tenant.source_path, size, digest, False))
        tenants.append(Tenant(tenant.component, tenant.target, source=tenant.source, sha256=digest, size=size))
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
    members += [PlannedMember(blob_path(d), cache.path(d), size, d.split(":", 1)[1], False)
                for d, size in blobs.items()]
    members.append(bytes_member(INDEX_PATH, layout_index(images)))
    members.append(bytes_member(LAYOUT_PATH, LAYOUT_FILE))
    return members


def bundle_document(manifest: Manifest, created: str, members: List[PlannedMember], files: List[BundleFile],
                    tenants: List[Tenant], images: Optional[List[PulledImage]] = None,
                    mirrors: Optional[List[Json]] = None, charts: Optional[List[PulledChart]] = None,
                    lock: Optional[Json] = None, sboms: Json = None) -> BundleHead:
    """bundle.json for these members (in C order): images sorted by reference, charts by name."""
    return BundleHead(
        name=manifest.name, version=manifest.version, created=created, tool=Tool(TOOL_NAME, __version__),
        members=tuple(Member(m.path, m.size, m.executable) for m in members),
        total_size=sum(m.size for m in members),
        files=tuple(files), tenants=tuple(tenants),
        images=tuple(i.entry for i in sorted(images or [], key=lambda i: i.entry.ref)),
        charts=tuple(c.entry for c in sorted(charts or [], key=lambda c: c.name)),
        mirrors=mirrors or [], lock=lock if lock is not None else {"status": "none"},
        deploy=manifest.deploy,  # signed with the rest; the installer parses it strictly (format/deployspec.py)
        sboms=sboms)


class Named(Protocol):
    """What writing a staged version needs of its manifest: a Manifest, or the name and version a staged plan
    records (`seal` has no manifest)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


class Staged:
    """Everything but the signature: what `build --unsigned` stops at and `seal` finishes."""

    def __init__(self, manifest: Named, epoch: int, head: BundleHead, meta_bytes: bytes, sums: bytes,
                 members: List[PlannedMember]) -> None:
        self.manifest = manifest
        self.epoch = epoch
        self.head = head  # bundle.json as the model; meta_bytes is its canonical JSON, as signed
        self.meta_bytes = meta_bytes
        self.sums = sums
        self.members = members
        self.helm_check: Dict[str, str] = {}
        self.warnings: List[str] = []
        self.delta: Optional[DeltaDoc] = None  # a delta's DELTA.json (written fourth, as delta_bytes)
        self.delta_bytes: Optional[bytes] = None
        self.omitted: Dict[str, int] = {}
        self.cache: Optional[BlobCache] = None  # where images/blobs/ come from; None when sealing a plan
        self.statement = b""  # the provenance statement (bundler/stage/provenance.py), to be signed first

    def add_provenance(self, envelope: bytes) -> None:
        """The signed provenance envelope becomes a member; bundle.json and SHA256SUMS are made with it.

        Until then ``meta_bytes`` and ``sums`` are empty: the envelope's signature comes before them, since
        SHA256SUMS lists the envelope and bundle.json its size."""
        member = bytes_member(PROVENANCE_PATH, envelope)
        members = sorted([m for m in self.members if m.path != PROVENANCE_PATH] + [member], key=lambda m: c_key(m.path))
        self.members = members
        self.head = replace(self.head, members=tuple(Member(m.path, m.size, m.executable) for m in members),
                            total_size=sum(m.size for m in members))
        self.meta_bytes = canonical_json(self.head.to_dict())
        entries = {m.path: m.sha256 for m in members}
        entries[META_NAME] = hashlib.sha256(self.meta_bytes).hexdigest()
        self.sums = format_sums(entries)


class MirrorUse(TypedDict):
    """A --mirror rule that was used, in bundle.json's informative ``mirrors``: the rule and what went through it."""
    source: str
    mirror: str
    refs: List[str]


def _mirror_use(rule: MirrorJSON) -> MirrorUse:
    return {"source": rule["source"], "mirror": rule["mirror"], "refs": []}


@dataclass
class SourceOptions:
    """Where images come from (cache, mirrors, TLS trust, insecure hosts) and how the lock file applies."""
    cache_dir: str = ""
    mirrors: Tuple[str, ...] = ()
    registry_ca: Optional[str] = None
    insecure: Tuple[str, ...] = ()
    show_progress: bool = True
    lock_mode: str = "default"  # default | locked | ignore
    sbom: bool = True           # SBOMs of every image manifest with syft (bundler/stage/sbom.py); --no-sbom: False
    transport: Optional[Transport] = None  # to the registries; None: the real one (tests pass an in-memory registry)


def pull_all(manifest: Manifest, opts: SourceOptions, epoch: int, lockcheck: Optional[LockCheck] = None,
          fetch: bool = True) -> Tuple[List[PulledImage], List[PulledChart], BlobCache, List[MirrorUse]]:
    cache = BlobCache(opts.cache_dir or default_cache_dir())
    if not manifest.images and not manifest.charts:
        return [], [], cache, []
    if opts.registry_ca and not os.path.isfile(opts.registry_ca):
        raise UsageError("the CA file %s does not exist" % opts.registry_ca)
    registry_specs, url_mirrors = split_mirrors(opts.mirrors)
    mirrors = [parse_mirror(m) for m in registry_specs]

    def progress(total: int, desc: str) -> Progress:
        return Progress(total, desc, opts.show_progress)
    puller = Puller(cache, mirrors, opts.registry_ca, opts.insecure, progress, transport=opts.transport)
    where = [manifest.doc.where(("spec", "images", i)) for i in range(len(manifest.images))]
    images = pull_images(manifest.images, where, puller, lockcheck, fetch)
    fetcher = ChartFetcher(cache, puller, url_mirrors, opts.registry_ca, opts.insecure, epoch)
    chart_where = [manifest.doc.where(("spec", "charts", i)) for i in range(len(manifest.charts))]
    charts = fetch_charts(manifest.charts, chart_where, fetcher, os.path.dirname(os.path.abspath(manifest.path)))
    if lockcheck is not None:
        for chart in charts:
            lockcheck.chart(chart.name, chart.version, chart.lock_digest)
    used: Dict[str, MirrorUse] = {}
    for image in images:
        if image.mirror is not None:
            used.setdefault(image.mirror.source, _mirror_use(image.mirror.to_json()))["refs"].append(str(image.ref))
    for chart in charts:
        if chart.mirror is not None:
            used.setdefault(chart.mirror["source"], _mirror_use(chart.mirror))["refs"].append(
                "chart %s %s" % (chart.name, chart.version))
    for entry in used.values():
        entry["refs"].sort()
    return images, charts, cache, [used[k] for k in sorted(used)]


def stage(manifest: Manifest, opts: Optional[SourceOptions] = None) -> Staged:
    opts = opts or SourceOptions()
    check_tenant_files(manifest.tenants)
    epoch, created = build_time(manifest)
    lockcheck = LockCheck(manifest, opts.lock_mode)
    members, files, tenants = plan_members(manifest)
    for m in members:
        lockcheck.file(m.path, m.sha256)
    syft = _syft(manifest, opts)  # before anything is downloaded: a missing syft is said at once
    images, charts, cache, mirrors = pull_all(manifest, opts, epoch, lockcheck)
    lock_status = lockcheck.finish()
    helm_check = check_charts(charts, images, cache, manifest.namespace)
    sbom_members, sboms, sbom_warnings = _sboms(images, cache, epoch, syft, manifest, members, files, tenants, charts)
    members = sorted(members + image_members(images, cache, charts) + sbom_members, key=lambda m: c_key(m.path))
    head = bundle_document(manifest, created, members, files, tenants, images, mirrors, charts, lock_status, sboms)
    staged = Staged(manifest, epoch, head, b"", b"", members)
    staged.statement = provenance_statement(
        {m.path: m.sha256 for m in members}, head, os.path.basename(manifest.path), manifest_sha256(manifest.path),
        {"sbom": opts.sbom and bool(images), "lock": opts.lock_mode})
    staged.helm_check = helm_check
    staged.warnings = lockcheck.warnings + [note for image in images for note in image.notes] + sbom_warnings
    staged.cache = cache
    return staged


def _syft(manifest: Manifest, opts: SourceOptions) -> Optional[str]:
    """The syft binary the SBOMs are made with; None with --no-sbom or without images; missing, exit 9."""
    from bundler.stage.sbom import NO_SYFT, find_syft

    if not (manifest.images and opts.sbom):
        return None
    syft = find_syft()
    if syft is None:
        raise LocalEnvironmentError(NO_SYFT)
    return syft


def _sboms(images: List[PulledImage], cache: BlobCache, epoch: int, syft: Optional[str], manifest: Manifest,
           planned: List[PlannedMember], files: List[BundleFile], tenants: List[Tenant], charts: List[PulledChart]
           ) -> Tuple[List[PlannedMember], Json, List[str]]:
    """sbom/: the SBOMs of every image manifest (issue 14), or the record that none were made (--no-sbom), and the
    SBOM of the files, tenant files and charts."""
    from bundler.stage.contentsbom import content_sbom
    from bundler.stage.sbom import bundle_sboms

    listed, listed_charts = _content(planned, files, tenants, charts)
    content = content_sbom(manifest.name, manifest.version, epoch, listed, listed_charts)
    made, record, warnings = bundle_sboms(images, cache, epoch, syft, content)
    return [bytes_member(path, data) for path, data in made], record, warnings


def _content(planned: List[PlannedMember], files: List[BundleFile], tenants: List[Tenant],
             charts: List[PulledChart]) -> Tuple[List["ContentFile"], List["ContentChart"]]:
    """What the content SBOM lists, with the sha1 SPDX asks of every file (read again: these are the manifest's
    own files and the charts' values, small beside the images)."""
    from bundler.stage.contentsbom import ContentChart, ContentFile

    by_path = {m.path: m for m in planned}

    def sha1(member: PlannedMember) -> str:
        h = hashlib.sha1(usedforsecurity=False)
        for chunk in member.chunks():
            h.update(chunk)
        return h.hexdigest()

    listed = [ContentFile(f.target, f.sha256, sha1(by_path[f.target]), f.size, "file",
                          f.source if isinstance(f.source, str) else "", f.executable) for f in files]
    listed += [ContentFile(t.path, by_path[t.path].sha256, sha1(by_path[t.path]), by_path[t.path].size, "tenant",
                           t.source if isinstance(t.source, str) else "", component=t.component) for t in tenants]
    out: List[ContentChart] = []
    for chart in sorted(charts, key=lambda c: c.name):
        e = chart.entry
        values = None
        if chart.values is not None and e.values is not None:
            values = ContentFile(e.values, hashlib.sha256(chart.values).hexdigest(),
                                 hashlib.sha1(chart.values, usedforsecurity=False).hexdigest(), len(chart.values),
                                 "chart-values")
        out.append(ContentChart(e.name, e.version, e.path, e.sha256, e.size if isinstance(e.size, int) else 0,
                                e.source if isinstance(e.source, str) else "",
                                e.origin if isinstance(e.origin, str) else "", e.oci.digest, values))
    return sorted(listed, key=lambda f: c_key(f.path)), out


def lock(manifest_path: str, opts: Optional[SourceOptions] = None) -> Dict[str, Any]:
    """Resolve every image, chart and file of the manifest and write <stem>.lock.json beside it."""
    manifest = load_manifest(manifest_path)
    opts = opts or SourceOptions()
    epoch, _ = build_time(manifest)
    members, _files, _tenants = plan_members(manifest)
    images, charts, _cache, _mirrors = pull_all(manifest, opts, epoch, None, fetch=False)
    return write_lock(manifest, images, charts, {m.path: m.sha256 for m in members})
