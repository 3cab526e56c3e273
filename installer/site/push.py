"""Phases 3 and 6 against a site registry: push by digest, then move tags.

Images land as SITE[/PREFIX]/<source host>/<path>, the host a valid path component (127.0.0.1_5000), or
without the host with --strip-source-host (refused when two sources would collide); charts as
SITE[/PREFIX]/charts/<name> (installer/format/reference.py renders both). Every name and tag is checked
against the distribution grammar before the first request (exit 3 listing them).
Order: blobs (HEAD to skip, cross-repo mount when this run already put the blob elsewhere), then
per-platform manifests, then indexes, all by digest; tags move last, in phase 6, so a site never sees
a tag pointing at something incomplete. A second run writes nothing: everything is checked with HEAD first.
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
from installer.format.reference import (DOMAIN_RE, PATH_RE, chart_repository, parse, site_name_problem,
                                        site_reference, site_repository, site_tag_problem)
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
    """ref -> repository on the site ([PREFIX/]<source host>/<path>); two sources in one repository are exit 3
    (--strip-source-host, or hosts that differ only by case)."""
    out: Dict[str, str] = {}
    owner: Dict[str, str] = {}
    for image in meta.images:
        ref = parse(image.ref)
        repo = site_repository(ref, prefix, strip)
        if owner.setdefault(repo, ref.repository) != ref.repository:
            raise InvalidInput("%s %s and %s into the same repository %s"
                               % ("--strip-source-host would put" if strip else "the site names would put",
                                  owner[repo], ref.repository, repo))
        out[image.ref] = repo
    return out


def site_name_problems(meta: BundleHead, host: str, prefix: str, strip: bool) -> List[str]:
    """One line per site repository name or tag of this bundle that a registry would refuse (the distribution
    reference grammar): images and charts alike, each named by what the bundle calls it."""
    repos = site_repositories(meta, prefix, strip)
    named = [(repos[i.ref], "image " + i.ref) for i in meta.images]
    named += [(chart_repository(prefix, c.name), "chart %s %s" % (c.name, c.version)) for c in meta.charts]
    problems: List[str] = []
    seen = set()
    for repo, what in named:
        why = site_name_problem(host, repo)
        if why is not None and repo not in seen:
            seen.add(repo)
            problems.append("%s (%s): %s" % (site_reference(host, repo), what, why))
    for repo, tag, _digest, _mt in planned_tags(meta, prefix, strip):
        why = site_tag_problem(tag)
        if why is not None:
            problems.append("%s: %s" % (site_reference(host, repo, tag), why))
    return problems


def check_site_names(meta: BundleHead, site: str, strip: bool) -> None:
    """Exit 3, listing every name the site registry would refuse, before anything is pushed: install runs it when
    it decides (before the kit changes), rollback before it switches, SitePush again before its first request."""
    host, prefix = parse_site(site)
    try:
        problems = site_name_problems(meta, host, prefix, strip)
    except InvalidInput as exc:  # two sources in one repository: named as the site has it
        raise InvalidInput(exc.message.replace("the same repository ", "the same repository %s/" % host)) from exc
    if problems:
        one = len(problems) == 1
        raise InvalidInput("%s %s cannot be pushed to %s: %d repository %s not fit the distribution reference "
                           "grammar; nothing was pushed" % (meta.name, meta.version, host, len(problems),
                                                            "name or tag does" if one else "names or tags do"),
                           problems)


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
        check_site_names(meta, site, strip_source_host)  # exit 3 before the first request
        self.repos = site_repositories(meta, self.prefix, strip_source_host)
        self.report = PushReport(site, [self.target(i) for i in meta.images],
                                 ["oci://" + site_reference(self.host, self.chart_repo(c), digest=c.oci.digest)
                                  for c in meta.charts])
        self._lock = threading.Lock()
        self._placed: Dict[str, str] = {}  # digest -> a repository on the site that holds it

    def chart_repo(self, chart: Chart) -> str:
        return chart_repository(self.prefix, chart.name)

    def target(self, image: Image) -> str:
        """Where the image is on the site, pinned: SITE/repo[:tag]@digest."""
        return site_reference(self.host, self.repos[image.ref], parse(image.ref).tag, image.digest)

    def site_tags(self) -> Dict[str, str]:
        """ref -> SITE/repo:tag, for images that have a tag (Docker tags the loaded image with it too)."""
        out: Dict[str, str] = {}
        for image in self.meta.images:
            tag = parse(image.ref).tag
            if tag:
                out[image.ref] = site_reference(self.host, self.repos[image.ref], tag)
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
