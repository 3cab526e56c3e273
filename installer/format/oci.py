"""OCI and Docker manifest media types, descriptors and platform matching (image-spec v1.1).

Manifests are kept byte-exact; this module only reads them to find their children.
"""

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, TypedDict

from installer.errors import InvalidInput
from installer.format.reference import DIGEST_RE

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES + SCHEMA1)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024  # a cosign simple-signing payload is a few hundred bytes; a larger one is not read
# Foreign (non-distributable) layers: their publisher serves them from the descriptor's urls (Windows base
# layers); registries do not have to hold them. Docker's type, and the OCI ones image-spec 1.1 deprecates.
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
NONDISTRIBUTABLE_TYPES = (DOCKER_FOREIGN_LAYER,
                          "application/vnd.oci.image.layer.nondistributable.v1.tar",
                          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                          "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
# Supply-chain artifacts (docs/FORMAT.md "Referrers"): cosign's tag suffixes and layer types, buildx's
# attestation manifests, the OCI 1.1 empty config and referrers tag schema.
COSIGN_SIGNATURE_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
DOCKER_REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'

# A descriptor's platform as the manifest gave it: a JSON object whose values nothing has checked yet.
Platform = Dict[str, Any]


class _DescriptorRequired(TypedDict):
    mediaType: str
    digest: str
    size: int


class DescriptorJSON(_DescriptorRequired, total=False):
    platform: Platform
    annotations: object  # passed through as the manifest has it
    urls: object
    artifactType: object


class Descriptor:
    __slots__ = ("media_type", "digest", "size", "platform", "annotations", "urls", "artifact_type")

    def __init__(self, media_type: str, digest: str, size: int, platform: Optional[Platform] = None,
                 annotations: object = None, urls: object = None, artifact_type: object = None) -> None:
        self.media_type = media_type
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
        self.urls = urls                    # as the manifest has them: checked where they are used
        self.artifact_type = artifact_type

    @property
    def foreign(self) -> bool:
        """A non-distributable layer (a Windows base layer): registries need not hold it."""
        return self.media_type in NONDISTRIBUTABLE_TYPES

    def annotation(self, key: str) -> Optional[str]:
        value = self.annotations.get(key) if isinstance(self.annotations, dict) else None
        return value if isinstance(value, str) else None

    @property
    def attestation_of(self) -> Optional[str]:
        """The manifest digest a buildx attestation-manifest entry of an index describes, else None."""
        if self.annotation(DOCKER_REFERENCE_TYPE) != ATTESTATION_MANIFEST:
            return None
        ref = self.annotation(DOCKER_REFERENCE_DIGEST)
        return ref if ref is not None and DIGEST_RE.fullmatch(ref) else None

    @classmethod
    def parse(cls, obj: object, where: str) -> "Descriptor":
        if not isinstance(obj, dict):
            raise InvalidInput("%s: a descriptor is not an object" % where)
        digest, size, media = obj.get("digest"), obj.get("size"), obj.get("mediaType", "")
        if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
            raise InvalidInput("%s: descriptor digest %r is not sha256:<64 hex>" % (where, digest))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput("%s: descriptor size %r is not a non-negative integer" % (where, size))
        platform = obj.get("platform")
        return cls(media if isinstance(media, str) else "", digest, size,
                   platform if isinstance(platform, dict) else None, obj.get("annotations"), obj.get("urls"),
                   obj.get("artifactType"))

    def to_json(self) -> DescriptorJSON:
        out: DescriptorJSON = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        if self.urls:
            out["urls"] = self.urls
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


def media_type_of(data: bytes, header_type: str) -> str:
    """The manifest's media type: the Content-Type, else its own mediaType field."""
    media = (header_type or "").split(";", 1)[0].strip()
    if media in MANIFEST_TYPES + INDEX_TYPES + SCHEMA1:
        return media
    try:
        doc = json.loads(data)
    except ValueError:
        return media
    inner = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(inner, str) and inner:
        return inner
    if isinstance(doc, dict) and doc.get("schemaVersion") == 1:
        return SCHEMA1[0]
    if isinstance(doc, dict) and "manifests" in doc:
        return OCI_INDEX
    return media or OCI_MANIFEST


@dataclass(frozen=True)
class OciDocument:
    """What a manifest or an index says about its graph: an image manifest has a ``config`` and its layers as
    ``children``; an index has ``config`` None and its manifests as ``children``. ``subject`` (OCI 1.1: the
    manifest this one refers to), ``artifact_type`` and ``annotations`` are as given, checked where used."""

    config: Optional[Descriptor]
    children: List[Descriptor]
    subject: Optional[Descriptor]
    artifact_type: Optional[str]
    annotations: Dict[str, str]

    @property
    def kind_type(self) -> str:
        """The artifact type as the referrers API reports it: artifactType, else the config's media type."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config is not None else ""


def parse_document(data: bytes, media_type: str, where: str) -> OciDocument:
    """Parse a manifest or an index of a supported media type (schema 1 and others are refused)."""
    if media_type in SCHEMA1:
        raise InvalidInput("%s is a Docker schema 1 manifest, which is not supported (re-push it as schema 2 or OCI)"
                           % where)
    if media_type not in MANIFEST_TYPES + INDEX_TYPES:
        raise InvalidInput("%s has the unsupported media type %r" % (where, media_type))
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput("%s is not valid JSON" % where) from exc
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InvalidInput("%s is not a schemaVersion 2 manifest" % where)
    subject = Descriptor.parse(doc["subject"], where) if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType") if isinstance(doc.get("artifactType"), str) else None
    raw = doc.get("annotations")
    annotations = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(raw, dict) else {}
    if media_type in INDEX_TYPES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise InvalidInput("%s: an index without a manifests list" % where)
        return OciDocument(None, [Descriptor.parse(c, where) for c in children], subject, artifact_type,
                           annotations)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidInput("%s: a manifest without a layers list" % where)
    return OciDocument(Descriptor.parse(doc.get("config"), where), [Descriptor.parse(layer, where) for layer in layers],
                       subject, artifact_type, annotations)


def parse_manifest(data: bytes, media_type: str, where: str) -> Tuple[Optional[Descriptor], List[Descriptor]]:
    """(config, layers) for an image manifest; (None, children) for an index."""
    doc = parse_document(data, media_type, where)
    return doc.config, doc.children



def image_manifest(data: bytes, media_type: str, where: str) -> Tuple[Descriptor, List[Descriptor]]:
    """(config, layers) of a manifest that must be an image manifest (a platform's, or a chart's), not an index."""
    config, layers = parse_manifest(data, media_type, where)
    if config is None:
        raise InvalidInput("%s: an image index where an image manifest was expected" % where)
    return config, layers


def kind_of(media_type: str) -> str:
    """A media type in words, for people."""
    return {OCI_MANIFEST: "OCI manifest", OCI_INDEX: "OCI index", DOCKER_MANIFEST: "Docker manifest",
            DOCKER_LIST: "Docker manifest list"}.get(media_type, media_type)


def platform_string(platform: Optional[Platform]) -> str:
    if not platform:
        return "unknown"
    out = "%s/%s" % (platform.get("os", "unknown"), platform.get("architecture", "unknown"))
    if platform.get("variant"):
        out += "/" + platform["variant"]
    return out


# The variant an architecture has when none is written, as containerd normalises platforms: linux/arm64 is
# linux/arm64/v8, linux/amd64 is linux/amd64/v1, linux/arm is linux/arm/v7 (containerd/platforms "Normalize").
DEFAULT_VARIANT = {"arm64": "v8", "amd64": "v1", "arm": "v7"}
_ARCH_ALIASES = {"aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64", "armhf": "arm", "armel": "arm"}


def normalize_platform(os_name: str, architecture: str, variant: str = "") -> Tuple[str, str, str]:
    """(os, architecture, variant) as containerd compares them: lower-case, aliases resolved, default variants."""
    arch = _ARCH_ALIASES.get(architecture.lower(), architecture.lower())
    return os_name.lower(), arch, variant.lower() or DEFAULT_VARIANT.get(arch, "")


def platform_matches(wanted: str, platform: Optional[Platform]) -> bool:
    """'linux/arm64' matches any arm64 variant; 'linux/arm64/v8' matches v8 and an arm64 entry that names no
    variant (which is v8); 'linux/amd64/v1' matches plain amd64, 'linux/arm/v7' plain arm."""
    if not platform:
        return False
    parts = wanted.split("/")
    have = normalize_platform(str(platform.get("os", "")), str(platform.get("architecture", "")),
                              str(platform.get("variant", "") or ""))
    want = normalize_platform(parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")
    if want[:2] != have[:2]:
        return False
    return len(parts) < 3 or want[2] == have[2]


def config_platform(config_bytes: bytes) -> Dict[str, str]:
    try:
        doc = json.loads(config_bytes)
    except ValueError:
        return {}
    out = {k: doc.get(k) for k in ("os", "architecture", "variant") if isinstance(doc.get(k), str) and doc.get(k)}
    return out
