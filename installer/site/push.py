"""Phases 3 and 6 against a site registry: push by digest, then move tags.

Images land as SITE[/PREFIX]/<source host>/<path>, the host a valid path component (127.0.0.1_5000), or
without the host with --strip-source-host (refused when two sources would collide); charts as
SITE[/PREFIX]/charts/<name> (installer/format/reference.py renders both). Every name and tag is checked
against the distribution grammar before the first request (exit 3 listing them).
Order: blobs (HEAD to skip, cross-repo mount when this run already put the blob elsewhere), then
per-platform manifests, then indexes, all by digest; tags move last, in phase 6, so a site never sees
a tag pointing at something incomplete. A second run writes nothing: everything is checked with HEAD first.
"""

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Dict, List, Optional, Tuple

from installer.site import credentials
from installer import faults
from installer.errors import InvalidInput, RegistryError, UsageError
from installer.fsutil import open_installed
from installer.format.imagecheck import read_blob
from installer.format.model import REFERRER_TAG_RE, BundleHead, Chart, Image, Json, fallback_tag
from installer.format.oci import OCI_INDEX, image_manifest, parse_document, parse_manifest
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
        # cosign's tags (sha256-<hex>.sig/.att/.sbom) beside the image, owned like its own tag
        tags += [(repos[image.ref], r.tag, r.digest, r.media_type) for r in image.referrers if r.tag]
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
    referrers_pushed: int = 0  # supply-chain referrers (signatures, attestations, SBOMs) put by digest
    referrer_tags: int = 0     # cosign tags and OCI fallback tag indexes written or merged (phase 6)
    foreign_skipped: List[str] = field(default_factory=list)  # foreign layers not carried: the site's hosts
                                                              # fetch them from their URLs


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
        """(blobs, manifests in push order: children before their index, referrers after their subjects),
        deduplicated per repository. Foreign layers the bundle left out are not pushed: they are listed."""
        blobs: Dict[Tuple[str, str], _Item] = {}
        manifests: Dict[Tuple[str, str], _Item] = {}
        carried = self.meta.sizes

        def add_blobs(repo: str, item: _Item, what: str) -> None:
            cfg, layers = image_manifest(self._read(item.digest), item.media_type, what)
            for b in [cfg] + layers:
                if b.foreign and blob_path(b.digest) not in carried:
                    if b.digest not in self.report.foreign_skipped:
                        self.report.foreign_skipped.append(b.digest)
                    continue
                blobs.setdefault((repo, b.digest), _Item(repo, b.digest, b.size, b.media_type, blob_path(b.digest)))

        for image in self.meta.images:
            repo = self.repos[image.ref]
            kinds = {m.digest: m.media_type for m in image.manifests}
            top = _Item(repo, image.digest, image.size, image.media_type, blob_path(image.digest))
            config, children = parse_manifest(self._read(image.digest), image.media_type, image.ref)
            leaves = [top] if config is not None else [
                _Item(repo, c.digest, c.size, c.media_type or kinds.get(c.digest, ""), blob_path(c.digest))
                for c in children]
            for leaf in leaves:
                add_blobs(repo, leaf, image.ref)
                manifests.setdefault((repo, leaf.digest), leaf)
            manifests.setdefault((repo, top.digest), top)  # after its children: dict order is insertion order
            for r in image.referrers:  # after their subjects, which the site may check exist
                item = _Item(repo, r.digest, r.size, r.media_type, blob_path(r.digest))
                add_blobs(repo, item, "%s: referrer %s" % (image.ref, r.digest))
                manifests.setdefault((repo, r.digest), item)
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
        referrers = {r.digest for i in self.meta.images for r in i.referrers}
        for m in manifests:
            if self.registry.head_manifest(m.repo, m.digest, ["repository:%s:pull,push" % m.repo]) == m.digest:
                self.report.manifests_present += 1
                continue
            data = self._read(m.digest)
            try:
                _digest, subject_seen = self.registry.put_manifest_answer(m.repo, m.digest, data, m.media_type)
            except RegistryError as exc:
                raise self._explain(exc, data, m) from exc
            if subject_seen:
                self.registry.has_referrers_api = True
            self.report.manifests_pushed += 1
            if m.digest in referrers:
                self.report.referrers_pushed += 1
        return self.report

    def _explain(self, exc: RegistryError, data: bytes, m: _Item) -> RegistryError:
        """A refused manifest with foreign layers: say which registry setting lets them in."""
        try:
            _cfg, layers = image_manifest(data, m.media_type, m.digest)
        except InvalidInput:
            return exc
        if not any(layer.foreign for layer in layers):
            return exc
        return RegistryError("%s; the manifest %s names foreign layers with URLs (Windows base layers), which a "
                             "distribution registry accepts only when its configuration allows those URLs "
                             "(validation.manifests.urls.allow, e.g. [\"^https://mcr\\.microsoft\\.com/\"]; "
                             "Harbor, Zot and others have their own setting)" % (exc.message, m.digest),
                             exc.problems)

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
            if REFERRER_TAG_RE.fullmatch(tag):
                self.report.referrer_tags += 1
        self._fallback_indexes()
        return self.report

    def _fallback_indexes(self) -> None:
        """OCI 1.1 referrers on a site without the referrers API (distribution 2.8, most on-premises registries):
        the referrers tag schema's index, tagged sha256-<hex of the subject>, lists them; an index already there
        (other referrers of the same image) is merged, never replaced. A referrer whose manifest names no subject
        (buildx's attestation manifests) is listed that way on every site: the API could not find it."""
        wanted: Dict[Tuple[str, str], List[Dict[str, Json]]] = {}
        for image in self.meta.images:
            repo = self.repos[image.ref]
            for r in image.referrers:
                if r.tag:
                    continue
                doc = parse_document(self._read(r.digest), r.media_type, "%s: referrer %s" % (image.ref, r.digest))
                if doc.subject is not None and doc.subject.digest == r.subject and self._site_has_api(repo, r.subject):
                    continue  # the site's API lists it already, from its subject field
                desc: Dict[str, Json] = {"mediaType": r.media_type, "digest": r.digest, "size": r.size}
                if doc.kind_type:
                    desc["artifactType"] = doc.kind_type
                if doc.annotations:
                    desc["annotations"] = dict(doc.annotations)
                wanted.setdefault((repo, r.subject), []).append(desc)
        for (repo, subject), descs in sorted(wanted.items()):
            tag = fallback_tag(subject)
            got = self.registry.find_manifest(repo, tag)
            listed: List[Json] = []
            if got is not None:
                data, media_type, _digest = got
                if media_type != OCI_INDEX:
                    raise RegistryError("%s/%s:%s is a %s, not the OCI index of the referrers of %s; the referrers "
                                        "tag schema cannot be written there" % (self.host, repo, tag,
                                                                               media_type, subject))
                parse_document(data, OCI_INDEX, "%s/%s:%s" % (self.host, repo, tag))  # a valid index, or exit 3
                listed = json.loads(data)["manifests"]  # kept verbatim: other tools' entries are theirs
            have = {d.get("digest") for d in listed if isinstance(d, dict)}
            merged = listed + [d for d in descs if d["digest"] not in have]
            if got is not None and len(merged) == len(listed):
                self.report.tags_current += 1
                continue
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": merged},
                               sort_keys=True, separators=(",", ":")).encode()
            self.registry.put_manifest(repo, tag, index, OCI_INDEX)
            self.report.tags_moved += 1
            self.report.referrer_tags += 1

    def _site_has_api(self, repo: str, subject: str) -> bool:
        if self.registry.has_referrers_api is None:
            self.registry.referrers(repo, subject)
        return bool(self.registry.has_referrers_api)
