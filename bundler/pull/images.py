"""Pull images into a content-addressed cache and describe them for the bundle (docs/FORMAT.md "Archive format").

Rules that keep digests intact:
- manifests and blobs are kept byte-exact as served, every byte re-hashed against its digest;
- an index is kept whole (all children) unless `platforms` names a strict subset; then the chosen
  per-platform manifests keep their upstream digests and a tag serving several of them gets a
  derived index, marked as derived in bundle.json; a digest-pinned index with a subset is refused;
- Docker schema 1 is refused; tag and digest given together must agree;
- a subset keeps the chosen platforms' buildx attestation manifests (in the derived index, or as referrers of a
  single chosen manifest);
- supply-chain referrers of every kept manifest travel with it unless ``referrers: false`` (referrers.py);
  ``signed-by`` checks the upstream cosign signature first (signedby.py);
- foreign (non-distributable) layers are left out and listed (``foreign-layers: skip``) or fetched from their
  URLs (``include``, foreign.py); the manifests and their digests never change.
"""

import hashlib
import json
import os
import stat
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from installer.site import credentials
from installer.errors import ContentMismatch, InternalError, InvalidInput, RegistryError
from installer.format.oci import (MAX_MANIFEST_BYTES, OCI_INDEX, REF_NAME, Descriptor, Platform, config_platform,
                           parse_manifest, platform_matches, platform_string)
from installer.format.model import Image, Json, PlatformManifest, Referrer, SkippedLayer, UpstreamSignature
from installer.format.reference import Mirror, Reference, apply_mirrors, parse, strict_digest
from installer.site.registry import Registry
from installer.site.retry import RetryPolicy
from installer.progress import Progress
from installer.site.transport import Transport

from bundler.plan.lock import LockCheck
from bundler.pull.chartrepo import ChartRepoClient
from bundler.pull.dockersource import save_to_cache
from bundler.pull.foreign import fetch_foreign_layer, layer_urls
from bundler.pull.referrers import Found, ReferrerFinder
from bundler.pull.signedby import check_signed_by

PARALLEL_BLOBS = 4
# An image config is read whole (for its platform): the cap containers/image (skopeo, Podman, CRI-O)
# reads configs under, checked against the descriptor before anything is downloaded.
MAX_CONFIG_BYTES = 4 * 1024 * 1024


class BlobCache:
    """~/.cache/offline-bundle/blobs/sha256/<hex>: complete, verified blobs only (written by rename).

    Every name in the cache comes from a strict digest (``path`` refuses anything else: a registry
    once answered `sha256:/abs/path`), entries are read only as regular files (never through a link),
    and the cache deletes nothing but a regular file that is provably one of its own entries.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        self.types = os.path.join(root, "manifest-types")  # a manifest's media type, as served
        os.makedirs(self.blobs, exist_ok=True)
        os.makedirs(self.types, exist_ok=True)

    @staticmethod
    def _hex(digest: str) -> str:
        return strict_digest(digest, "a lookup in the blob cache")[len("sha256:"):]

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs, self._hex(digest))

    def has(self, digest: str, size: Optional[int] = None) -> bool:
        try:
            st = os.lstat(self.path(digest))
        except FileNotFoundError:
            return False
        # Anything but a regular file (a planted link) is not an entry: it is fetched again and renamed over.
        return stat.S_ISREG(st.st_mode) and (size is None or st.st_size == size)

    def read(self, digest: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """A small entry (a manifest or a config), re-hashed; a corrupt one is removed."""
        try:
            fd = os.open(self.path(digest), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise ContentMismatch("the cache entry for %s cannot be read (%s); build again"
                                  % (digest, exc.strerror)) from exc
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ContentMismatch("the cache entry for %s is not a regular file; remove it" % digest)
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise InvalidInput("the blob %s is larger than %d MiB, more than a manifest or an image config may be"
                               % (digest, limit >> 20))
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            self.discard(digest)
            raise ContentMismatch("the cache entry for %s was corrupt and has been removed; build again" % digest)
        return data

    def discard(self, digest: str) -> None:
        """Delete one corrupt entry: a regular file directly inside blobs/sha256, named by a strict digest."""
        path = os.path.abspath(self.path(digest))
        if os.path.dirname(path) != os.path.abspath(self.blobs):  # cannot happen for a strict digest: proven here
            raise InternalError("refusing to delete %s: it is not inside the blob cache" % path)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass

    def put_bytes(self, digest: str, data: bytes) -> None:
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ContentMismatch("refusing to cache bytes under the wrong digest %s" % digest)
        if self.has(digest, len(data)):
            return
        _replace_into(self.blobs, self._hex(digest), data)

    def put_stream(self, chunks: Iterable[bytes],
                   check: Optional[Callable[[str, int], None]] = None) -> Tuple[str, int]:
        """Hash ``chunks`` while writing them into the cache; (digest, size). ``check`` may refuse
        the result before it becomes an entry; a failure leaves nothing behind."""
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".part-")
        try:
            h, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    h.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())  # an entry is whole once named: a crash leaves a .part- file, never half a blob
            digest = "sha256:" + h.hexdigest()
            if check is not None:
                check(digest, size)
            os.replace(tmp, self.path(digest))
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return digest, size

    def media_type(self, digest: str) -> str:
        try:
            with open(os.path.join(self.types, self._hex(digest)), "rb") as fh:
                raw = fh.read(256)
        except FileNotFoundError:
            return ""
        return raw.decode("ascii", "replace").strip()

    def put_manifest(self, digest: str, data: bytes, media_type: str) -> None:
        self.put_bytes(digest, data)
        _replace_into(self.types, self._hex(digest), media_type.encode("ascii", "replace"))

    def download(self, registry: Registry, repo: str, digest: str, size: int,
                 progress: Optional[Callable[[int], None]] = None) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".part-")
        try:
            with os.fdopen(fd, "w+b") as fh:
                registry.download_blob(repo, digest, size, fh, progress)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(digest))
        except BaseException:
            _unlink_quietly(tmp)
            raise


def _replace_into(folder: str, name: str, data: bytes) -> None:
    """Write ``folder/name`` by rename after fsync: a reader (or a crash) never sees half, and a planted link is
    replaced, not followed."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, os.path.join(folder, name))
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "offline-bundle")


@dataclass(frozen=True)
class PulledImage:
    """An image in the blob cache: its bundle.json entry (the format's model) and what only the build needs."""

    entry: Image
    ref: Reference                       # entry.ref, parsed
    blobs: Dict[str, int]                # every blob this image needs: digest -> size
    mirror: Optional[Mirror]
    resolved_digest: str                 # what the reference resolved to upstream (the lock records it)
    notes: Tuple[str, ...] = ()          # what the build says about it (referrers or foreign layers left out)

    @property
    def top(self) -> Descriptor:
        """What images/index.json points at for this reference."""
        return Descriptor(self.entry.media_type, self.entry.digest, self.entry.size)


def pulled(ref: Reference, source: str, fetched_from: str, mirror: Optional[Mirror], top: Descriptor,
           index_digest: Optional[str], platforms: Json, manifests: Sequence[Tuple[Descriptor, str]],
           derived: bool, blobs: Dict[str, int], resolved_digest: str, referrers: Tuple[Referrer, ...] = (),
           signatures: Tuple[UpstreamSignature, ...] = (), skipped: Tuple[SkippedLayer, ...] = (),
           notes: Tuple[str, ...] = ()) -> PulledImage:
    """The image's bundle.json entry: what ``top`` is, the per-platform manifests kept (each with its platform),
    what travels beside them, and where it came from. ``platforms`` is "all" or the chosen list."""
    kept = tuple(PlatformManifest(d.digest, d.media_type, platform) for d, platform in manifests)
    lists = {"referrers": referrers, "signatures": signatures, "skipped_layers": skipped}
    entry = Image(str(ref), top.digest, top.media_type, top.size, kept, derived, source, repository=ref.repository,
                  tag=ref.tag, index_digest=index_digest, platforms=platforms, fetched_from=fetched_from,
                  referrers=tuple(sorted(referrers, key=lambda r: (r.subject, r.kind, r.digest))),
                  signatures=signatures, skipped_layers=tuple(sorted(skipped, key=lambda s: s.digest)),
                  absent=frozenset(k for k, v in lists.items() if not v))
    return PulledImage(entry, ref, blobs, mirror, resolved_digest, notes)


class Graph:
    """What one image needs from the registry, gathered while its manifests are read: blobs (digest -> size),
    the foreign layers left out (foreign-layers: skip) or to fetch from their URLs (include)."""

    def __init__(self, foreign_layers: str = "skip") -> None:
        self.foreign_layers = foreign_layers
        self.blobs: Dict[str, int] = {}
        self.skipped: Dict[str, SkippedLayer] = {}  # by digest, in the order first met
        self.foreign: Dict[str, Descriptor] = {}

    def add_manifest(self, digest: str, size: int, config: Descriptor, layers: Sequence[Descriptor]) -> None:
        self.blobs[digest] = size
        self.blobs[config.digest] = config.size
        for layer in layers:
            if not layer.foreign:
                self.blobs[layer.digest] = layer.size
            elif self.foreign_layers == "include":
                self.blobs[layer.digest] = layer.size  # carried; fetched from its URLs, never from the registry
                self.foreign.setdefault(layer.digest, layer)
            elif layer.digest not in self.skipped:
                self.skipped[layer.digest] = SkippedLayer(layer.digest, layer.size, layer.media_type,
                                                          layer_urls(layer))


@dataclass(frozen=True)
class Shape:
    """What the bundle keeps of an image: ``top`` (what images/index.json points at), the upstream index when
    there is one, the manifests kept with their platforms, whether ``top`` is a derived index, and the buildx
    attestation manifests that travel as referrers of a single chosen platform."""

    top: Descriptor
    index_digest: Optional[str]
    kept: List[Tuple[Descriptor, str]]
    derived: bool
    attestations: List[Descriptor] = field(default_factory=list)

    def kept_digests(self) -> List[str]:
        """The manifests whose referrers are looked for: the top and every kept manifest but attestations."""
        return [self.top.digest] + [d.digest for d, _p in self.kept if d.attestation_of is None
                                    and d.digest != self.top.digest]


class Puller:
    def __init__(self, cache: BlobCache, mirrors: Sequence[Mirror] = (), registry_ca: Optional[str] = None,
                 insecure: Sequence[str] = (), progress_factory: Optional[Callable[[int, str], Progress]] = None,
                 transport: Optional[Transport] = None,
                 retry: Optional[RetryPolicy] = None) -> None:
        self.cache = cache
        self.transport = transport  # None: the real one (http.client); tests pass an in-memory registry
        self.retry = retry
        self.mirrors = list(mirrors)
        self.registry_ca = registry_ca
        self.insecure = list(insecure)
        self._registries: Dict[str, Registry] = {}
        self._lock = threading.Lock()
        self.progress_factory = progress_factory
        self.downloaded: List[str] = []
        self._web: Optional[ChartRepoClient] = None  # foreign layers' own URLs (foreign-layers: include)

    def registry(self, host: str) -> Registry:
        with self._lock:
            if host not in self._registries:
                self._registries[host] = Registry(host, insecure=host in self.insecure, ca_file=self.registry_ca,
                                                  credentials=credentials.for_build(host), insecure_hosts=self.insecure,
                                                  transport=self.transport, policy=self.retry)
            return self._registries[host]

    # --- manifests -------------------------------------------------------------------------------
    def manifest(self, reg: Registry, repo: str, reference: str, known: Optional[Descriptor] = None
                  ) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest); by digest from the cache when we have it."""
        digest = reference if reference.startswith("sha256:") else reg.head_manifest(repo, reference)
        if digest and self.cache.has(digest):
            media_type = (known.media_type if known is not None else "") or self.cache.media_type(digest)
            if media_type:
                return self.cache.read(digest), media_type, digest
        data, media_type, actual = reg.get_manifest(repo, digest or reference)
        if digest and actual != digest:
            raise ContentMismatch("%s/%s:%s moved while it was read (%s, then %s); build again"
                                  % (reg.host, repo, reference, digest, actual))
        self.cache.put_manifest(actual, data, media_type)
        return data, media_type, actual

    def _image_blobs(self, reg: Registry, repo: str, desc: Descriptor, where: str, graph: "Graph") -> Platform:
        """Add one image manifest, its config and layers to ``graph``; return its platform."""
        data, media_type, digest = self.manifest(reg, repo, desc.digest, desc)
        if len(data) != desc.size:
            raise ContentMismatch("%s: manifest %s is %d bytes, its descriptor says %d"
                                  % (where, digest, len(data), desc.size))
        config, layers = parse_manifest(data, desc.media_type or media_type, where)
        if config is None:
            raise InvalidInput("%s: an index nested inside an index is not supported" % where)
        graph.add_manifest(digest, len(data), config, layers)
        return desc.platform or {}

    def resolve(self, entry: Dict[str, Any], where: str, pin: Optional[str] = None,
                lockcheck: Optional[LockCheck] = None) -> Tuple[PulledImage, Optional[Registry], str]:
        ref = parse(entry["ref"])
        wanted = entry.get("platforms")
        if entry.get("source") == "docker-daemon":
            return self._from_docker(ref, wanted, where), None, ""
        host, repo, mirror = apply_mirrors(ref, self.mirrors)
        reg = self.registry(host)
        fetched_from = "%s/%s" % (host, repo)
        if ref.digest and ref.tag:
            tagged = reg.head_manifest(repo, ref.tag)
            if tagged is None:
                data, _mt, tagged = reg.get_manifest(repo, ref.tag)
            if tagged != ref.digest:
                raise ContentMismatch("%s: the tag %s points at %s, not the pinned %s"
                                      % (where, ref.tag, tagged, ref.digest))
        if pin and not ref.digest:
            # The lock pins this resolution: fetch that digest even if the tag has moved since.
            if lockcheck is not None and lockcheck.mode == "locked" and ref.tag:
                lockcheck.tag_moved(str(ref), reg.head_manifest(repo, ref.tag), pin)
            data, media_type, digest = self.manifest(reg, repo, pin)
        else:
            reference = ref.digest or ref.tag
            if reference is None:  # never: parse() gives a reference without a digest the tag "latest"
                raise InternalError("%s: %s has neither a tag nor a digest" % (where, ref))
            data, media_type, digest = self.manifest(reg, repo, reference)
        graph = Graph(entry.get("foreign-layers", "skip"))
        shape = self._select(reg, repo, ref, wanted, Descriptor(media_type, digest, len(data)), data, where, graph)
        what = "%s (%s)" % (where, ref)
        carry, signed_by = entry.get("referrers", True), entry.get("signed-by")
        kept = shape.kept_digests()
        found: List[Found] = []
        notes: List[str] = []
        if carry or signed_by:
            finder = ReferrerFinder(reg, repo, self, what)
            pins = lockcheck.referrer_pins(entry["ref"]) if lockcheck is not None and pin and carry else None
            # signed-by: what the reference resolved to is what must be signed, kept or not (a platform subset)
            subjects = kept if carry and pins is None else []
            if signed_by and digest not in kept:
                subjects = subjects + [digest]
            found = finder.find(subjects, shape.attestations if pins is None else [])
            if pins is not None:  # the lock says what travels: exactly those, by digest
                locked, missing = finder.pinned([p for p in pins if p.subject in kept])
                found += locked
                for d, why in missing + [(p.digest, "refers to %s, which this build does not keep" % p.subject)
                                         for p in pins if p.subject not in kept]:
                    assert lockcheck is not None
                    lockcheck.referrer_missing(str(ref), d, why)
            notes += finder.notes
        signatures: List[UpstreamSignature] = []
        if signed_by:
            signatures, found = check_signed_by(signed_by, found, digest, kept, what,
                                                lambda d, s: self._small_blob(reg, repo, d, s), bool(carry))
        found = [f for f in found if f.referrer.subject in kept]
        for item in found:
            graph.blobs.update(item.blobs)
        self._fetch_foreign(graph, what)
        if graph.skipped:
            notes.append("%s: %d foreign layer%s not carried (foreign-layers: skip); the site fetches %s from "
                         "%s" % (what, len(graph.skipped), "" if len(graph.skipped) == 1 else "s",
                                 "it" if len(graph.skipped) == 1 else "them", "its publisher's URLs"))
        source, platforms = entry.get("source", "registry"), sorted(wanted) if wanted else "all"
        image = pulled(ref, source, fetched_from, mirror, shape.top, shape.index_digest, platforms, shape.kept,
                       shape.derived, graph.blobs, digest, tuple(f.referrer for f in found), tuple(signatures),
                       tuple(graph.skipped.values()), tuple(notes))
        return image, reg, repo

    def _small_blob(self, reg: Registry, repo: str, digest: str, size: int) -> bytes:
        """A signature payload: into the cache (even for `lock`, which fetches no layers) and read back whole."""
        if not self.cache.has(digest, size):
            self.cache.download(reg, repo, digest, size)
            self.downloaded.append(digest)
        return self.cache.read(digest, size)

    def put_manifest(self, digest: str, data: bytes, media_type: str) -> None:
        self.cache.put_manifest(digest, data, media_type)

    def _select(self, reg: Registry, repo: str, ref: Reference, wanted: Optional[Sequence[str]], top: Descriptor,
                data: bytes, where: str, graph: "Graph") -> "Shape":
        """What the bundle keeps of what ``ref`` resolved to (``top``, served as ``data``): the whole graph, or
        the chosen platforms (one manifest, or a derived index over them and their buildx attestations)."""
        what = "%s (%s)" % (where, ref)
        config, children = parse_manifest(data, top.media_type, what)
        if config is not None:  # a single-platform manifest
            graph.add_manifest(top.digest, top.size, config, children)
            platform = self._config_platform(reg, repo, config)
            if wanted and not any(platform_matches(w, platform) for w in wanted):
                raise InvalidInput("%s: %s is %s only; platforms asks for %s"
                                   % (where, ref, platform_string(platform), ", ".join(wanted)))
            return Shape(top, None, [(top, platform_string(platform))], False)
        real = [c for c in children if c.platform and platform_string(c.platform) != "unknown/unknown"]
        missing = [w for w in wanted or [] if not any(platform_matches(w, c.platform) for c in real)]
        if missing:
            raise InvalidInput("%s: %s %s, not %s" % (where, ref, _offers(children, real), ", ".join(missing)))
        chosen = [c for c in children if not wanted or any(platform_matches(w, c.platform) for w in wanted)]
        whole = not wanted or all(c in chosen for c in real)
        if whole:
            graph.blobs[top.digest] = top.size
            for child in children:
                self._image_blobs(reg, repo, child, what, graph)
            return Shape(top, top.digest, [(c, platform_string(c.platform)) for c in children], False)
        if ref.digest:
            raise InvalidInput("%s: %s pins an index by digest but platforms selects a subset; the digest could not "
                               "be kept (drop platforms, or pin the per-platform manifest digests)" % (where, ref))
        # buildx's attestation manifests of the chosen platforms stay with them (issue 12, point 5)
        picked = {c.digest for c in chosen}
        attestations = [c for c in children if c.attestation_of in picked and c not in chosen]
        for child in chosen + attestations:
            self._image_blobs(reg, repo, child, what, graph)
        if len(chosen) == 1:
            # One platform: its manifest is the top; its attestations travel as its referrers.
            only = Descriptor(chosen[0].media_type, chosen[0].digest, chosen[0].size)
            return Shape(only, top.digest, [(chosen[0], platform_string(chosen[0].platform))], False, attestations)
        kept = [c for c in children if c in chosen or c in attestations]  # in the upstream order
        derived = derived_index(top.media_type, kept)
        d_digest = "sha256:" + hashlib.sha256(derived).hexdigest()
        self.cache.put_manifest(d_digest, derived, top.media_type)
        graph.blobs[d_digest] = len(derived)
        return Shape(Descriptor(top.media_type, d_digest, len(derived)), top.digest,
                     [(c, platform_string(c.platform)) for c in kept], True)

    def _fetch_foreign(self, graph: "Graph", where: str) -> None:
        """foreign-layers: include: each foreign layer from its own URLs, verified by digest and size, never with
        credentials (chartrepo.ChartRepoClient's rules: checked redirects, https unless the host is named
        insecure, capped at the declared size)."""
        for layer in graph.foreign.values():
            if self.cache.has(layer.digest, layer.size):
                continue
            fetch_foreign_layer(self.web(), self.cache, layer, where)
            self.downloaded.append(layer.digest)

    def web(self) -> ChartRepoClient:
        with self._lock:
            if self._web is None:
                self._web = ChartRepoClient(self.registry_ca, self.insecure)
            return self._web

    def _from_docker(self, ref: Reference, wanted: Optional[Sequence[str]], where: str) -> PulledImage:
        top, blobs, platform = save_to_cache(self.cache, ref, wanted, where)
        if ref.digest and ref.digest != top.digest:
            raise ContentMismatch("%s: the image built from the local Docker engine has digest %s, not the pinned %s"
                                  % (where, top.digest, ref.digest))
        return pulled(ref, "docker-daemon", "docker-daemon", None, top, None, sorted(wanted) if wanted else "all",
                      [(top, platform_string(platform))], False, blobs, top.digest)

    def _config_platform(self, reg: Registry, repo: str, config: Descriptor) -> Dict[str, str]:
        if config.size > MAX_CONFIG_BYTES:
            raise RegistryError("%s/%s: the image config %s is declared as %d bytes, more than the %d MiB an image "
                                "config may be; refused" % (reg.host, repo, config.digest, config.size,
                                                            MAX_CONFIG_BYTES >> 20))
        if not self.cache.has(config.digest, config.size):
            self.cache.download(reg, repo, config.digest, config.size)
            self.downloaded.append(config.digest)
        return config_platform(self.cache.read(config.digest))

    # --- blobs -----------------------------------------------------------------------------------
    def fetch_blobs(self, work: List[Tuple[Registry, str, str, int]], label: str = "pull") -> None:
        """Download every blob the cache lacks, a bounded pool at a time; first error wins."""
        todo = [w for w in work if not self.cache.has(w[2], w[3])]
        if not todo:
            return
        progress = self.progress_factory(sum(w[3] for w in todo), label) if self.progress_factory else None
        try:
            with ThreadPoolExecutor(max_workers=PARALLEL_BLOBS) as pool:
                futures = [pool.submit(self.cache.download, reg, repo, digest, size,
                                       progress.update if progress else None) for reg, repo, digest, size in todo]
                for future in as_completed(futures):
                    error = future.exception()
                    if error is not None:
                        for f in futures:
                            f.cancel()
                        raise error
            self.downloaded += [w[2] for w in todo]
        finally:
            if progress:
                progress.close()


def _offers(children: Sequence[Descriptor], real: Sequence[Descriptor]) -> str:
    """What an index offers, in words, for a platform it does not have."""
    if real:
        return "offers %s" % ", ".join(sorted({platform_string(c.platform) for c in real}))
    kinds = sorted({c.artifact_type if isinstance(c.artifact_type, str) else c.media_type for c in children})
    return "is an index of %d manifest%s with no platform to choose from (%s)" % (
        len(children), "" if len(children) == 1 else "s", ", ".join(kinds[:4]) or "none")


def derived_index(media_type: str, chosen: List[Descriptor]) -> bytes:
    """A deterministic index over the chosen per-platform manifests (their descriptors verbatim)."""
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": [c.to_json() for c in chosen]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def pull_images(entries: Sequence[Dict[str, Any]], where: Sequence[str], puller: Puller,
                lockcheck: Optional[LockCheck] = None, fetch: bool = True) -> List[PulledImage]:
    seen: Dict[str, str] = {}  # reference -> where it is listed
    for entry, w in zip(entries, where):
        ref = str(parse(entry["ref"]))
        if ref in seen:
            raise InvalidInput("%s: %s is listed twice (also at %s)" % (w, ref, seen[ref]))
        seen[ref] = w
    images = []
    sizes: Dict[str, int] = {}
    for entry, w in zip(entries, where):
        pin = (lockcheck.image_pin(entry["ref"])
               if lockcheck is not None and entry.get("source") != "docker-daemon" else None)
        image, reg, repo = puller.resolve(entry, w, pin, lockcheck)
        images.append(image)
        for digest, size in image.blobs.items():
            if sizes.setdefault(digest, size) != size:
                raise InvalidInput("blob %s is declared with two sizes (%d and %d)" % (digest, sizes[digest], size))
        if reg is not None and fetch:  # docker-daemon images are already in the cache
            # One image at a time (its blobs in parallel): a progress bar per image; shared blobs come once.
            puller.fetch_blobs([(reg, repo, d, s) for d, s in image.blobs.items()], "pull %s" % image.ref)
    return images


def layout_index(images: Sequence[PulledImage]) -> bytes:
    """images/index.json: one entry per reference, ref.name the full normalised reference."""
    entries = []
    for image in sorted(images, key=lambda i: str(i.ref)):
        desc = Descriptor(image.top.media_type, image.top.digest, image.top.size,
                          annotations={REF_NAME: str(image.ref)})
        entries.append(desc.to_json())
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

