"""Images, indexes and supply-chain artifacts in the exact shapes real producers write (issue 12).

Every fixture is built offline, byte for byte as the producer would serialise it: Go's encoding/json field
order (the struct order of the OCI/Docker types, not alphabetical), the indentation each tool uses (Docker's
schema 2 manifests: three spaces; BuildKit: two; go-containerregistry (cosign, crane), containers/image (podman,
skopeo) and ORAS (helm): compact), the media types and annotations they set. Small fabricated layers stand in
for real file systems: shapes, not contents, are what the code under test reads.

=============================  ==========================================================================
``buildx_index``               BuildKit ``--platform a,b --provenance --sbom``: OCI index, each platform's
                               manifest followed by its attestation manifest (platform unknown/unknown,
                               vnd.docker.reference.type/digest), in-toto layers
``official_image_index``       Docker Official Images: the same, plus bashbrew/OCI annotations per descriptor
``docker_list``                ``docker push`` of a schema 2 manifest list (3-space indented, arm64 variant v8)
``podman_dual``                ``podman manifest push --add-compression zstd``: gzip and zstd manifests per
                               platform, the zstd ones annotated io.github.containers.compression.zstd
``zstd_image``                 a zstd-only OCI image (``buildx --output compression=zstd``)
``windows_list``               a Windows image list: foreign base layers with ``urls`` (mcr.microsoft.com)
``cosign_signature``           ``cosign sign --key`` (tag sha256-<hex>.sig): simple-signing payload, signature in
                               the layer annotation (ECDSA P-256 or Ed25519 key)
``cosign_attestation``         ``cosign attest --key`` (tag sha256-<hex>.att): DSSE envelope layer
``oci_referrer``               ``oras attach`` / OCI 1.1: artifactType, empty config, ``subject``
``fallback_index``             the referrers tag schema's index (tag sha256-<hex>) listing referrers
=============================  ==========================================================================

``Artifact`` holds one manifest (bytes exactly as written), its media type, the blobs it needs and the child
artifacts an index names; ``push(target, repo, tag)`` puts it into a MemRegistry or a real registry through
``helpers.client.RegistryClient`` (a seeding tool, byte-exact), children first.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
COSIGN_SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
EMPTY_JSON = b"{}"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def go_json(obj: object, indent: Optional[int] = None) -> bytes:
    """encoding/json's output: keys in the order given (the Go struct's), json.Marshal compact or MarshalIndent;
    Go escapes <, > and & in strings."""
    if indent is None:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(obj, indent=indent, separators=(",", ": "), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def desc(media_type: str, data: bytes, **extra: object) -> Dict[str, object]:
    """An OCI/Docker descriptor in Go's field order: mediaType, digest, size, urls, annotations, platform,
    artifactType."""
    out: Dict[str, object] = {"mediaType": media_type, "digest": sha(data), "size": len(data)}
    for key in ("urls", "annotations", "platform", "artifactType"):
        if extra.get(key) is not None:
            out[key] = extra[key]
    return out


def platform_obj(text: str, os_version: Optional[str] = None) -> Dict[str, str]:
    """Go's Platform field order: architecture, os, os.version, variant."""
    parts = text.split("/")
    out = {"architecture": parts[1], "os": parts[0]}
    if os_version:
        out["os.version"] = os_version
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def layer_tar(files: Dict[str, bytes]) -> bytes:
    """A deterministic uncompressed layer tar."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


@dataclass
class Artifact:
    """One manifest or index as the producer wrote it, with what it needs."""

    data: bytes
    media_type: str
    blobs: Dict[str, bytes] = field(default_factory=dict)      # digest -> bytes (config, layers)
    children: List["Artifact"] = field(default_factory=list)   # manifests an index names, in its order
    platform: str = ""                                          # for a per-platform manifest
    note: str = ""                                              # what it is (attestation, zstd, ...)

    @property
    def digest(self) -> str:
        return sha(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> Dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    def child(self, platform: str, note: str = "") -> "Artifact":
        for c in self.children:
            if c.platform == platform and c.note == note:
                return c
        raise KeyError((platform, note))

    def all_blobs(self) -> Dict[str, bytes]:
        out = dict(self.blobs)
        for c in self.children:
            out.update(c.all_blobs())
        return out

    def push(self, target: object, repo: str, tag: Optional[str] = None) -> str:
        """Into a MemRegistry (seed, no request) or a RegistryClient (real registry); children first."""
        for c in self.children:
            c.push(target, repo)
        for data in self.blobs.values():
            if hasattr(target, "put_blob"):
                target.put_blob(repo, data)
            else:
                target.upload_blob(repo, data)
        if hasattr(target, "put_blob"):
            target.put_manifest(repo, self.data, self.media_type, tag)
            return self.digest
        return target.put_manifest(repo, tag or self.digest, self.data, self.media_type)


# --- images ------------------------------------------------------------------------------------------------

def oci_config(platform: str, diff_ids: Sequence[str], created: str = "2026-11-30T10:00:00Z") -> bytes:
    """An image config as BuildKit writes it (compact; Go's order for ocispec.Image)."""
    parts = platform.split("/")
    doc: Dict[str, object] = {"architecture": parts[1], "created": created, "history": [
        {"created": created, "created_by": "COPY app /app # buildkit", "comment": "buildkit.dockerfile.v0"}],
        "os": parts[0], "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}
    if len(parts) > 2:
        doc["variant"] = parts[2]
    doc["config"] = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                     "Cmd": ["/app"], "WorkingDir": "/"}
    return go_json(doc)


def image(platform: str, seed: str, *, docker: bool = False, compression: str = "gzip", indent: Optional[int] = None,
          annotations: Optional[Dict[str, str]] = None, foreign: Sequence[Dict[str, object]] = (),
          os_version: Optional[str] = None) -> Artifact:
    """One platform's image: a config and one small layer (``seed`` makes it unique)."""
    raw = layer_tar({"app": ("%s %s\n" % (seed, platform)).encode()})
    layer = zst(raw) if compression == "zstd" else gz(raw)
    config = oci_config(platform, [sha(raw)])
    if docker:
        cfg_desc = desc(DOCKER_CONFIG, config)
        layers = list(foreign) + [desc(DOCKER_LAYER, layer)]
        doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": cfg_desc, "layers": layers}
        mt = DOCKER_MANIFEST
    else:
        layer_type = OCI_LAYER_ZSTD if compression == "zstd" else OCI_LAYER_GZIP
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc(OCI_CONFIG, config),
               "layers": [desc(layer_type, layer)]}
        if annotations:
            doc["annotations"] = annotations
        mt = OCI_MANIFEST
    art = Artifact(go_json(doc, indent), mt, {sha(config): config, sha(layer): layer}, platform=platform,
                   note=compression if compression != "gzip" else "")
    if os_version:
        art.note = os_version
    return art


def attestation_manifest(subject: Artifact, seed: str, indent: Optional[int] = 2) -> Artifact:
    """BuildKit's attestation manifest for ``subject``: an in-toto SLSA provenance and an SPDX SBOM statement."""
    statements = []
    purl = "pkg:docker/acme/app@1.0?platform=%s" % subject.platform.replace("/", "%2F")
    for predicate in ("https://slsa.dev/provenance/v0.2", "https://spdx.dev/Document"):
        body = go_json({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": predicate,
                        "subject": [{"name": purl, "digest": {"sha256": subject.digest[7:]}}],
                        "predicate": {"seed": seed}})
        ann = {"in-toto.io/predicate-type": predicate}
        statements.append((body, ann))
    config = go_json({"architecture": "unknown", "os": "unknown", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [sha(b) for b, _ in statements]}})
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc(OCI_CONFIG, config),
           "layers": [desc(IN_TOTO, body, annotations=ann) for body, ann in statements]}
    blobs = {sha(config): config}
    blobs.update((sha(b), b) for b, _ in statements)
    return Artifact(go_json(doc, indent), OCI_MANIFEST, blobs, platform="unknown/unknown", note="attestation")


def _index(media_type: str, entries: List[Tuple[Artifact, Dict[str, object]]], indent: Optional[int],
           annotations: Optional[Dict[str, str]] = None) -> Artifact:
    manifests = []
    for art, extra in entries:
        d = art.descriptor()
        for key in ("annotations", "platform"):
            if key in extra:
                d[key] = extra[key]
        manifests.append(d)
    doc: Dict[str, object] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    if annotations:
        doc["annotations"] = annotations
    return Artifact(go_json(doc, indent), media_type, children=[a for a, _ in entries])


def buildx_index(seed: str = "buildx", platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
                 official: bool = False) -> Artifact:
    """BuildKit with provenance and SBOM attestations (``docker buildx build --platform ... --push``)."""
    entries: List[Tuple[Artifact, Dict[str, object]]] = []
    atts = []
    for p in platforms:
        img = image(p, seed, indent=2)
        extra: Dict[str, object] = {"platform": platform_obj(p)}
        if official:
            arch = p.split("/", 1)[1].replace("/", "")
            extra["annotations"] = {"com.docker.official-images.bashbrew.arch": arch.replace("armv7", "arm32v7"),
                                    "org.opencontainers.image.base.name": "scratch",
                                    "org.opencontainers.image.created": "2026-11-30T10:00:00Z",
                                    "org.opencontainers.image.revision": "0123456789abcdef",
                                    "org.opencontainers.image.source": "https://github.com/docker-library/acme.git",
                                    "org.opencontainers.image.url": "https://hub.docker.com/_/acme",
                                    "org.opencontainers.image.version": "1.0"}
        entries.append((img, extra))
        att = attestation_manifest(img, seed)
        atts.append((att, {"annotations": {"vnd.docker.reference.digest": img.digest,
                                           "vnd.docker.reference.type": "attestation-manifest"},
                           "platform": {"architecture": "unknown", "os": "unknown"}}))
    if official:  # the official images list every image, then every attestation
        return _index(OCI_INDEX, entries + atts, 2)
    interleaved = [e for pair in zip(entries, atts) for e in pair]
    return _index(OCI_INDEX, interleaved, 2)


def official_image_index(seed: str = "official") -> Artifact:
    return buildx_index(seed, ("linux/amd64", "linux/arm/v7", "linux/arm64/v8"), official=True)


def docker_list(seed: str = "docker", platforms: Sequence[str] = ("linux/amd64", "linux/arm64/v8")) -> Artifact:
    """``docker push`` of a multi-arch schema 2 image: a manifest list, manifests indented with three spaces."""
    entries = [(image(p, seed, docker=True, indent=3), {"platform": platform_obj(p)}) for p in platforms]
    return _index(DOCKER_LIST, entries, 3)


def podman_dual(seed: str = "podman", platforms: Sequence[str] = ("linux/amd64", "linux/arm64")) -> Artifact:
    """podman's dual-compression index: per platform a gzip manifest, then a zstd one annotated as such."""
    entries: List[Tuple[Artifact, Dict[str, object]]] = []
    for p in platforms:
        entries.append((image(p, seed), {"platform": platform_obj(p)}))
    for p in platforms:
        entries.append((image(p, seed, compression="zstd"),
                        {"annotations": {"io.github.containers.compression.zstd": "true"},
                         "platform": platform_obj(p)}))
    return _index(OCI_INDEX, entries, None)


def zstd_image(seed: str = "zstd", platform: str = "linux/amd64") -> Artifact:
    return image(platform, seed, compression="zstd")


def windows_list(seed: str = "windows", base: bytes = b"windows servercore base layer (stand-in)\n",
                 url_base: str = "https://mcr.microsoft.com/v2/windows/servercore/blobs/") -> Tuple[Artifact, bytes]:
    """A Windows image list (as Docker on Windows pushes it): the base layer is foreign, served by its URL.
    Returns (the list, the foreign layer's bytes, which the registry does not hold)."""
    layer = gz(base)
    foreign = desc(DOCKER_FOREIGN, layer, urls=[url_base + sha(layer)])
    img = image("windows/amd64", seed, docker=True, indent=3, foreign=[foreign], os_version="10.0.17763.5576")
    listing = _index(DOCKER_LIST, [(img, {"platform": platform_obj("windows/amd64", "10.0.17763.5576")})], 3)
    return listing, layer


# --- cosign ------------------------------------------------------------------------------------------------

def simple_signing_payload(digest: str, identity: str) -> bytes:
    """cosign's payload (compact, Go order: critical{identity, image, type}, optional)."""
    return go_json({"critical": {"identity": {"docker-reference": identity},
                                 "image": {"docker-manifest-digest": digest},
                                 "type": "cosign container image signature"}, "optional": None})


def sign_bytes(private_key: object, data: bytes) -> bytes:
    """As cosign signs a payload: ECDSA P-256 over SHA-256 (DER), Ed25519 over the bytes."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    return private_key.sign(data, ec.ECDSA(hashes.SHA256()))


def ggcr_desc(media_type: str, data: bytes, annotations: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    """go-containerregistry's v1.Descriptor field order (cosign, crane): mediaType, size, digest, annotations;
    Go marshals the annotations map with its keys sorted."""
    out: Dict[str, object] = {"mediaType": media_type, "size": len(data), "digest": sha(data)}
    if annotations:
        out["annotations"] = dict(sorted(annotations.items()))
    return out


def _cosign_manifest(layers: List[Tuple[str, bytes, Dict[str, str]]]) -> Artifact:
    """go-containerregistry's empty image plus layers, as cosign writes signatures and attestations."""
    config = go_json({"architecture": "", "created": "0001-01-01T00:00:00Z",
                      "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers],
                      "os": "", "rootfs": {"type": "layers", "diff_ids": [sha(b) for _, b, _ in layers]},
                      "config": {}})
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": ggcr_desc(OCI_CONFIG, config),
           "layers": [ggcr_desc(mt, b, ann) for mt, b, ann in layers]}
    blobs = {sha(config): config}
    blobs.update((sha(b), b) for _, b, _ in layers)
    return Artifact(go_json(doc), OCI_MANIFEST, blobs, note="cosign")


def cosign_signature(subject_digest: str, private_keys: Sequence[object], identity: str = "registry.test/acme/app",
                     payload_digest: Optional[str] = None) -> Artifact:
    """``cosign sign --key`` (one layer per signing, as cosign appends them): tag it sha256-<hex>.sig.
    ``payload_digest`` (tests): the digest the payload names, if not the subject's."""
    layers = []
    for key in private_keys:
        payload = simple_signing_payload(payload_digest or subject_digest, identity)
        signature = base64.b64encode(sign_bytes(key, payload)).decode()
        layers.append((SIMPLE_SIGNING, payload, {COSIGN_SIG_ANNOTATION: signature}))
    return _cosign_manifest(layers)


def cosign_attestation(subject_digest: str, private_key: object,
                       predicate_type: str = "https://slsa.dev/provenance/v0.2") -> Artifact:
    """``cosign attest --key --type slsaprovenance``: one DSSE envelope per attestation; tag sha256-<hex>.att."""
    statement = go_json({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": predicate_type,
                         "subject": [{"name": "registry.test/acme/app", "digest": {"sha256": subject_digest[7:]}}],
                         "predicate": {"builder": {"id": "https://example.test/builder"}}})
    pae = b"DSSEv1 %d application/vnd.in-toto+json %d " % (len("application/vnd.in-toto+json"), len(statement)) \
        + statement
    envelope = go_json({"payloadType": "application/vnd.in-toto+json",
                        "payload": base64.b64encode(statement).decode(),
                        "signatures": [{"keyid": "", "sig": base64.b64encode(sign_bytes(private_key, pae)).decode()}]})
    return _cosign_manifest([(DSSE, envelope, {COSIGN_SIG_ANNOTATION: "", "predicateType": predicate_type})])


def cosign_tag(subject_digest: str, suffix: str) -> str:
    return "sha256-%s.%s" % (subject_digest[7:], suffix)


# --- OCI 1.1 referrers -------------------------------------------------------------------------------------

def oci_referrer(subject: Artifact, artifact_type: str = "application/spdx+json",
                 content: bytes = b'{"spdxVersion":"SPDX-2.3"}', title: str = "sbom.spdx.json") -> Artifact:
    """``oras attach --artifact-type T SUBJECT file`` (OCI 1.1): empty config, one layer, ``subject``."""
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
           "config": desc(OCI_EMPTY, EMPTY_JSON),
           "layers": [desc(artifact_type, content, annotations={"org.opencontainers.image.title": title})],
           "subject": subject.descriptor(),
           "annotations": {"org.opencontainers.image.created": "2026-11-30T10:00:00Z"}}
    return Artifact(go_json(doc), OCI_MANIFEST, {sha(EMPTY_JSON): EMPTY_JSON, sha(content): content},
                    note="referrer")


def fallback_index(referrers: Sequence[Artifact]) -> Artifact:
    """The referrers tag schema's index (tag sha256-<hex of the subject>), as ORAS writes it."""
    manifests = []
    for r in referrers:
        doc = json.loads(r.data)
        d = r.descriptor()
        if doc.get("artifactType"):
            d["artifactType"] = doc["artifactType"]
        if doc.get("annotations"):
            d["annotations"] = doc["annotations"]
        manifests.append(d)
    return Artifact(go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}), OCI_INDEX)


def keys() -> Tuple[object, object]:
    """(an ECDSA P-256 private key, an Ed25519 private key), fresh."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    return ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()


def public_pem(private_key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
