"""`install --docker`: load images into the local Docker engine, standard library only.

The installer talks to the Engine API on its unix socket (DOCKER_HOST=unix://..., else
/var/run/docker.sock) instead of the docker SDK, which the air-gapped host may not have. Docker
20.10 cannot load OCI archives, so for each image we stream a docker-archive built on the fly:
manifest.json, the config, and each layer blob as-is (docker load decompresses gzip layers).
After the load, the image ID must equal the config digest: that is what proves Docker holds the
bytes we verified. Errors reported inside the API's JSON stream are errors (exit 10).
"""

import http.client
import json
import os
import platform as host
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from installer.errors import DeployError
from installer.fsutil import open_installed
from installer.format.imagecheck import read_blob
from installer.format.model import BundleHead, Image
from installer.format.oci import config_platform, parse_document, platform_matches, platform_string
from installer.format.paths import blob_path
from installer.format.reference import parse
from installer.format.tarstream import BLOCK, member_header
from installer.progress import Progress

_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm/v7",
             "armv6l": "arm/v6", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}


def host_platform() -> str:
    return "linux/" + _MACHINES.get(host.machine().lower(), host.machine().lower())


def docker_socket() -> str:
    value = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    url = urllib.parse.urlsplit(value)
    if url.scheme != "unix":
        raise DeployError("DOCKER_HOST=%s: --docker talks to a local engine over a unix socket only" % value)
    return url.path


@dataclass(frozen=True)
class LoadedImage:
    """One image Docker holds after the load: its ID is its config digest, tagged with ``tags``."""

    ref: str                   # the image's reference in the bundle
    id: str                    # the config digest, which Docker reports as the image ID
    tags: List[str]            # the source tag, and the site registry's when there is one
    platform: str


@dataclass(frozen=True)
class SkippedImage:
    """An image of the bundle that `install --docker` does not load, and why (it cannot run: an artifact, a
    signature, an attestation, an image without a platform)."""

    ref: str
    reason: str


@dataclass(frozen=True)
class DockerLoadReport:
    """What `install --docker` loaded into the local engine (phase 3)."""

    platform: str              # linux/amd64 ...: the platform chosen for every image
    images: List[LoadedImage]
    skipped: List[SkippedImage] = field(default_factory=list)
    engine: str = ""           # the engine's version, as it reported it (GET /version)


@dataclass(frozen=True)
class Choice:
    """The manifest of one image that will be loaded: its config and layers (digests)."""

    ref: str
    config: str
    layers: List[str]


# What a runnable image's manifest holds: an image config, and layers Docker can unpack.
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
ZSTD_LAYERS = ("application/vnd.oci.image.layer.v1.tar+zstd",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
IMAGE_LAYERS = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar",
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") + ZSTD_LAYERS
ZSTD_SINCE = (23, 0)  # Docker Engine 23.0 is the first that unpacks zstd layers


def engine_version(text: str) -> Optional[Tuple[int, int]]:
    """(major, minor) of an engine version such as 20.10.24 or 24.0.7-1; None when it is not one."""
    parts = text.split(".")
    if len(parts) < 2 or not parts[0].isdigit():
        return None
    minor = "".join(ch for ch in parts[1].split("-")[0] if ch.isdigit())
    return int(parts[0]), int(minor or "0")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 600.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError as exc:
            sock.close()
            raise DeployError("cannot reach the Docker engine at %s: %s (is dockerd running? DOCKER_HOST?)"
                              % (self._path, exc.strerror or exc)) from exc
        self.sock = sock


class Docker:
    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path or docker_socket()

    def _call(self, method: str, url: str, body: Union[None, bytes, Iterable[bytes]] = None,
              headers: Optional[Mapping[str, str]] = None) -> Tuple[int, bytes]:
        conn = _UnixConnection(self.path)
        try:
            conn.request(method, url, body=body, headers=headers or {},
                         encode_chunked=body is not None and not isinstance(body, bytes))
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (ConnectionError, http.client.HTTPException, socket.timeout) as exc:
            raise DeployError("the Docker engine at %s failed: %s" % (self.path, exc)) from exc
        finally:
            conn.close()

    def ping(self) -> None:
        status, _ = self._call("GET", "/_ping")
        if status != 200:
            raise DeployError("the Docker engine at %s does not answer /_ping (HTTP %d)" % (self.path, status))

    def version(self) -> str:
        """The engine's version (GET /version: "Version"), "" when it does not say."""
        self.ping()
        status, data = self._call("GET", "/version")
        try:
            doc = json.loads(data) if status == 200 else {}
        except ValueError:
            doc = {}
        value = doc.get("Version") if isinstance(doc, dict) else None
        return value[:64] if isinstance(value, str) else ""

    def load(self, stream: Iterator[bytes]) -> List[str]:
        status, data = self._call("POST", "/images/load?quiet=1", body=stream,
                                  headers={"Content-Type": "application/x-tar"})
        messages = []
        for line in data.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("error") or item.get("errorDetail"):
                detail = item.get("error") or (item.get("errorDetail") or {}).get("message")
                raise DeployError("docker load failed: %s" % detail)
            if item.get("stream"):
                messages.append(item["stream"].strip())
        if status != 200:
            raise DeployError("docker load failed with HTTP %d: %s" % (status, data[:300].decode("utf-8", "replace")))
        return messages

    def inspect(self, name: str) -> Optional[Dict[str, Any]]:
        status, data = self._call("GET", "/images/%s/json" % urllib.parse.quote(name, safe=""))
        if status == 404:
            return None
        if status != 200:
            raise DeployError("docker could not inspect %s (HTTP %d)" % (name, status))
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise DeployError("docker answered the inspection of %s with something other than an object" % name)
        return doc

    def tag(self, image_id: str, target: str) -> None:
        ref = parse(target)
        query = urllib.parse.urlencode({"repo": ref.repository, "tag": ref.tag or "latest"})
        status, data = self._call("POST", "/images/%s/tag?%s" % (urllib.parse.quote(image_id, safe=""), query))
        if status != 201:
            raise DeployError("docker could not tag %s as %s (HTTP %d)" % (image_id, target, status))


def _archive(tree: str, config_digest: str, layers: List[str], tags: List[str]) -> Iterator[bytes]:
    """A docker-archive stream: manifest.json, the config, each distinct layer, end of archive."""
    config_name = config_digest.split(":", 1)[1] + ".json"
    layer_names = [d.split(":", 1)[1] + "/layer.tar" for d in layers]
    manifest = json.dumps([{"Config": config_name, "RepoTags": tags, "Layers": layer_names}]).encode()
    yield member_header("manifest.json", len(manifest), 0, False) + manifest + b"\0" * (-len(manifest) % BLOCK)
    written = set()
    for digest, name in [(config_digest, config_name)] + list(zip(layers, layer_names)):
        if name in written:
            continue
        written.add(name)
        fd = open_installed(tree, blob_path(digest))
        size = os.fstat(fd).st_size
        with os.fdopen(fd, "rb") as fh:
            yield member_header(name, size, 0, False)
            left = size
            while left > 0:  # never past the size it had when opened: Docker checks every layer's digest
                data = fh.read(min(left, 1 << 20))
                if not data:
                    raise DeployError("%s shrank while it was loaded into Docker" % blob_path(digest))
                left -= len(data)
                yield data
        yield b"\0" * (-size % BLOCK)
    yield b"\0" * (2 * BLOCK)


class DockerLoad:
    def __init__(self, tree: str, meta: BundleHead, platform: Optional[str] = None,
                 site_refs: Optional[Dict[str, str]] = None, docker: Optional[Docker] = None,
                 progress_factory: Optional[Callable[[int, str], Progress]] = None) -> None:
        self.progress_factory = progress_factory
        self.tree = tree
        self.meta = meta
        self.platform = platform or host_platform()
        self.site_refs = site_refs or {}
        self.docker = docker or Docker()
        self._engine: Optional[str] = None
        self._plan: Optional[Tuple[List[Choice], List[SkippedImage]]] = None

    def _read(self, digest: str) -> bytes:
        return read_blob(self.tree, digest)

    def engine(self) -> str:
        """The engine's version, asked once (before anything is staged, then reused)."""
        if self._engine is None:
            self._engine = self.docker.version()
        return self._engine

    def zstd_ok(self) -> bool:
        version = engine_version(self.engine())
        return version is None or version >= ZSTD_SINCE  # an engine that does not say is given the benefit

    def plan(self) -> Tuple[List[Choice], List[SkippedImage]]:
        """What will be loaded and what is skipped, from the manifests alone: called after the archive is verified
        and before anything is promoted, so an image this engine cannot load is refused before the kit changes."""
        if self._plan is None:
            choices, skipped = [], []
            for image in self.meta.images:
                pick = self._pick(image)
                if isinstance(pick, SkippedImage):
                    skipped.append(pick)
                else:
                    choices.append(pick)
            self._plan = (choices, skipped)
        return self._plan

    def _runnable(self, data: bytes, media_type: str, where: str) -> Tuple[Optional[Choice], str]:
        """(the choice, "") for a manifest Docker can run, else (None, why not)."""
        doc = parse_document(data, media_type, where)
        if doc.config is None:
            return None, "an index nested in an index"
        if doc.artifact_type or doc.config.media_type not in IMAGE_CONFIGS:
            return None, "an artifact (%s), not a container image" % (doc.artifact_type or doc.config.media_type)
        odd = sorted({layer.media_type for layer in doc.children if layer.media_type not in IMAGE_LAYERS})
        if odd:
            return None, "its layers are not container file systems (%s)" % ", ".join(odd[:3])
        return Choice(where, doc.config.digest, [layer.digest for layer in doc.children]), ""

    def _pick(self, image: Image) -> Union[Choice, SkippedImage]:
        """The manifest of ``image`` to load for our platform, or why it is skipped; DeployError for an image
        that should run but cannot here (no manifest for this platform; zstd layers on an engine before 23)."""
        top = self._read(image.digest)
        doc = parse_document(top, image.media_type, image.ref)
        if doc.config is not None:  # one manifest
            choice, why = self._runnable(top, image.media_type, image.ref)
            if choice is None:
                return SkippedImage(image.ref, why)
            own = config_platform(self._read(choice.config))
            if not own.get("os") or not own.get("architecture") or platform_string(own).startswith("unknown"):
                return SkippedImage(image.ref, "its platform is unknown: not a runnable image")
            if not platform_matches(self.platform, own):
                raise DeployError("%s has no %s image (it is %s only); choose another --platform"
                                  % (image.ref, self.platform, platform_string(own)))
            return self._loadable(image, [(choice, top, image.media_type)])
        kinds = {m.digest: m.media_type for m in image.manifests}
        candidates, runnable = [], False
        for child in doc.children:
            if child.attestation_of is not None or platform_string(child.platform).startswith("unknown"):
                continue
            media_type = child.media_type or kinds.get(child.digest, "")
            data = self._read(child.digest)
            choice, _why = self._runnable(data, media_type, image.ref)
            if choice is None:
                continue
            runnable = True
            if platform_matches(self.platform, child.platform):
                candidates.append((choice, data, media_type))
        if not runnable:
            return SkippedImage(image.ref, "an index of %d manifests none of which is a runnable image "
                                           "(signatures, attestations or artifacts)" % len(doc.children))
        if not candidates:
            offered = ", ".join(sorted({platform_string(c.platform) for c in doc.children
                                        if not platform_string(c.platform).startswith("unknown")}))
            raise DeployError("%s has no %s image (it offers %s); choose one with --platform"
                              % (image.ref, self.platform, offered))
        return self._loadable(image, candidates)

    def _loadable(self, image: Image, candidates: List[Tuple[Choice, bytes, str]]) -> Choice:
        """The first candidate this engine can load: with zstd layers only from Docker 23 on (podman's and
        buildx's dual-compression indexes offer a gzip sibling for the same platform)."""
        def zstd(data: bytes, media_type: str) -> bool:
            return any(layer.media_type in ZSTD_LAYERS
                       for layer in parse_document(data, media_type, image.ref).children)
        for choice, data, media_type in candidates:
            if self.zstd_ok() or not zstd(data, media_type):
                missing = [d for d in choice.layers if not os.path.lexists(os.path.join(self.tree, blob_path(d)))]
                if missing:
                    raise DeployError("%s cannot be loaded: its foreign layers are not carried (foreign-layers: "
                                      "skip); build with foreign-layers: include" % image.ref)
                return Choice(image.ref, choice.config, choice.layers)
        raise DeployError("%s has zstd-compressed layers, which Docker %s cannot load, and no gzip sibling for %s; "
                          "Docker Engine %d.%d or later is needed (or rebuild the image with gzip layers)"
                          % (image.ref, self.engine() or "(version unknown)", self.platform, *ZSTD_SINCE))

    def _load(self, ref: str, config_digest: str, layers: List[str], tags: List[str]) -> None:
        total = sum(os.lstat(os.path.join(self.tree, blob_path(d))).st_size for d in set(layers) | {config_digest})
        progress = self.progress_factory(total, "load %s" % ref) if self.progress_factory else None

        def counted(stream: Iterator[bytes]) -> Iterator[bytes]:
            for chunk in stream:
                if progress:
                    progress.update(len(chunk))
                yield chunk
        try:
            self.docker.load(counted(_archive(self.tree, config_digest, layers, tags)))
        finally:
            if progress:
                progress.close()

    def load_all(self) -> DockerLoadReport:
        choices, skipped = self.plan()
        loaded = []
        for choice in choices:
            ref = parse(choice.ref)
            config_digest, layers = choice.config, choice.layers
            tags = [str(parse("%s:%s" % (ref.repository, ref.tag)))] if ref.tag else []
            if ref.tag and choice.ref in self.site_refs:
                tags.append(self.site_refs[choice.ref])
            existing = self.docker.inspect(config_digest)
            if existing is None:
                self._load(choice.ref, config_digest, layers, tags)
                existing = self.docker.inspect(config_digest)
            if existing is None or existing.get("Id") != config_digest:
                raise DeployError("Docker holds %s under ID %s, not its config digest %s"
                                  % (choice.ref, (existing or {}).get("Id"), config_digest))
            have = {str(parse(t)) for t in existing.get("RepoTags") or [] if t != "<none>:<none>"}
            for tag in tags:
                if str(parse(tag)) not in have:
                    self.docker.tag(config_digest, tag)
            loaded.append(LoadedImage(choice.ref, config_digest, tags, self.platform))
        return DockerLoadReport(self.platform, loaded, skipped, self.engine())
