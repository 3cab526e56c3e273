"""Phases 3 and 6 against a site registry: push by digest, then move tags.

Images land as SITE[/PREFIX]/<source host>/<path> (or without the host with --strip-source-host,
refused when two sources would collide). Order: blobs (HEAD to skip, cross-repo mount when this
run already put the blob elsewhere), then per-platform manifests, then indexes, all by digest;
tags move last, in phase 6, so a site never sees a tag pointing at something incomplete.
A second run writes nothing: everything is checked with HEAD first.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, List, Optional, Tuple

from installer.site import credentials
from installer import faults
from installer.errors import InvalidInput, UsageError
from installer.fsutil import open_installed
from installer.format.imagecheck import read_blob
from installer.format.model import BundleHead, Chart, Image
from installer.format.oci import image_manifest, parse_manifest
from installer.format.paths import blob_path
from installer.format.reference import DOMAIN_RE, PATH_RE, parse, site_repository
from installer.site.registry import Registry
from installer.site.retry import RetryPolicy
from installer.site.transport import Transport
from installer.progress import Progress

PARALLEL = 4
CHUNKED_ABOVE = 512 * 1024 * 1024  # larger blobs go up in PATCH chunks of this size


def parse_site(value: str) -> Tuple[str, str]:
    """--registry HOST[:PORT][/PREFIX] -> (host, prefix)."""
    host, _, prefix = value.strip().strip("/").partition("/")
    if not DOMAIN_RE.fullmatch(host) or (prefix and not PATH_RE.fullmatch(prefix)):
        raise UsageError("--registry takes HOST[:PORT][/PREFIX], not %r" % value)
    return host, prefix


def site_repositories(meta: BundleHead, prefix: str, strip: bool) -> Dict[str, str]:
    """ref -> repository on the site ([PREFIX/]<source host>/<path>); --strip-source-host collisions are exit 3."""
    out: Dict[str, str] = {}
    owner: Dict[str, str] = {}
    for image in meta.images:
        ref = parse(image.ref)
        repo = site_repository(ref, prefix, strip)
        if owner.setdefault(repo, ref.repository) != ref.repository:
            raise InvalidInput("--strip-source-host would put %s and %s into the same repository %s"
                               % (owner[repo], ref.repository, repo))
        out[image.ref] = repo
    return out


def chart_repository(prefix: str, name: str) -> str:
    """Charts land as SITE[/PREFIX]/charts/<name>, so `helm pull oci://SITE[/PREFIX]/charts/<name>@DIGEST` works."""
    return "/".join(p for p in (prefix, "charts", name) if p)


def planned_tags(meta: BundleHead, prefix: str, strip: bool) -> List[Tuple[str, str, str, str]]:
    """(repository, tag, digest, media type) of every tag phase 6 points on the site: the images' tags, and
    each chart's version (Helm writes '+' as '_' in OCI tags)."""
    repos = site_repositories(meta, prefix, strip)
    tags: List[Tuple[str, str, str, str]] = []
    for image in meta.images:
        tag = parse(image.ref).tag
        if tag:
            tags.append((repos[image.ref], tag, image.digest, image.media_type))
    tags += [(chart_repository(prefix, c.name), c.version.replace("+", "_"), c.oci.digest, c.oci.media_type)
             for c in meta.charts]
    return tags


@dataclass
class PushReport:
    """What a push did on one site: counters that phase 3 (blobs, manifests) and phase 6 (tags) add to, and
    where the images and charts are on the site, pinned by digest."""

    site: str                  # the --registry value
    images: List[str]          # SITE/repo[:tag]@digest, one per image of the bundle
    charts: List[str]          # oci://SITE/[PREFIX/]charts/<name>@digest
    blobs_pushed: int = 0
    bytes_pushed: int = 0
    blobs_mounted: int = 0     # from another repository of the site, not sent again
    blobs_present: int = 0
    manifests_pushed: int = 0
    manifests_present: int = 0
    tags_moved: int = 0
    tags_current: int = 0


class _Item:
    __slots__ = ("repo", "digest", "size", "media_type", "path")

    def __init__(self, repo: str, digest: str, size: int, media_type: str, path: str) -> None:
        self.repo = repo
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.path = path


class SitePush:
    def __init__(self, tree: str, meta: BundleHead, site: str, *, strip_source_host: bool = False,
                 registry_ca: Optional[str] = None, insecure: Tuple[str, ...] = (),
                 progress_factory: Optional[Callable[[int, str], Progress]] = None, hashed_this_run: bool = False,
                 transport: Optional[Transport] = None, retry: Optional[RetryPolicy] = None) -> None:
        # hashed_this_run: the caller has hashed every file of ``tree`` in this run, under the kit lock (install's
        # phase 1 while writing them, or its check of an installed tree): blobs are then not hashed a second time
        # on their way out (1.1 s a 1.5 GB push on this machine's 2 cores). Manifests always are (read_blob).
        self.rehash = not hashed_this_run
        self.tree = tree
        self.meta = meta
        self.host, self.prefix = parse_site(site)
        self.strip = strip_source_host
        if registry_ca and not os.path.isfile(registry_ca):
            raise UsageError("the CA file %s does not exist" % registry_ca)
        # transport, retry: the seam for tests (an in-memory registry, a policy that does not sleep);
        # None: the real ones
        self.registry = Registry(self.host, insecure=self.host in insecure, ca_file=registry_ca,
                                 credentials=credentials.for_install(self.host), insecure_hosts=insecure,
                                 transport=transport, policy=retry)
        self.progress_factory = progress_factory
        self.repos = self._repositories()
        self.report = PushReport(site, [self.target(i) for i in meta.images],
                                 ["oci://%s/%s@%s" % (self.host, self.chart_repo(c), c.oci.digest)
                                  for c in meta.charts])
        self._lock = threading.Lock()
        self._placed: Dict[str, str] = {}  # digest -> a repository on the site that holds it

    def chart_repo(self, chart: Chart) -> str:
        return chart_repository(self.prefix, chart.name)

    def _repositories(self) -> Dict[str, str]:
        try:
            return site_repositories(self.meta, self.prefix, self.strip)
        except InvalidInput as exc:
            raise InvalidInput(exc.message.replace("the same repository ", "the same repository %s/"
                                                   % self.host)) from exc

    def target(self, image: Image) -> str:
        """Where the image is on the site, pinned: SITE/repo[:tag]@digest."""
        ref = parse(image.ref)
        base = "%s/%s" % (self.host, self.repos[image.ref])
        return base + (":" + ref.tag if ref.tag else "") + "@" + image.digest

    def site_tags(self) -> Dict[str, str]:
        """ref -> SITE/repo:tag, for images that have a tag (Docker tags the loaded image with it too)."""
        out: Dict[str, str] = {}
        for image in self.meta.images:
            tag = parse(image.ref).tag
            if tag:
                out[image.ref] = "%s/%s:%s" % (self.host, self.repos[image.ref], tag)
        return out

    def _read(self, digest: str) -> bytes:
        return read_blob(self.tree, digest)

    def _plan(self) -> Tuple[List[_Item], List[_Item]]:
        """(blobs, manifests in push order: children before their index), deduplicated per repository."""
        blobs: Dict[Tuple[str, str], _Item] = {}
        manifests: Dict[Tuple[str, str], _Item] = {}
        for image in self.meta.images:
            repo = self.repos[image.ref]
            kinds = {m.digest: m.media_type for m in image.manifests}
            top = _Item(repo, image.digest, image.size, image.media_type, blob_path(image.digest))
            config, children = parse_manifest(self._read(image.digest), image.media_type, image.ref)
            leaves = [top] if config is not None else [
                _Item(repo, c.digest, c.size, c.media_type or kinds.get(c.digest, ""), blob_path(c.digest))
                for c in children]
            for leaf in leaves:
                cfg, layers = image_manifest(self._read(leaf.digest), leaf.media_type, image.ref)
                for b in [cfg] + layers:
                    blobs.setdefault((repo, b.digest), _Item(repo, b.digest, b.size, b.media_type, blob_path(b.digest)))
                manifests.setdefault((repo, leaf.digest), leaf)
            manifests.setdefault((repo, top.digest), top)  # after its children: dict order is insertion order
        for chart in self.meta.charts:
            repo = self.chart_repo(chart)
            top = _Item(repo, chart.oci.digest, chart.oci.size, chart.oci.media_type, blob_path(chart.oci.digest))
            cfg, layers = image_manifest(self._read(chart.oci.digest), chart.oci.media_type, "chart " + chart.name)
            for b in [cfg] + layers:
                blobs.setdefault((repo, b.digest), _Item(repo, b.digest, b.size, b.media_type, blob_path(b.digest)))
            manifests.setdefault((repo, top.digest), top)
        return list(blobs.values()), list(manifests.values())

    def push_content(self) -> PushReport:
        """Phase 3: every blob and manifest by digest, image by image (a progress bar each)."""
        blobs, manifests = self._plan()
        by_repo: Dict[str, List[_Item]] = {}
        for b in blobs:
            by_repo.setdefault(b.repo, []).append(b)
        for repo, items in by_repo.items():
            missing = [b for b in items if not self._exists(b)]
            progress = self.progress_factory(sum(b.size for b in missing), "push %s" % repo) if (
                self.progress_factory and missing) else None
            try:
                with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
                    list(pool.map(lambda b, progress=progress: self._upload(b, progress), missing))
            finally:
                if progress:
                    progress.close()
        for m in manifests:
            if self.registry.head_manifest(m.repo, m.digest, ["repository:%s:pull,push" % m.repo]) == m.digest:
                self.report.manifests_present += 1
                continue
            self.registry.put_manifest(m.repo, m.digest, self._read(m.digest), m.media_type)
            self.report.manifests_pushed += 1
        return self.report

    def _exists(self, b: _Item) -> bool:
        if self.registry.blob_exists(b.repo, b.digest):
            with self._lock:
                self.report.blobs_present += 1
                self._placed.setdefault(b.digest, b.repo)
            return True
        return False

    def _upload(self, b: _Item, progress: Optional[Progress]) -> None:
        source = self._placed.get(b.digest)
        location = None
        if source and source != b.repo:
            location = self.registry.mount_blob(b.repo, b.digest, source)
            if location is None:
                with self._lock:
                    self.report.blobs_mounted += 1
                return
        # Opened without following a link and re-hashed while it is sent (registry._BlobCheck).
        def opener() -> BinaryIO:
            return os.fdopen(open_installed(self.tree, b.path, b.size), "rb")

        self.registry.upload_blob(b.repo, b.digest, b.size, opener, location,
                                  CHUNKED_ABOVE, progress.update if progress else None, self.rehash)
        faults.point("mid-push")
        with self._lock:
            self.report.blobs_pushed += 1
            self.report.bytes_pushed += b.size
            self._placed.setdefault(b.digest, b.repo)

    def move_tags(self) -> PushReport:
        """Phase 6: point each tag at its digest (only where it points elsewhere)."""
        for repo, tag, digest, media_type in planned_tags(self.meta, self.prefix, self.strip):
            if self.registry.head_manifest(repo, tag, ["repository:%s:pull,push" % repo]) == digest:
                self.report.tags_current += 1
                continue
            self.registry.put_manifest(repo, tag, self._read(digest), media_type)
            self.report.tags_moved += 1
        return self.report
