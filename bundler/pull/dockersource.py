"""Image source `docker-daemon`: images that exist only in a local Docker engine.

`docker save` (through the docker SDK) streams a docker-archive; each file is hashed while it is
written into the blob cache, so nothing is held in memory. The config keeps its bytes (its sha256
is the image ID); layers are kept as the uncompressed tars Docker exported (an OCI
`...layer.v1.tar`); the manifest is built here, deterministically. bundle.json records
`source: docker-daemon`: these digests were computed locally, not served by a registry.
"""

import hashlib
import json
import tarfile
from functools import partial
from typing import IO, TYPE_CHECKING, Any, Dict, Iterable, Optional, Sequence, Tuple, cast

from installer.errors import ContentMismatch, DeployError, InternalError, InvalidInput
from installer.format.oci import OCI_MANIFEST, Descriptor, config_platform, platform_matches, platform_string
from installer.format.reference import Reference

if TYPE_CHECKING:  # images.py imports this module: the cache's class is named for the checker only
    from bundler.pull.images import BlobCache

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
CHUNK = 1 << 20


class _Iter:
    """A file-like view of the SDK's chunk generator, for tarfile's stream mode."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _client() -> Any:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DeployError("the docker package is needed for source: docker-daemon") from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises many types for "no engine"; all mean the same here
        raise DeployError("cannot reach the Docker engine for source: docker-daemon (%s)" % type(exc).__name__) from exc
    return client


def save_to_cache(cache: "BlobCache", ref: Reference, wanted: Optional[Sequence[str]], where: str,
                  client: Any = None) -> Tuple[Descriptor, Dict[str, int], Dict[str, str]]:
    """Export ``ref`` from Docker into the cache; return (manifest descriptor, blobs, platform)."""
    import docker.errors

    client = client or _client()
    name = "%s:%s" % (ref.repository, ref.tag) if ref.tag else ref.repository
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound as exc:
        raise InvalidInput("%s: %s is not in the local Docker engine" % (where, name)) from exc
    except docker.errors.APIError as exc:
        raise DeployError("%s: Docker failed to find %s: %s" % (where, name, exc.explanation or exc)) from exc
    files: Dict[str, Tuple[str, int]] = {}  # archive path -> (digest, size)
    manifest_json: Any = None  # as json.loads gives it (None if absent): the try below guards every use
    # typeshed wants a seekable, writable file object for every mode; the stream mode "r|" only ever calls read()
    # (tarfile's _Stream), which is all _Iter has: the stub is wider than the library's need here.
    stream = tarfile.open(fileobj=cast(IO[bytes], _Iter(image.save(named=False))), mode="r|")
    for member in stream:
        if not member.isfile():
            continue
        fh = stream.extractfile(member)
        if fh is None:  # extractfile gives None only for what is not a regular file, skipped above
            raise InternalError("%s: a regular file in docker save's output for %s cannot be read" % (where, name))
        if member.name == "manifest.json":
            try:
                manifest_json = json.loads(fh.read(1 << 20))
            except ValueError as exc:
                raise DeployError("%s: docker save produced a manifest.json that is not JSON" % where) from exc
            continue
        # Digests are computed here from the bytes Docker streams; nothing Docker names becomes a path.
        files[member.name] = cache.put_stream(iter(partial(fh.read, CHUNK), b""))
    try:
        entry = manifest_json[0]
        config_digest, config_size = files[entry["Config"]]
        layers = [files[path] for path in entry["Layers"]]
    except (KeyError, IndexError, TypeError) as exc:
        raise DeployError("%s: docker save produced no usable manifest.json for %s" % (where, name)) from exc
    if config_digest != image.id:
        raise ContentMismatch("%s: Docker's image ID %s is not the sha256 of its config %s"
                              % (where, image.id, config_digest))
    platform = config_platform(cache.read(config_digest))
    if wanted and not any(platform_matches(w, platform) for w in wanted):
        raise InvalidInput("%s: %s is %s; platforms asks for %s"
                           % (where, name, platform_string(platform), ", ".join(wanted)))
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": d, "size": s} for d, s in layers],
    }
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    cache.put_manifest(digest, data, OCI_MANIFEST)
    blobs = {digest: len(data), config_digest: config_size}
    blobs.update(dict(layers))
    return Descriptor(OCI_MANIFEST, digest, len(data)), blobs, platform
