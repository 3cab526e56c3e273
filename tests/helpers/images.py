"""Test images made offline, in Python, as OCI image layouts on disk; skopeo/umoci wrappers to move them.

Nothing here needs the network: layers are tar streams written by hand (deterministic: mtime 0,
uid/gid 0, sorted entries), gzip with mtime 0, so the same inputs always give the same digests.

Making images::

    from tests.helpers.images import make_image, make_index, RandomLayer, push, umoci_stat

    img = make_image(tmp_path / "oci", "v1", [{"etc/hello": b"hi\\n"}])     # -> ImageInfo
    img.manifest_digest, img.config_digest, img.layer_digests, img.diff_ids
    idx = make_index(tmp_path / "oci", "multi", platforms=[("linux", "amd64"), ("linux", "arm64")],
                     shared_base=RandomLayer(4 << 20, seed=1))            # -> IndexInfo
    idx.digest, idx.images["linux/arm64"].manifest_digest
    big = make_big_image(tmp_path / "oci", "big", size_mb=100)            # streamed, ~1 s

Layer specs (``layers=[...]``): a ``dict`` ``{path: bytes | (bytes, mode)}``; raw uncompressed tar
``bytes``; or ``RandomLayer(size, seed)`` (incompressible, streamed to disk, never held in memory).

Moving them with skopeo (``push``, ``skopeo_inspect_raw``, ``skopeo_copy_out``) and checking them
with umoci (``umoci_stat``). Hand-made uploads that skopeo can't produce (a Docker manifest list,
schema 1) go through ``helpers.registry.RegistryClient``: ``push_docker_manifest_list``, ``put_schema1``.

skopeo's blob-info cache (/var/lib/containers/cache for root) remembers which registry holds which
blob and turns later pushes into cross-repo mount attempts. There is no flag or env var for it in
skopeo 1.9, so ``blob_cache=`` runs skopeo in a private mount namespace (``unshare -m``) with a tmpfs
("fresh", the default: nothing remembered between calls) or a folder of the test's own bind-mounted
over that path. Set ``blob_cache="system"`` to use the machine's cache.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

# --------------------------------------------------------------------------------------------------
# media types

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MT_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"

REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"
DEFAULT_PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))

Platform = Tuple[str, ...]   # (os, architecture) or (os, architecture, variant)
LayerSpec = Union[Dict[str, Union[bytes, Tuple[bytes, int]]], bytes, "RandomLayer"]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def platform_str(p: Platform) -> str:
    return "/".join(p)


# --------------------------------------------------------------------------------------------------
# layer content

@dataclass(frozen=True)
class RandomLayer:
    """A layer holding one file of ``size`` incompressible bytes from a seeded PRNG (deterministic).

    Written in 1 MiB chunks straight to disk; gzip runs at level 0 for it (random bytes don't
    compress, and level 0 is 15x faster), which is still a valid gzip stream.
    """
    size: int
    seed: int = 0
    path: str = "data/random.bin"

    @classmethod
    def mb(cls, n: float, seed: int = 0, path: str = "data/random.bin") -> "RandomLayer":
        return cls(int(n * (1 << 20)), seed, path)

    def chunks(self, chunk: int = 1 << 20):
        rng = random.Random(self.seed)
        left = self.size
        while left > 0:
            n = min(chunk, left)
            yield rng.randbytes(n)
            left -= n


class _HashWriter:
    """A write-only file object that hashes and counts what passes through to ``inner``."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        self.inner.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def _tar_header(name: str, size: int, mode: int, typeflag: bytes = tarfile.REGTYPE) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime, ti.type = size, mode, 0, typeflag
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    # PAX only if a name needs it (longer than ustar allows); the common case is plain ustar
    fmt = tarfile.USTAR_FORMAT if len(name.encode()) <= 100 else tarfile.PAX_FORMAT
    return ti.tobuf(format=fmt, encoding="utf-8", errors="strict")


def _pad(n: int) -> bytes:
    return b"\0" * ((512 - n % 512) % 512)


def _write_tar(spec: LayerSpec, out) -> None:
    """Write the uncompressed tar stream of a layer spec to ``out``."""
    if isinstance(spec, (bytes, bytearray)):
        out.write(bytes(spec))
        return
    if isinstance(spec, RandomLayer):
        parts = spec.path.strip("/").split("/")
        for i in range(1, len(parts)):
            out.write(_tar_header("/".join(parts[:i]) + "/", 0, 0o755, tarfile.DIRTYPE))
        out.write(_tar_header(spec.path.strip("/"), spec.size, 0o644))
        for chunk in spec.chunks():
            out.write(chunk)
        out.write(_pad(spec.size))
        out.write(b"\0" * 1024)
        return
    if isinstance(spec, dict):
        dirs, files = set(), {}
        for path, value in spec.items():
            name = path.strip("/")
            data, mode = (value if isinstance(value, tuple) else (value, 0o644))
            files[name] = (data, mode)
            parts = name.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        for name in sorted(dirs | set(files)):
            if name in files:
                data, mode = files[name]
                out.write(_tar_header(name, len(data), mode))
                out.write(data)
                out.write(_pad(len(data)))
            else:
                out.write(_tar_header(name + "/", 0, 0o755, tarfile.DIRTYPE))
        out.write(b"\0" * 1024)
        return
    raise TypeError("layer spec must be dict, bytes or RandomLayer, not %r" % type(spec))


def layer_tar_bytes(spec: LayerSpec) -> bytes:
    """The uncompressed tar of a (small) layer spec, in memory."""
    buf = io.BytesIO()
    _write_tar(spec, buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# OCI layout on disk

@dataclass
class LayerInfo:
    digest: str
    size: int
    diff_id: str
    media_type: str


@dataclass
class ImageInfo:
    """What ``make_image`` wrote (digests as 'sha256:...')."""
    tag: Optional[str]
    manifest_digest: str
    manifest_size: int
    media_type: str
    manifest: bytes
    config_digest: str
    config: bytes
    layers: List[LayerInfo]
    platform: Platform

    @property
    def layer_digests(self) -> List[str]:
        return [layer.digest for layer in self.layers]

    @property
    def diff_ids(self) -> List[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def blob_digests(self) -> List[str]:
        """Config + layers (not the manifest)."""
        return [self.config_digest] + self.layer_digests

    @property
    def digest(self) -> str:
        return self.manifest_digest

    def descriptor(self, with_platform: bool = False) -> dict:
        d = {"mediaType": self.media_type, "digest": self.manifest_digest, "size": self.manifest_size}
        if with_platform:
            d["platform"] = _platform_obj(self.platform)
        return d


@dataclass
class IndexInfo:
    """What ``make_index`` wrote. ``images`` is keyed 'os/arch[/variant]'."""
    tag: Optional[str]
    digest: str
    size: int
    media_type: str
    index: bytes
    images: Dict[str, ImageInfo] = field(default_factory=dict)

    @property
    def manifest_digest(self) -> str:
        return self.digest


def _platform_obj(p: Platform) -> dict:
    obj = {"architecture": p[1], "os": p[0]}
    if len(p) > 2 and p[2]:
        obj["variant"] = p[2]
    return obj


class Layout:
    """An OCI image layout folder: ``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self.blobs = self.path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        if not (self.path / "oci-layout").exists():
            (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self.write_index({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []})

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.split(":", 1)[1]

    def add_blob(self, data: bytes) -> Tuple[str, int]:
        digest = sha256_digest(data)
        p = self.blob_path(digest)
        if not p.exists():
            tmp = p.with_name(".tmp-" + p.name)
            tmp.write_bytes(data)
            os.replace(tmp, p)
        return digest, len(data)

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def index(self) -> dict:
        return json.loads((self.path / "index.json").read_text())

    def write_index(self, index: dict) -> None:
        tmp = self.path / ".index.json.tmp"
        tmp.write_text(json.dumps(index, indent=2))
        os.replace(tmp, self.path / "index.json")

    def tag(self, tag: str, descriptor: dict) -> None:
        """Point ``tag`` (the ref.name annotation) at descriptor, replacing an older entry of that tag."""
        index = self.index()
        index["manifests"] = [m for m in index["manifests"]
                              if (m.get("annotations") or {}).get(REF_NAME) != tag]
        d = dict(descriptor)
        d["annotations"] = dict(d.get("annotations") or {}, **{REF_NAME: tag})
        index["manifests"].append(d)
        self.write_index(index)

    def tags(self) -> Dict[str, dict]:
        return {(m.get("annotations") or {}).get(REF_NAME): m for m in self.index()["manifests"]}

    def write_layer(self, spec: LayerSpec, compression: str = "gzip", fmt: str = "oci") -> LayerInfo:
        """Stream a layer to a blob: hashes the tar (diff_id) and the compressed bytes in one pass."""
        fd, tmp = tempfile.mkstemp(prefix=".layer-", dir=str(self.blobs))
        try:
            with os.fdopen(fd, "wb") as raw:
                blob = _HashWriter(raw)
                if compression == "gzip":
                    level = 0 if isinstance(spec, RandomLayer) else 6
                    comp = gzip.GzipFile(filename="", mode="wb", fileobj=blob, mtime=0, compresslevel=level)
                elif compression == "zstd":
                    import zstandard
                    comp = zstandard.ZstdCompressor(level=3).stream_writer(blob, closefd=False)
                elif compression == "none":
                    comp = None
                else:
                    raise ValueError("compression: gzip, zstd or none")
                tar = _HashWriter(comp if comp is not None else blob)
                _write_tar(spec, tar)
                if comp is not None:
                    comp.close()  # writes the trailer into blob; raw stays open (GzipFile doesn't own it)
            target = self.blobs / blob.hash.hexdigest()
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        if fmt == "docker":
            if compression != "gzip":
                raise ValueError("Docker schema 2 layers here are gzip only")
            mt = MT_DOCKER_LAYER_GZIP
        else:
            mt = {"gzip": MT_OCI_LAYER_GZIP, "zstd": MT_OCI_LAYER_ZSTD, "none": MT_OCI_LAYER}[compression]
        return LayerInfo(blob.digest, blob.size, tar.digest, mt)


def image_config(platform: Platform, diff_ids: Sequence[str], labels: Optional[dict] = None,
                 created: str = EPOCH) -> dict:
    cfg = {
        "created": created,
        "architecture": platform[1],
        "os": platform[0],
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": created, "created_by": "offline-bundle tests: layer %d" % i}
                    for i in range(len(diff_ids))],
    }
    if len(platform) > 2 and platform[2]:
        cfg["variant"] = platform[2]
    if labels:
        cfg["config"]["Labels"] = dict(labels)
    return cfg


def make_image(layout_dir, tag: Optional[str], layers: Sequence[LayerSpec], platform: Platform = ("linux", "amd64"),
               fmt: str = "oci", compression: str = "gzip", labels: Optional[dict] = None,
               annotations: Optional[dict] = None) -> ImageInfo:
    """Write one image (layers, config, manifest) into an OCI layout, creating or extending it.

    ``tag`` becomes the ``org.opencontainers.image.ref.name`` of its index.json entry (None: blobs
    only, as for the children of an index). ``fmt="docker"`` writes Docker schema 2 media types
    (a v2s2 manifest inside an OCI layout: what a bundle holds for a Docker image; skopeo's ``oci:``
    transport will not push it, use ``push_raw``). Returns digests of everything written.
    """
    if fmt not in ("oci", "docker"):
        raise ValueError("fmt must be 'oci' or 'docker'")
    lay = Layout(layout_dir)
    infos = [lay.write_layer(spec, compression, fmt) for spec in layers]
    config = canonical_json(image_config(platform, [i.diff_id for i in infos], labels))
    config_digest, config_size = lay.add_blob(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST if fmt == "oci" else MT_DOCKER_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG if fmt == "oci" else MT_DOCKER_CONFIG,
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": i.media_type, "digest": i.digest, "size": i.size} for i in infos],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    raw = json.dumps(manifest, indent=2).encode()
    digest, size = lay.add_blob(raw)
    info = ImageInfo(tag, digest, size, manifest["mediaType"], raw, config_digest, config, infos, tuple(platform))
    if tag is not None:
        lay.tag(tag, info.descriptor(with_platform=True))
    return info


def make_index(layout_dir, tag: Optional[str], platforms: Sequence[Platform] = DEFAULT_PLATFORMS,
               shared_base: Optional[LayerSpec] = None, layers: Sequence[LayerSpec] = (), fmt: str = "oci",
               labels: Optional[dict] = None) -> IndexInfo:
    """A multi-platform image: one manifest per platform, and an index (``fmt="docker"``: manifest list).

    Each platform's image is ``[shared_base] + layers + [{"etc/platform": b"os/arch\\n"}]`` so the
    per-platform manifests differ while sharing the base layer blob.
    """
    lay = Layout(layout_dir)
    images: Dict[str, ImageInfo] = {}
    for p in platforms:
        p = tuple(p)
        specs = ([shared_base] if shared_base is not None else []) + list(layers) + \
            [{"etc/platform": (platform_str(p) + "\n").encode()}]
        images[platform_str(p)] = make_image(layout_dir, None, specs, platform=p, fmt=fmt, labels=labels)
    index = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX if fmt == "oci" else MT_DOCKER_LIST,
        "manifests": [img.descriptor(with_platform=True) for img in images.values()],
    }
    raw = json.dumps(index, indent=2).encode()
    digest, size = lay.add_blob(raw)
    info = IndexInfo(tag, digest, size, index["mediaType"], raw, images)
    if tag is not None:
        lay.tag(tag, {"mediaType": index["mediaType"], "digest": digest, "size": size})
    return info


SHARED_BASE = RandomLayer.mb(8, seed=1)  # make_shared_pair's default base layer (8 MiB)


def make_shared_pair(layout_dir, tags: Tuple[str, str] = ("app-a", "app-b"),
                     base: LayerSpec = SHARED_BASE) -> Tuple[ImageInfo, ImageInfo]:
    """Two images whose first layer is the same (large) blob; their top layers differ."""
    a = make_image(layout_dir, tags[0], [base, {"app/name": tags[0].encode()}])
    b = make_image(layout_dir, tags[1], [base, {"app/name": tags[1].encode()}])
    assert a.layer_digests[0] == b.layer_digests[0]
    return a, b


def make_big_image(layout_dir, tag: str, size_mb: float = 100, seed: int = 0, **kw) -> ImageInfo:
    """One image with a ``size_mb`` incompressible layer (streamed; ~1 s per 100 MiB) and a small one."""
    return make_image(layout_dir, tag, [RandomLayer.mb(size_mb, seed), {"etc/big": b"big\n"}], **kw)


def make_docker_archive(path, repo_tags: Sequence[str], layers: Sequence[LayerSpec],
                        platform: Platform = ("linux", "amd64")) -> str:
    """A ``docker save``-style archive (manifest.json + repositories) for ``docker load``.

    Layers are stored uncompressed as ``<diff_id hex>/layer.tar``. Returns the image ID (config digest).
    """
    tars = [layer_tar_bytes(s) for s in layers]
    diff_ids = [sha256_digest(t) for t in tars]
    config = canonical_json(image_config(platform, diff_ids))
    config_hex = hashlib.sha256(config).hexdigest()
    members: List[Tuple[str, bytes]] = [(config_hex + ".json", config)]
    layer_paths = []
    for t, d in zip(tars, diff_ids):
        lp = d.split(":", 1)[1] + "/layer.tar"
        layer_paths.append(lp)
        members.append((lp, t))
    members.append(("manifest.json", json.dumps([{"Config": config_hex + ".json", "RepoTags": list(repo_tags),
                                                   "Layers": layer_paths}]).encode()))
    repos: Dict[str, Dict[str, str]] = {}
    for rt in repo_tags:
        repo, _, t = rt.rpartition(":")
        repos.setdefault(repo, {})[t] = diff_ids[-1].split(":", 1)[1]
    members.append(("repositories", json.dumps(repos).encode()))
    with open(path, "wb") as f:
        for name, data in members:
            parts = name.split("/")
            if len(parts) > 1:
                f.write(_tar_header(parts[0] + "/", 0, 0o755, tarfile.DIRTYPE))
            f.write(_tar_header(name, len(data), 0o644))
            f.write(data)
            f.write(_pad(len(data)))
        f.write(b"\0" * 1024)
    return "sha256:" + config_hex


# --------------------------------------------------------------------------------------------------
# skopeo / umoci

class ToolError(RuntimeError):
    def __init__(self, argv, proc) -> None:
        super().__init__("%s failed (rc=%d):\n%s%s" % (" ".join(map(str, argv)), proc.returncode,
                                                        proc.stdout[-3000:], proc.stderr[-3000:]))
        self.rc = proc.returncode
        self.stderr = proc.stderr


SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"
UMOCI = shutil.which("umoci") or "/usr/bin/umoci"
SYSTEM_BLOB_CACHE = "/var/lib/containers/cache"
TRANSPORTS = {"docker", "oci", "oci-archive", "docker-archive", "dir", "docker-daemon", "containers-storage",
              "tarball", "sif", "ostree"}
_UNSHARE_OK: Optional[bool] = None


def _unshare_ok() -> bool:
    """Can we make a private mount namespace (root with CAP_SYS_ADMIN)? Checked once."""
    global _UNSHARE_OK
    if _UNSHARE_OK is None:
        try:
            os.makedirs(SYSTEM_BLOB_CACHE, exist_ok=True)
            r = subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "none", SYSTEM_BLOB_CACHE],
                               capture_output=True, timeout=20)
            _UNSHARE_OK = r.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _UNSHARE_OK = False
    return _UNSHARE_OK


def run_skopeo(args: Sequence[str], blob_cache: Union[str, Path, None] = "fresh", timeout: float = 600,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run skopeo with an isolated blob-info cache (see the module docstring).

    blob_cache: "fresh" (tmpfs, forgotten after the call), a folder (persistent, the test's own),
    "system"/None (the machine's cache). Falls back to "system" when mount namespaces are unavailable.
    """
    argv = [SKOPEO] + [str(a) for a in args]
    if blob_cache not in (None, "system") and _unshare_ok():
        if blob_cache == "fresh":
            mount = 'mount -t tmpfs none "$0"'
            pre = [SYSTEM_BLOB_CACHE]
        else:
            Path(blob_cache).mkdir(parents=True, exist_ok=True)
            mount = 'mount --bind "$1" "$0"'
            pre = [SYSTEM_BLOB_CACHE, str(blob_cache)]
        # sh -c SCRIPT $0 [$1] skopeo...: $0 is the mount point, $1 the bind source (shifted away)
        script = mount + (" && shift" if len(pre) == 2 else "") + ' && exec "$@"'
        argv = ["unshare", "-m", "sh", "-c", script] + pre + argv
    env = dict(os.environ)
    # never let a developer's proxy settings divert loopback traffic
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise ToolError(argv, proc)
    return proc


def _registry_args(registry, side: str, creds: Union[bool, str, None]) -> List[str]:
    """--{src-,dest-,}tls-verify / cert-dir / creds for a helpers.registry.Registry (or any object
    with host, scheme, cert_dir and creds).

    side: "src", "dest" or "" (skopeo inspect). creds: True = the registry's own user (if it has
    one), a 'user:pass' string, or False/None = anonymous (--no-creds: no auth file is consulted).
    """
    pre = "--%s-" % side if side else "--"
    out = []
    if registry.scheme == "https":
        out += [pre + "tls-verify=true", pre + "cert-dir", str(registry.cert_dir)]
    else:
        out += [pre + "tls-verify=false"]
    if creds is True:
        creds = registry.creds
    if creds:
        out += [pre + "creds", creds]
    else:
        out += [pre + "no-creds"]
    return out


def _docker_ref(registry, ref: str) -> str:
    if ref.startswith("docker://"):
        return ref
    return "docker://%s/%s" % (registry.host, ref)


def push(layout_dir, tag: str, registry, dest_ref: Optional[str] = None, fmt: Optional[str] = None,
         all: bool = True, creds: Union[bool, str, None] = True, blob_cache="fresh",
         extra: Sequence[str] = ()) -> str:
    """``skopeo copy [--all] [--format v2s2] oci:DIR:TAG docker://HOST/REPO:TAG``; returns the pushed digest.

    dest_ref: 'repo:tag' (default 'test/image:<tag>') or 'repo' (tag appended). fmt: None (keep
    the OCI media types), 'v2s2' (Docker schema 2; an OCI index becomes a Docker manifest list),
    'v2s1' (schema 1, needs ``start_registry(..., schema1=True)``), 'oci'. The digest is the one the
    registry stores (skopeo --digestfile: the index/list digest for a multi-platform push).
    """
    if dest_ref is None:
        dest_ref = "test/image:" + tag
    elif ":" not in dest_ref.rsplit("/", 1)[-1] and "@" not in dest_ref:
        dest_ref = dest_ref + ":" + tag
    with tempfile.TemporaryDirectory(prefix="skopeo-digest-") as td:
        digestfile = os.path.join(td, "digest")
        args = ["copy", "--quiet", "--digestfile", digestfile]
        if all:
            args.append("--all")
        if fmt:
            args += ["--format", fmt]
        args += _registry_args(registry, "dest", creds) + list(extra)
        args += ["oci:%s:%s" % (layout_dir, tag), _docker_ref(registry, dest_ref)]
        run_skopeo(args, blob_cache=blob_cache)
        return Path(digestfile).read_text().strip()


def skopeo_inspect_raw(ref: str, registry=None, creds: Union[bool, str, None] = True, blob_cache="fresh") -> bytes:
    """The raw manifest bytes skopeo gets for ``ref`` ('repo:tag' on ``registry``, or any transport ref)."""
    args = ["inspect", "--raw"]
    if registry is not None:
        args += _registry_args(registry, "", creds)
        ref = _docker_ref(registry, ref)
    proc = run_skopeo(args + [ref], blob_cache=blob_cache)
    return proc.stdout.encode()


def skopeo_inspect_digest(ref: str, registry=None, **kw) -> str:
    return sha256_digest(skopeo_inspect_raw(ref, registry, **kw))


def skopeo_copy_out(src: str, dest_layout_dir, dest_tag: str, registry=None, all: bool = True,
                    creds: Union[bool, str, None] = True, blob_cache="fresh", extra: Sequence[str] = ()) -> str:
    """Copy ``src`` into ``oci:DEST:TAG``; returns the digest written.

    src: 'repo:tag' on ``registry``, a full transport ref ('docker://...', 'oci:DIR:TAG'), or
    'DIR:TAG' for an OCI layout folder (``oci:`` is prefixed).
    """
    args = ["copy", "--quiet"]
    if all:
        args.append("--all")
    if registry is not None:
        args += _registry_args(registry, "src", creds)
        src = _docker_ref(registry, src)
    elif src.split(":", 1)[0] not in TRANSPORTS:
        src = "oci:" + src
    with tempfile.TemporaryDirectory(prefix="skopeo-digest-") as td:
        digestfile = os.path.join(td, "digest")
        args += ["--digestfile", digestfile] + list(extra) + [src, "oci:%s:%s" % (dest_layout_dir, dest_tag)]
        run_skopeo(args, blob_cache=blob_cache)
        return Path(digestfile).read_text().strip()


def umoci_stat(layout_dir, tag: str) -> dict:
    """``umoci stat --json --image DIR:TAG``; raises ToolError with umoci's message on any failure."""
    argv = [UMOCI, "stat", "--json", "--image", "%s:%s" % (layout_dir, tag)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise ToolError(argv, proc)
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise ToolError(argv, proc) from exc


# --------------------------------------------------------------------------------------------------
# hand-made uploads (what skopeo won't produce), through helpers.registry.RegistryClient

def push_raw(layout_dir, ref_digest: str, registry_client, repo: str, tag: Optional[str] = None) -> str:
    """Upload a manifest (or index, recursively) and its blobs byte-exact from a layout; returns its digest.

    Unlike skopeo this never converts anything: a Docker v2s2 manifest or manifest list written with
    ``make_image/make_index(fmt="docker")`` lands with its own media type and digest.
    """
    lay = Layout(layout_dir)
    raw = lay.read_blob(ref_digest)
    doc = json.loads(raw)
    mt = doc.get("mediaType") or (MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST)
    if "manifests" in doc:
        for m in doc["manifests"]:
            push_raw(layout_dir, m["digest"], registry_client, repo)
    else:
        for d in [doc["config"]] + doc.get("layers", []):
            p = lay.blob_path(d["digest"])
            registry_client.upload_blob(repo, p.read_bytes())
    return registry_client.put_manifest(repo, tag or ref_digest, raw, mt)


def push_docker_manifest_list(layout_dir, tag: str, registry, repo: str = "test/dockerlist",
                              platforms: Sequence[Platform] = DEFAULT_PLATFORMS, **kw) -> IndexInfo:
    """Make a Docker schema 2 manifest list (per-platform v2s2 manifests) and upload it byte-exact."""
    info = make_index(layout_dir, tag, platforms=platforms, fmt="docker", **kw)
    push_raw(layout_dir, info.digest, registry.client(), repo, tag)
    return info


# ---- Docker schema 1 (signed, libtrust "pretty JWS") --------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _libtrust_key_id(public_key) -> str:
    """libtrust's key ID: base32 of the first 240 bits of sha256(DER SubjectPublicKeyInfo), 4-char groups."""
    from cryptography.hazmat.primitives import serialization
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def schema1_manifest(repo: str, tag: str, layer_digests: Sequence[str], architecture: str = "amd64") -> bytes:
    """A signed schema-1 manifest (``application/vnd.docker.distribution.manifest.v1+prettyjws``).

    fsLayers are listed newest first, as schema 1 does; one v1Compatibility history entry per layer.
    Signed the way libtrust does it (ES256 JWS, protected header with formatLength/formatTail).
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    ids = [hashlib.sha256(("%s-%d" % (d, i)).encode()).hexdigest() for i, d in enumerate(layer_digests)]
    history = []
    for i in range(len(layer_digests)):
        v1 = {"id": ids[i], "created": EPOCH, "container_config": {"Cmd": ["/bin/sh"]}}
        if i > 0:
            v1["parent"] = ids[i - 1]
        if i == len(layer_digests) - 1:
            v1.update({"architecture": architecture, "os": "linux"})
        history.append({"v1Compatibility": json.dumps(v1, separators=(",", ":"))})
    body = {
        "schemaVersion": 1, "name": repo, "tag": tag, "architecture": architecture,
        "fsLayers": [{"blobSum": d} for d in reversed(list(layer_digests))],
        "history": list(reversed(history)),
    }
    payload = json.dumps(body, indent=3).encode()
    # libtrust: formatLength = index just past the last non-space char before the closing '}',
    # formatTail = the rest; the signed payload is the full pretty JSON
    close = payload.rindex(b"}")
    fmt_len = len(payload[:close].rstrip())
    tail = payload[fmt_len:]
    key = ec.generate_private_key(ec.SECP256R1())
    nums = key.public_key().public_numbers()
    jwk = {"crv": "P-256", "kid": _libtrust_key_id(key.public_key()), "kty": "EC",
           "x": _b64url(nums.x.to_bytes(32, "big")), "y": _b64url(nums.y.to_bytes(32, "big"))}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    protected = _b64url(json.dumps({"formatLength": fmt_len, "formatTail": _b64url(tail), "time": now},
                                   separators=(",", ":")).encode())
    signing_input = (protected + "." + _b64url(payload)).encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    sig = _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    signatures = [{"header": {"jwk": jwk, "alg": "ES256"}, "signature": sig, "protected": protected}]
    sig_json = json.dumps(signatures, indent=3).replace("\n", "\n   ")
    return payload[:fmt_len] + b',\n   "signatures": ' + sig_json.encode() + tail


def put_schema1(registry, repo: str, tag: str, layers: Sequence[LayerSpec] = ({"etc/old": b"schema1\n"},)) -> str:
    """Upload gzip layers and a signed schema-1 manifest (registry started with ``schema1=True``).

    Returns the manifest digest as the registry reports it (Docker-Content-Digest: the digest of
    the payload without signatures for schema 1).
    """
    client = registry.client()
    digests = []
    for spec in layers:
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(layer_tar_bytes(spec))
        digests.append(client.upload_blob(repo, buf.getvalue()))
    raw = schema1_manifest(repo, tag, digests)
    return client.put_manifest(repo, tag, raw, MT_SCHEMA1_SIGNED)


# An image in the shape Alpine's images have: /etc/os-release and the apk database listing two packages (musl,
# MIT; zlib, Zlib), as syft reads them (tests/integration/test_sbom.py, test_report.py).
OS_RELEASE = b"""NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
"""
APK_DB = b"""C:Q1AbCdEfGhIjKlMnOpQrStUvWxYz01234=
P:musl
V:1.2.5-r0
A:x86_64
S:411244
I:652112
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1727107190
c:5a6e5dc6bd4c1ba1ba1ba1ba1ba1ba1ba1ba1ba

C:Q1ZyXwVuTsRqPoNmLkJiHgFeDcBa98765=
P:zlib
V:1.3.1-r1
A:x86_64
S:53720
I:100352
T:A compression/decompression Library
U:https://zlib.net/
L:Zlib
o:zlib
m:Natanael Copa <ncopa@alpinelinux.org>
t:1727107190
c:1b2b3b4b5b6b7b8b9b0b1b2b3b4b5b6b7b8b9b0b

"""
ALPINE_FILES = {"etc/os-release": OS_RELEASE, "lib/apk/db/installed": APK_DB}
