"""Pull images into a content-addressed cache and describe them for the bundle (docs/FORMAT.md "Archive format").

Rules that keep digests intact:
- manifests and blobs are kept byte-exact as served, every byte re-hashed against its digest;
- an index is kept whole (all children) unless `platforms` names a strict subset; then the chosen
  per-platform manifests keep their upstream digests and a tag serving several of them gets a
  derived index, marked as derived in bundle.json; a digest-pinned index with a subset is refused;
- Docker schema 1 is refused; tag and digest given together must agree.
"""

import hashlib
import json
import os
import stat
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from installer.site import credentials
from installer.errors import ContentMismatch, InternalError, InvalidInput, RegistryError
from installer.format.oci import (MAX_MANIFEST_BYTES, OCI_INDEX, REF_NAME, Descriptor, Platform, config_platform,
                           parse_manifest, platform_matches, platform_string)
from installer.format.model import Image, Json, PlatformManifest
from installer.format.reference import Mirror, Reference, apply_mirrors, parse, strict_digest
from installer.site.registry import Registry
from installer.site.retry import RetryPolicy
from installer.progress import Progress
from installer.site.transport import Transport

from bundler.plan.lock import LockCheck
from bundler.pull.dockersource import save_to_cache

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

    @property
    def top(self) -> Descriptor:
        """What images/index.json points at for this reference."""
        return Descriptor(self.entry.media_type, self.entry.digest, self.entry.size)


def pulled(ref: Reference, source: str, fetched_from: str, mirror: Optional[Mirror], top: Descriptor,
           index_digest: Optional[str], platforms: Json, manifests: Sequence[Tuple[Descriptor, str]],
           derived: bool, blobs: Dict[str, int], resolved_digest: str) -> PulledImage:
    """The image's bundle.json entry: what ``top`` is, the per-platform manifests kept (each with its platform),
    and where it came from. ``platforms`` is "all" or the chosen list."""
    kept = tuple(PlatformManifest(d.digest, d.media_type, platform) for d, platform in manifests)
    entry = Image(str(ref), top.digest, top.media_type, top.size, kept, derived, source, repository=ref.repository,
                  tag=ref.tag, index_digest=index_digest, platforms=platforms, fetched_from=fetched_from)
    return PulledImage(entry, ref, blobs, mirror, resolved_digest)


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

    def registry(self, host: str) -> Registry:
        with self._lock:
            if host not in self._registries:
                self._registries[host] = Registry(host, insecure=host in self.insecure, ca_file=self.registry_ca,
                                                  credentials=credentials.for_build(host), insecure_hosts=self.insecure,
                                                  transport=self.transport, policy=self.retry)
            return self._registries[host]

    # --- manifests -------------------------------------------------------------------------------
    def _manifest(self, reg: Registry, repo: str, reference: str, known: Optional[Descriptor] = None
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

    def _image_blobs(self, reg: Registry, repo: str, desc: Descriptor, where: str, blobs: Dict[str, int]) -> Platform:
        """Add one image manifest, its config and layers to ``blobs``; return its platform."""
        data, media_type, digest = self._manifest(reg, repo, desc.digest, desc)
        if len(data) != desc.size:
            raise ContentMismatch("%s: manifest %s is %d bytes, its descriptor says %d"
                                  % (where, digest, len(data), desc.size))
        config, layers = parse_manifest(data, desc.media_type or media_type, where)
        if config is None:
            raise InvalidInput("%s: an index nested inside an index is not supported" % where)
        blobs[digest] = len(data)
        for blob in [config] + layers:
            blobs[blob.digest] = blob.size
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
            data, media_type, digest = self._manifest(reg, repo, pin)
        else:
            reference = ref.digest or ref.tag
            if reference is None:  # never: parse() gives a reference without a digest the tag "latest"
                raise InternalError("%s: %s has neither a tag nor a digest" % (where, ref))
            data, media_type, digest = self._manifest(reg, repo, reference)
        top = Descriptor(media_type, digest, len(data))
        source, platforms = entry.get("source", "registry"), sorted(wanted) if wanted else "all"
        config, children = parse_manifest(data, media_type, "%s (%s)" % (where, ref))
        blobs: Dict[str, int] = {}
        if config is not None:  # a single-platform manifest
            blobs[digest] = len(data)
            for blob in [config] + children:
                blobs[blob.digest] = blob.size
            platform = self._config_platform(reg, repo, config)
            if wanted and not any(platform_matches(w, platform) for w in wanted):
                raise InvalidInput("%s: %s is %s only; platforms asks for %s"
                                   % (where, ref, platform_string(platform), ", ".join(wanted)))
            return pulled(ref, source, fetched_from, mirror, top, None, platforms, [(top, platform_string(platform))],
                          False, blobs, digest), reg, repo
        real = [c for c in children if c.platform and platform_string(c.platform) != "unknown/unknown"]
        missing = [w for w in wanted or [] if not any(platform_matches(w, c.platform) for c in real)]
        if missing:
            raise InvalidInput("%s: %s offers %s, not %s" % (
                where, ref, ", ".join(sorted({platform_string(c.platform) for c in real})), ", ".join(missing)))
        chosen = [c for c in children if not wanted or any(platform_matches(w, c.platform) for w in wanted)]
        whole = not wanted or all(c in chosen for c in real)
        if whole:
            blobs[digest] = len(data)
            for child in children:
                self._image_blobs(reg, repo, child, "%s (%s)" % (where, ref), blobs)
            return pulled(ref, source, fetched_from, mirror, top, digest, platforms,
                          [(c, platform_string(c.platform)) for c in children], False, blobs, digest), reg, repo
        if ref.digest:
            raise InvalidInput("%s: %s pins an index by digest but platforms selects a subset; the digest could not "
                               "be kept (drop platforms, or pin the per-platform manifest digests)" % (where, ref))
        for child in chosen:
            self._image_blobs(reg, repo, child, "%s (%s)" % (where, ref), blobs)
        kept = [(c, platform_string(c.platform)) for c in chosen]
        if len(chosen) == 1:
            return pulled(ref, source, fetched_from, mirror, Descriptor(chosen[0].media_type, chosen[0].digest,
                                                                        chosen[0].size),
                          digest, platforms, kept, False, blobs, digest), reg, repo
        derived = derived_index(media_type, chosen)
        d_digest = "sha256:" + hashlib.sha256(derived).hexdigest()
        self.cache.put_manifest(d_digest, derived, media_type)
        blobs[d_digest] = len(derived)
        return pulled(ref, source, fetched_from, mirror, Descriptor(media_type, d_digest, len(derived)), digest,
                      platforms, kept, True, blobs, digest), reg, repo

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

