"""The typed model of format 1: bundle.json, DELTA.json and the kit's receipts, as frozen dataclasses.

One class per entity, used by both sides: the builder makes them and writes ``to_dict()`` (as canonical
JSON, installer/format/meta.py); the installer reads only through ``from_dict(obj, where)``, which does
every check the format makes and raises the document's own error (bundle.json and DELTA.json:
InvalidInput, exit 3; a receipt: LocalEnvironmentError, exit 9) naming the value by its JSON path:
``bundle.json: images[2].digest is not sha256:<64 hex>``. schemas/bundle.schema.json describes the
same bundle.json for other tools; the installer itself carries no schema engine.

Two kinds of fields:
- checked fields are what the installer relies on (names, versions, paths, digests, sizes); they are
  typed, and a wrong value is refused;
- informative fields record how a bundle or a receipt was made (where an image was fetched from, the
  mirrors used, a phase's detail). The installer never relies on them, so format 1 does not check them:
  they hold any JSON value (``Json``), kept as read and shown as such (inspect prints them escaped).
Optional keys a bundle.json did not have are listed in ``absent``, so that ``to_dict()`` gives back what
was read (receipts, which are never written back, are not); keys the format does not define are dropped.
"""

import datetime
import re
from functools import cached_property
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Type

from installer.errors import BundleError, InvalidInput, LocalEnvironmentError
from installer.format.paths import (BLOB_PREFIX, c_sorted, chart_path, chart_values_path, is_reserved, path_problem,
                                    tenant_path)
from installer.format.deployspec import DeploySpec, parse_deploy
from installer.format.oci import NONDISTRIBUTABLE_TYPES
from installer.format.reference import DIGEST_RE, HEX64_RE, parse as parse_ref
from installer.format.semver import is_semver

Json = Any  # a value as json.loads returns it: informative, never relied on

FORMAT = 1
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a bundle name; used with fullmatch, as every pattern here
COMPONENT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a tenant component (loki, tempo, ...)
CHART_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
CREATED_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
VALUES_PATH_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")  # a dotted path into a chart's values
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
IMAGE_SOURCES = ("registry", "docker-daemon")
CHART_IMAGE_STYLES = ("repository-tag", "registry-repository-tag", "image")


# --- where a value is, and the error that names it ------------------------------------------------------

class Where:
    """A place in a JSON document (``images[2].digest``: a path, never a line, since JSON is read whole) and
    how that document reports a bad value there: ``report(path, why)`` makes the error ("" is the root)."""

    __slots__ = ("path", "_report")

    def __init__(self, report: Callable[[str, str], BundleError], path: str = "") -> None:
        self._report = report
        self.path = path

    def key(self, name: str) -> "Where":
        step = name if _PLAIN_KEY_RE.fullmatch(name) else "[%s]" % ascii(name)
        if self.path and not step.startswith("["):
            step = "." + step
        return Where(self._report, self.path + step)

    def item(self, index: int) -> "Where":
        return Where(self._report, "%s[%d]" % (self.path, index))

    def error(self, why: str) -> BundleError:
        """``images[2].digest is not ...``"""
        return self._report(self.path, why)

    def problem(self, why: str) -> BundleError:
        """``members[0].path: path 'a//b' has ...`` (``why`` is a sentence of its own)."""
        return self._report(self.path + ":" if self.path else "", why)


def document(name: str, error: Type[BundleError] = InvalidInput) -> Where:
    """The root of a document whose errors read ``<name>: <path> <why>``."""
    return Where(lambda path, why: error("%s: %s" % (name, "%s %s" % (path, why) if path else why)))


BUNDLE_JSON = document("bundle.json")
DELTA_JSON = document("DELTA.json")


def _object(obj: Json, where: Where) -> Mapping[str, Json]:
    if not isinstance(obj, dict):
        raise where.error("is not an object")
    return obj


def _want(obj: Mapping[str, Json], key: str, kind: type, where: Where) -> Any:
    """``obj[key]``, present and of ``kind`` (a bool is not an int)."""
    if key not in obj:
        raise where.key(key).error("is missing")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise where.key(key).error("has the wrong type")
    return value


def _absent(obj: Mapping[str, Json], optional: Iterable[str]) -> FrozenSet[str]:
    return frozenset(k for k in optional if k not in obj)


def _without(doc: Dict[str, Json], absent: FrozenSet[str]) -> Dict[str, Json]:
    for key in absent:
        doc.pop(key, None)
    return doc


def _list(obj: Mapping[str, Json], key: str, where: Where) -> List[Json]:
    value: List[Json] = _want(obj, key, list, where)
    return value


def valid_time(text: str) -> bool:
    """An RFC 3339 UTC time to the second, as bundle.json's ``created``: 2026-11-26T00:00:00Z."""
    if not CREATED_RE.fullmatch(text):
        return False
    try:
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


# --- bundle.json ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tool:
    name: str
    version: str

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "Tool":
        _object(obj, where)
        return cls(_want(obj, "name", str, where), _want(obj, "version", str, where))

    def to_dict(self) -> Dict[str, Json]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class Member:
    """One file of the bundle (every SHA256SUMS path but bundle.json and DELTA.json)."""

    path: str
    size: int
    executable: bool = False
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "Member":
        _object(obj, where)
        path = _want(obj, "path", str, where)
        problem = path_problem(path)
        if problem:
            raise where.key("path").problem(problem)
        size = _want(obj, "size", int, where)
        if size < 0:
            raise where.key("size").error("is negative")
        executable = obj.get("executable", False)
        if not isinstance(executable, bool):
            raise where.key("executable").error("is not true or false")
        return cls(path, size, executable, _absent(obj, ("executable",)))

    def to_dict(self) -> Dict[str, Json]:
        return _without({"path": self.path, "size": self.size, "executable": self.executable}, self.absent)


def _check_listed(path: str, where: Where, sizes: Mapping[str, int]) -> None:
    """A path named in bundle.json obeys the member rules and is a listed member (issue 10, point 1):
    signed metadata never names anything outside the verified tree."""
    problem = path_problem(path)
    if problem:
        raise where.problem(problem)
    if path not in sizes:
        raise where.error("%s is not a member of the bundle" % path)


@dataclass(frozen=True)
class BundleFile:
    """A manifest file placed in the bundle; ``source`` (manifest-relative) is informative."""

    target: str
    sha256: str
    size: int                   # informative: the member's own size is what is enforced
    executable: bool = False    # must equal the member's (compared as true or false, as format 1 always has)
    source: Json = None
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_dict(cls, obj: Json, where: Where, sizes: Mapping[str, int], executable: FrozenSet[str]) -> "BundleFile":
        _object(obj, where)
        target = _want(obj, "target", str, where)
        _check_listed(target, where.key("target"), sizes)
        if is_reserved(target):
            raise where.key("target").error("%s falls under a reserved name" % target)
        sha256 = _want(obj, "sha256", str, where)
        if not HEX64_RE.fullmatch(sha256):
            raise where.key("sha256").error("is not 64 hex digits")
        size = _want(obj, "size", int, where)
        is_executable = bool(obj.get("executable", False))
        if is_executable != (target in executable):
            raise where.key("executable").error("differs from the member's")
        return cls(target, sha256, size, is_executable, obj.get("source"), _absent(obj, ("executable", "source")))

    def to_dict(self) -> Dict[str, Json]:
        return _without({"target": self.target, "source": self.source, "sha256": self.sha256, "size": self.size,
                         "executable": self.executable}, self.absent)


@dataclass(frozen=True)
class Tenant:
    """tenants.<component>: always tenants/<component>.yaml, a listed member; nothing else is read for it."""

    component: str
    path: str
    source: Json = None         # informative: the manifest's file, its sha256 and size
    sha256: Json = None
    size: Json = None
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_dict(cls, component: str, obj: Json, where: Where, sizes: Mapping[str, int]) -> "Tenant":
        if not COMPONENT_RE.fullmatch(component):
            raise where.error("has a component %r that is not a name" % (component,))
        where = where.key(component)
        _object(obj, where)
        path = _want(obj, "path", str, where)
        if path != tenant_path(component):
            raise where.key("path").error("is %r; a tenant file is %s" % (path[:200], tenant_path(component)))
        _check_listed(path, where.key("path"), sizes)  # read later capped by that member's signed size
        return cls(component, path, obj.get("source"), obj.get("sha256"), obj.get("size"),
                   _absent(obj, ("source", "sha256", "size")))

    def to_dict(self) -> Dict[str, Json]:
        return _without({"path": self.path, "source": self.source, "sha256": self.sha256, "size": self.size},
                        self.absent)


@dataclass(frozen=True)
class PlatformManifest:
    """One per-platform manifest an image entry keeps (``platform`` as os/arch[/variant])."""

    digest: str
    media_type: str
    platform: str

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "PlatformManifest":
        if not isinstance(obj, dict) or not DIGEST_RE.fullmatch(_want(obj, "digest", str, where)):
            raise where.key("digest").error("is not sha256:<64 hex>")
        return cls(obj["digest"], _want(obj, "media_type", str, where), _want(obj, "platform", str, where))

    def to_dict(self) -> Dict[str, Json]:
        return {"digest": self.digest, "media_type": self.media_type, "platform": self.platform}


def _blob_fields(obj: Json, where: Where) -> int:
    """An object naming a blob: ``digest`` a strict sha256 digest, ``size`` a non-negative integer (returned)."""
    _object(obj, where)
    if not DIGEST_RE.fullmatch(_want(obj, "digest", str, where)):
        raise where.key("digest").error("is not sha256:<64 hex>")
    size: int = _want(obj, "size", int, where)
    if size < 0:
        raise where.key("size").error("is negative")
    return size


REFERRER_TAG_RE = re.compile(r"sha256-[0-9a-f]{64}\.(sig|att|sbom)")  # cosign's tags: sha256-<hex of subject>.sig
REFERRER_KINDS = ("signature", "attestation", "sbom", "artifact")
FOUND_BY = ("tag", "referrers-api", "fallback-tag", "index")


def referrer_tag(subject: str, suffix: str) -> str:
    """cosign's tag for ``subject``'s signature (sig), attestation (att) or SBOM (sbom): sha256-<hex>.<suffix>."""
    return "sha256-%s.%s" % (subject[len("sha256:"):], suffix)


def fallback_tag(subject: str) -> str:
    """The OCI 1.1 referrers tag schema: the index of ``subject``'s referrers is tagged sha256-<hex>."""
    return "sha256-" + subject[len("sha256:"):]


@dataclass(frozen=True)
class Referrer:
    """A supply-chain artifact carried with an image (a cosign signature, an attestation, an SBOM, an OCI 1.1
    referrer): a manifest, kept byte-exact, that refers to one of the image's kept manifests (``subject``).

    ``tag`` is the cosign tag it is pushed under on the site (sha256-<hex of subject>.sig/.att/.sbom), or None
    for a referrer the site finds through the referrers API or the OCI fallback tag index; how it was found
    upstream and its artifact type are informative."""

    digest: str
    media_type: str
    size: int
    subject: str
    kind: str                   # signature | attestation | sbom | artifact
    tag: Optional[str] = None
    artifact_type: Json = None  # informative: artifactType, else the config's media type
    found: Json = None          # informative: tag | referrers-api | fallback-tag | index
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    INFORMATIVE = ("artifact_type", "found")

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "Referrer":
        size = _blob_fields(obj, where)
        if not DIGEST_RE.fullmatch(_want(obj, "subject", str, where)):
            raise where.key("subject").error("is not sha256:<64 hex>")
        kind = _want(obj, "kind", str, where)
        if kind not in REFERRER_KINDS:
            raise where.key("kind").error("is not one of %s" % ", ".join(REFERRER_KINDS))
        tag = obj.get("tag")
        if tag is not None:
            # The tag is pushed to the site: it must be cosign's own name for this very subject.
            if not isinstance(tag, str) or not REFERRER_TAG_RE.fullmatch(tag) \
                    or not tag.startswith(fallback_tag(obj["subject"]) + "."):
                raise where.key("tag").error("is not sha256-<hex of its subject>.sig, .att or .sbom")
        return cls(obj["digest"], _want(obj, "media_type", str, where), size, obj["subject"], kind, tag,
                   obj.get("artifact_type"), obj.get("found"), _absent(obj, ("tag",) + cls.INFORMATIVE))

    def to_dict(self) -> Dict[str, Json]:
        return _without({"digest": self.digest, "media_type": self.media_type, "size": self.size,
                         "subject": self.subject, "kind": self.kind, "tag": self.tag,
                         "artifact_type": self.artifact_type, "found": self.found}, self.absent)


@dataclass(frozen=True)
class SkippedLayer:
    """A foreign (non-distributable) layer the bundle does not carry (foreign-layers: skip): its descriptor stays
    in the manifest, whose digest is unchanged; the site fetches it from its URLs, as Windows hosts do."""

    digest: str
    size: int
    media_type: str
    urls: Json = None           # informative: where the layer's publisher serves it

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "SkippedLayer":
        size = _blob_fields(obj, where)
        media_type = _want(obj, "media_type", str, where)
        if media_type not in NONDISTRIBUTABLE_TYPES:
            raise where.key("media_type").error("is not a foreign (non-distributable) layer type; only those may "
                                                "be left out")
        return cls(obj["digest"], size, media_type, obj.get("urls"))

    def to_dict(self) -> Dict[str, Json]:
        return {"digest": self.digest, "size": self.size, "media_type": self.media_type, "urls": self.urls}


@dataclass(frozen=True)
class UpstreamSignature:
    """A cosign key-based signature checked at build time (the image entry's ``signed-by``): the key that
    verified it, the manifest digest its payload names, and the carried signature manifest that holds it.
    ``public_key`` (PEM) lets ``verify`` check it again offline."""

    key: str                    # the key's fingerprint, SHA256:<hex of its DER>
    algorithm: str              # ed25519 | ecdsa-p256
    public_key: str             # PEM SubjectPublicKeyInfo
    digest: str                 # the manifest digest the signature covers (what the reference resolved to)
    signature: Optional[str]    # the signature manifest, one of the image's referrers; None when its subject
                                # is not kept (a platform subset of a signed index): checked at build time only
    key_file: Json = None       # informative: the file the manifest named
    identity: Json = None       # informative: the docker-reference the payload names
    payload: Optional[str] = None  # the signature manifest's layer (simple-signing payload) that verified:
                                   # verify and install check it again from the archive

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "UpstreamSignature":
        _object(obj, where)
        if not DIGEST_RE.fullmatch(_want(obj, "digest", str, where)):
            raise where.key("digest").error("is not sha256:<64 hex>")
        signature = obj.get("signature")
        if signature is not None and not (isinstance(signature, str) and DIGEST_RE.fullmatch(signature)):
            raise where.key("signature").error("is neither null nor sha256:<64 hex>")
        payload = obj.get("payload")
        if (signature is None) != (payload is None) or (
                payload is not None and not (isinstance(payload, str) and DIGEST_RE.fullmatch(payload))):
            raise where.key("payload").error("must be the sha256:<64 hex> of the payload that verified when the "
                                             "signature is carried, and null otherwise")
        if not re.fullmatch(r"SHA256:[0-9a-f]{64}", _want(obj, "key", str, where)):
            raise where.key("key").error("is not SHA256:<64 hex>")
        algorithm = _want(obj, "algorithm", str, where)
        if algorithm not in ("ed25519", "ecdsa-p256"):
            raise where.key("algorithm").error("is neither ed25519 nor ecdsa-p256")
        public_key = _want(obj, "public_key", str, where)
        if len(public_key) > 4096 or "-----BEGIN PUBLIC KEY-----" not in public_key:
            raise where.key("public_key").error("is not a PEM public key")
        return cls(obj["key"], algorithm, public_key, obj["digest"], signature, obj.get("key_file"),
                   obj.get("identity"), payload)

    def to_dict(self) -> Dict[str, Json]:
        return {"key": self.key, "algorithm": self.algorithm, "public_key": self.public_key, "digest": self.digest,
                "signature": self.signature, "payload": self.payload, "key_file": self.key_file,
                "identity": self.identity}


@dataclass(frozen=True)
class Image:
    """One entry of images: what images/index.json points at for ``ref``, and the manifests kept."""

    ref: str                    # normalised: docker.io/prom/prometheus:v3.5.0
    digest: str
    media_type: str
    size: int
    manifests: Tuple[PlatformManifest, ...]
    derived: bool               # a derived index over the chosen platforms (FORMAT.md)
    source: str                 # registry | docker-daemon
    # informative: the reference's parts, the upstream index, the platforms asked for ("all" or a list)
    # and the host/repository actually contacted
    repository: Json = None
    tag: Json = None
    index_digest: Json = None
    platforms: Json = "all"
    fetched_from: Json = None
    # what travels beside the graph: supply-chain referrers of its kept manifests, the cosign signatures checked
    # at build time, and the foreign layers left out (each list absent from the document when the build made none)
    referrers: Tuple[Referrer, ...] = ()
    signatures: Tuple[UpstreamSignature, ...] = ()
    skipped_layers: Tuple[SkippedLayer, ...] = ()
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    INFORMATIVE = ("repository", "tag", "index_digest", "platforms", "fetched_from")
    LISTS = ("referrers", "signatures", "skipped_layers")

    @property
    def kept_digests(self) -> FrozenSet[str]:
        """The manifests of the image's own graph: what a referrer or a signature may refer to."""
        return frozenset([self.digest] + [m.digest for m in self.manifests])

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "Image":
        _object(obj, where)
        ref = _want(obj, "ref", str, where)
        try:
            normal = str(parse_ref(ref))
        except InvalidInput as exc:
            raise where.key("ref").error("%r is not an image reference" % ref) from exc
        if normal != ref:
            raise where.key("ref").error("%r is not in normalised form" % ref)
        if not DIGEST_RE.fullmatch(_want(obj, "digest", str, where)):
            raise where.key("digest").error("is not sha256:<64 hex>")
        media_type = _want(obj, "media_type", str, where)
        size = _want(obj, "size", int, where)
        if size < 0:
            raise where.key("size").error("is negative")
        derived = _want(obj, "derived", bool, where)
        source = _want(obj, "source", str, where)
        if source not in IMAGE_SOURCES:
            raise where.key("source").error("is neither registry nor docker-daemon")
        manifests = tuple(PlatformManifest.from_dict(m, where.key("manifests").item(j))
                          for j, m in enumerate(_list(obj, "manifests", where)))
        kept = frozenset([obj["digest"]] + [m.digest for m in manifests])
        referrers = tuple(Referrer.from_dict(r, where.key("referrers").item(j))
                          for j, r in enumerate(_list(obj, "referrers", where) if "referrers" in obj else []))
        for j, r in enumerate(referrers):
            if r.subject not in kept:
                raise where.key("referrers").item(j).key("subject").error("is not a manifest this image keeps")
        _unique([r.digest for r in referrers], where.key("referrers"))
        signatures = tuple(UpstreamSignature.from_dict(g, where.key("signatures").item(j))
                           for j, g in enumerate(_list(obj, "signatures", where) if "signatures" in obj else []))
        carried = {r.digest for r in referrers if r.kind == "signature"}
        for j, g in enumerate(signatures):
            if g.signature is not None and g.signature not in carried:
                raise where.key("signatures").item(j).key("signature").error("is not a signature this image carries")
        skipped = tuple(SkippedLayer.from_dict(s, where.key("skipped_layers").item(j)) for j, s in
                        enumerate(_list(obj, "skipped_layers", where) if "skipped_layers" in obj else []))
        return cls(ref, obj["digest"], media_type, size, manifests, derived, source,
                   obj.get("repository"), obj.get("tag"), obj.get("index_digest"), obj.get("platforms", "all"),
                   obj.get("fetched_from"), referrers, signatures, skipped,
                   _absent(obj, cls.INFORMATIVE + cls.LISTS))

    def to_dict(self) -> Dict[str, Json]:
        return _without({
            "ref": self.ref, "repository": self.repository, "tag": self.tag,
            "digest": self.digest, "media_type": self.media_type, "size": self.size,
            "index_digest": self.index_digest, "platforms": self.platforms,
            "manifests": [m.to_dict() for m in self.manifests],
            "derived": self.derived, "source": self.source, "fetched_from": self.fetched_from,
            "referrers": [r.to_dict() for r in self.referrers],
            "signatures": [g.to_dict() for g in self.signatures],
            "skipped_layers": [s.to_dict() for s in self.skipped_layers],
        }, self.absent)


@dataclass(frozen=True)
class ChartOci:
    """The chart's Helm OCI artifact (its manifest), which the installer pushes to the site."""

    digest: str
    media_type: str
    size: int

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "ChartOci":
        if not DIGEST_RE.fullmatch(_want(obj, "digest", str, where)):
            raise where.key("digest").error("is not sha256:<64 hex>")
        return cls(obj["digest"], _want(obj, "media_type", str, where), _want(obj, "size", int, where))

    def to_dict(self) -> Dict[str, Json]:
        return {"digest": self.digest, "media_type": self.media_type, "size": self.size}


@dataclass(frozen=True)
class ChartImage:
    """Where a chart takes one image: a dotted path into its values, and how the value is shaped."""

    values: str
    ref: str
    style: str = "repository-tag"   # repository-tag | registry-repository-tag | image
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "ChartImage":
        _object(obj, where)
        if not VALUES_PATH_RE.fullmatch(_want(obj, "values", str, where)):
            raise where.key("values").error("is not a dotted path")
        ref = _want(obj, "ref", str, where)
        style = obj.get("style", "repository-tag")
        if style not in CHART_IMAGE_STYLES:
            raise where.key("style").error("is not repository-tag, registry-repository-tag or image")
        return cls(obj["values"], ref, style, _absent(obj, ("style",)))

    def to_dict(self) -> Dict[str, Json]:
        return _without({"values": self.values, "ref": self.ref, "style": self.style}, self.absent)


@dataclass(frozen=True)
class Chart:
    """One entry of charts: its archive, its OCI artifact, its base values and its image value paths."""

    name: str
    version: str
    path: str                   # charts/<name>-<version>.tgz
    sha256: str                 # of the archive
    oci: ChartOci
    images: Tuple[ChartImage, ...]
    values: Optional[str] = None    # charts/<name>-<version>.values.json, or None
    # informative: repo | oci | path, where it came from, what was contacted, its size, the index's digest
    source: Json = None
    origin: Json = None
    fetched_from: Json = None
    size: Json = None
    index_digest: Json = None
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    INFORMATIVE = ("source", "origin", "fetched_from", "size", "index_digest")

    @classmethod
    def from_dict(cls, obj: Json, where: Where, sizes: Mapping[str, int]) -> "Chart":
        _object(obj, where)
        name = _want(obj, "name", str, where)
        if not CHART_NAME_RE.fullmatch(name):
            raise where.key("name").error("%r is not a chart name" % name)
        version = _want(obj, "version", str, where)
        if not is_semver(version):
            raise where.key("version").error("%r is not SemVer" % version)
        if _want(obj, "path", str, where) != chart_path(name, version):
            raise where.key("path").error("is not charts/<name>-<version>.tgz")
        _check_listed(obj["path"], where.key("path"), sizes)
        if not HEX64_RE.fullmatch(_want(obj, "sha256", str, where)):
            raise where.key("sha256").error("is not 64 hex digits")
        oci = ChartOci.from_dict(_want(obj, "oci", dict, where), where.key("oci"))
        values = obj.get("values")
        if values is not None and values != chart_values_path(name, version):
            raise where.key("values").error("is not charts/<name>-<version>.values.json")
        if values is not None:
            _check_listed(values, where.key("values"), sizes)
        images = tuple(ChartImage.from_dict(image, where.key("images").item(j))
                       for j, image in enumerate(_list(obj, "images", where)))
        return cls(name, version, obj["path"], obj["sha256"], oci, images, values,
                   obj.get("source"), obj.get("origin"), obj.get("fetched_from"), obj.get("size"),
                   obj.get("index_digest"), _absent(obj, ("values",) + cls.INFORMATIVE))

    def to_dict(self) -> Dict[str, Json]:
        return _without({
            "name": self.name, "version": self.version, "source": self.source, "origin": self.origin,
            "fetched_from": self.fetched_from, "path": self.path, "sha256": self.sha256, "size": self.size,
            "index_digest": self.index_digest, "oci": self.oci.to_dict(), "values": self.values,
            "images": [i.to_dict() for i in self.images],
        }, self.absent)


@dataclass(frozen=True)
class BundleHead:
    """bundle.json: the authenticated description of one bundle version.

    It is read only after its bytes matched their signed SHA256SUMS line (installer/trust/verify.py)."""

    name: str
    version: str
    created: str                # RFC 3339 UTC, the build time
    tool: Tool
    members: Tuple[Member, ...]  # unique, in C order of their paths
    total_size: int             # the sum of the members' sizes
    files: Tuple[BundleFile, ...]
    tenants: Tuple[Tenant, ...]  # by component
    images: Tuple[Image, ...]   # unique refs
    charts: Tuple[Chart, ...]   # unique names
    # informative: the --mirror rules used ({source, mirror, refs}) and the lock file's status ({status[, sha256]})
    mirrors: Json = field(default_factory=list)
    lock: Json = None
    # the signed deploy section: what the site's outputs are made of (installer/format/deployspec.py);
    # None when the bundle declares none (then it is absent from the document)
    deploy: Optional[DeploySpec] = None
    # the SBOMs (issue 14): {made, tool, formats, images: [{ref, digest, platform, made, packages, files}],
    # content: {files, entries}} (made: false with its reason after --no-sbom); None (absent) for a bundle from
    # before SBOMs
    sboms: Json = None
    absent: FrozenSet[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_dict(cls, obj: Json, where: Where = BUNDLE_JSON) -> "BundleHead":
        if not isinstance(obj, dict):
            raise where.error("not a JSON object")
        fmt = obj.get("format")
        if type(fmt) is not int or fmt != FORMAT:
            raise InvalidInput("the bundle has format %r; this installer reads format %d only" % (fmt, FORMAT))
        name = _want(obj, "name", str, where)
        if not NAME_RE.fullmatch(name):
            raise where.key("name").error("%r is not a valid bundle name" % name)
        version = _want(obj, "version", str, where)
        if not is_semver(version):
            raise where.key("version").error("%r is not SemVer" % version)
        created = _want(obj, "created", str, where)
        if not valid_time(created):
            raise where.key("created").error("%r is not an RFC 3339 UTC time" % created)
        tool = Tool.from_dict(_want(obj, "tool", dict, where), where.key("tool"))
        members = tuple(Member.from_dict(m, where.key("members").item(i))
                        for i, m in enumerate(_list(obj, "members", where)))
        paths = [m.path for m in members]
        if paths != c_sorted(set(paths)):
            raise where.key("members").error("are not unique and sorted by path")
        if _want(obj, "total_size", int, where) != sum(m.size for m in members):
            raise where.key("total_size").error("is not the sum of the member sizes")
        for key in ("images", "charts", "files"):
            _list(obj, key, where)
        sizes = {m.path: m.size for m in members}
        executable = frozenset(m.path for m in members if m.executable)
        tenants = tuple(Tenant.from_dict(c, t, where.key("tenants"), sizes)
                        for c, t in sorted(_want(obj, "tenants", dict, where).items()))
        files = tuple(BundleFile.from_dict(f, where.key("files").item(i), sizes, executable)
                      for i, f in enumerate(obj["files"]))
        images = tuple(Image.from_dict(image, where.key("images").item(i)) for i, image in enumerate(obj["images"]))
        _unique([i.ref for i in images], where.key("images"))
        charts = tuple(Chart.from_dict(chart, where.key("charts").item(i), sizes)
                       for i, chart in enumerate(obj["charts"]))
        _unique([c.name for c in charts], where.key("charts"))
        deploy = parse_deploy(obj)  # after tenants and files: its sources must name them
        sboms = _sboms(obj.get("sboms"), where.key("sboms"), sizes, images)
        return cls(name, version, created, tool, members, obj["total_size"], files, tenants, images, charts,
                   obj.get("mirrors", []), obj.get("lock"), deploy, sboms, _absent(obj, ("mirrors", "lock")))

    def to_dict(self) -> Dict[str, Json]:
        return _without({
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "tool": self.tool.to_dict(),
            "members": [m.to_dict() for m in self.members],
            "total_size": self.total_size,
            "files": [f.to_dict() for f in self.files],
            "tenants": {t.component: t.to_dict() for t in self.tenants},
            "images": [i.to_dict() for i in self.images],
            "charts": [c.to_dict() for c in self.charts],
            "mirrors": self.mirrors,
            "lock": self.lock,
            "deploy": self.deploy.to_dict() if self.deploy is not None else None,
            "sboms": self.sboms,
        }, self.absent | ({"deploy"} if self.deploy is None else set()) | ({"sboms"} if self.sboms is None else set()))

    # --- views the installer reads (derived once from the frozen fields) -------------------------------
    @cached_property
    def sizes(self) -> Dict[str, int]:
        """path -> signed size, in member order."""
        return {m.path: m.size for m in self.members}

    @cached_property
    def executable(self) -> FrozenSet[str]:
        """The paths of executable members."""
        return frozenset(m.path for m in self.members if m.executable)


SBOM_ORIGINS = ("syft", "upstream")


def _sboms(obj: Json, where: Where, sizes: Dict[str, int], images: Tuple["Image", ...] = ()) -> Json:
    """bundle.json's `sboms`: checked as far as the installer relies on it (every SBOM file it names is a member
    of the bundle, under sbom/; an upstream SBOM names a manifest its image carries and blobs of the bundle); the
    rest is what the build says, shown to people escaped."""
    if obj is None:
        return None
    carried = {image.ref: frozenset(r.digest for r in image.referrers) | image.kept_digests for image in images}
    if not isinstance(obj, dict) or not isinstance(obj.get("made"), bool):
        raise where.error("is not {made, ...}")
    images = obj.get("images", [])
    if not isinstance(images, list):
        raise where.key("images").error("is not a list")
    for i, entry in enumerate(images):
        at = where.key("images").item(i)
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise at.error("is not {ref, digest, ...}")
        _sbom_files(entry.get("files", []), at.key("files"), sizes)
        origin = entry.get("origin", "syft")  # absent in the first SBOM bundles: syft's
        if origin not in SBOM_ORIGINS:
            raise at.key("origin").error("is not one of %s" % ", ".join(SBOM_ORIGINS))
        if origin == "upstream":
            _upstream_sbom(entry, at, sizes, carried)
    content = obj.get("content")
    if content is not None:
        at = where.key("content")
        if not isinstance(content, dict) or "files" not in content:
            raise at.error("is not {files, entries}")
        _sbom_files(content["files"], at.key("files"), sizes)
        entries = content.get("entries")
        if type(entries) is not int or entries < 0:
            raise at.key("entries").error("is not a count")
    return obj


def _upstream_sbom(entry: Dict[str, Json], where: Where, sizes: Dict[str, int],
                   carried: Dict[str, FrozenSet[str]]) -> None:
    """An SBOM that came with an image: ``referrer``, a manifest that image carries (a referrer or a kept
    manifest), and ``documents``, each naming a blob of the bundle (images/blobs/sha256/<hex>)."""
    referrer = entry.get("referrer")
    if not isinstance(referrer, str) or referrer not in carried.get(str(entry.get("ref")), frozenset()):
        raise where.key("referrer").error("is not a manifest the image %r carries" % (entry.get("ref"),))
    documents = entry.get("documents")
    if not isinstance(documents, list) or not documents:
        raise where.key("documents").error("is not a list of the blobs holding the SBOM")
    for j, document in enumerate(documents):
        path = document.get("path") if isinstance(document, dict) else None
        if not isinstance(path, str) or not path.startswith(BLOB_PREFIX) \
                or not HEX64_RE.fullmatch(path[len(BLOB_PREFIX):]) or path not in sizes:
            raise where.key("documents").item(j).key("path").error(
                "names %r, which is not a blob of the bundle" % (path,))


def _sbom_files(files: Json, where: Where, sizes: Dict[str, int]) -> None:
    """A list of SBOM files: each a member of the bundle under sbom/."""
    if not isinstance(files, list):
        raise where.error("is not a list")
    for path in files:
        if not isinstance(path, str) or not path.startswith("sbom/") or path not in sizes:
            raise where.error("names %r, which is not an SBOM member of the bundle" % (path,))


def _unique(keys: List[str], where: Where) -> None:
    seen = set()
    for key in keys:
        if key in seen:
            raise where.error("lists %s twice" % key)
        seen.add(key)


# --- DELTA.json --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeltaBase:
    """A version a delta was made against (from a kit's inventory or an old bundle)."""

    name: str
    version: str
    bundle_id: str

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "DeltaBase":
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not NAME_RE.fullmatch(obj["name"]) \
                or not is_semver(obj.get("version")) or not isinstance(obj.get("bundle_id"), str):
            raise where.error("is not {name, version, bundle_id}")
        return cls(obj["name"], obj["version"], obj["bundle_id"])

    def to_dict(self) -> Dict[str, Json]:
        return {"name": self.name, "version": self.version, "bundle_id": self.bundle_id}


@dataclass(frozen=True)
class DeltaDoc:
    """DELTA.json: the bases, and the members this archive omits because the bases hold them."""

    base: Tuple[DeltaBase, ...]
    omitted: Tuple[str, ...]    # member paths, C order
    omitted_bytes: int

    KEYS = frozenset({"base", "omitted", "omitted_bytes"})

    @classmethod
    def of(cls, base: Iterable[DeltaBase], omitted: Mapping[str, int]) -> "DeltaDoc":
        """The document for ``omitted`` (path -> size)."""
        return cls(tuple(base), tuple(c_sorted(omitted)), sum(omitted.values()))

    @classmethod
    def from_dict(cls, obj: Json, where: Where = DELTA_JSON) -> "DeltaDoc":
        if not isinstance(obj, dict) or set(obj) != cls.KEYS:
            raise where.error("must hold exactly base, omitted and omitted_bytes")
        if not isinstance(obj["base"], list) or not isinstance(obj["omitted"], list):
            raise where.error("base and omitted must be lists")
        base = tuple(DeltaBase.from_dict(b, where.key("base").item(i)) for i, b in enumerate(obj["base"]))
        for i, path in enumerate(obj["omitted"]):
            if not isinstance(path, str) or path_problem(path):
                raise where.key("omitted").item(i).error("is not a valid member path")
        if not isinstance(obj["omitted_bytes"], int) or isinstance(obj["omitted_bytes"], bool):
            raise where.key("omitted_bytes").error("is not an integer")
        return cls(base, tuple(obj["omitted"]), obj["omitted_bytes"])

    def to_dict(self) -> Dict[str, Json]:
        return {"base": [b.to_dict() for b in self.base], "omitted": list(self.omitted),
                "omitted_bytes": self.omitted_bytes}


# --- receipts (KIT/.state/receipts/*.json) -------------------------------------------------------------------

class Phase(IntEnum):
    """The install phases, by the numbers receipts record. A failure in 1-4 leaves `current` unchanged;
    rollback is 5 and 6 only."""

    VERIFY_AND_STAGE = 1
    PROMOTE = 2
    PUSH_AND_LOAD = 3
    RENDER = 4
    SWITCH_CURRENT = 5
    TAGS_AND_APPLY = 6

    @property
    def label(self) -> str:
        """The name a receipt records beside the number: verify-and-stage, promote, ..."""
        return self.name.lower().replace("_", "-")


class Status:
    """What a phase did."""

    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class Outcome:
    """How an install or rollback ended (``running`` until it does)."""

    RUNNING = "running"
    INSTALLED = "installed"
    ALREADY_INSTALLED = "already-installed"
    FAILED = "failed"
    DEPLOY_INCOMPLETE = "deploy-incomplete"
    ROLLED_BACK = "rolled-back"
    ROLLED_BACK_INCOMPLETE = "rolled-back-incomplete"


RECEIPT_FORMAT = 1


def receipt_file(path: str, folder: str) -> Where:
    """The root of one receipt file: a damaged receipt is exit 9, naming the file and the choices left."""
    def broken(where: str, why: str) -> BundleError:
        what = "is damaged: %s %s" % (where, why) if where else why
        return LocalEnvironmentError("the receipt %s %s; the kit's history cannot be trusted: restore it from a "
                                     "backup, or move it out of %s if you accept losing what it records"
                                     % (path, what, folder))
    return Where(broken)


@dataclass(frozen=True)
class PhaseRecord:
    phase: int                  # a Phase; other numbers are kept as read
    status: str                 # a Status; other strings are kept as read
    detail: Json = ""
    at: Json = None             # UTC time
    name: Json = None           # Phase(phase).label when written

    @classmethod
    def new(cls, phase: Phase, status: str, detail: str, at: str) -> "PhaseRecord":
        return cls(int(phase), status, detail, at, phase.label)

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "PhaseRecord":
        _object(obj, where)
        if type(obj.get("phase")) is not int:
            raise where.key("phase").error("is not a whole number")
        if not isinstance(obj.get("status"), str):
            raise where.key("status").error("is not a string")
        return cls(obj["phase"], obj["status"], obj.get("detail"), obj.get("at"), obj.get("name"))

    def to_dict(self) -> Dict[str, Json]:
        return {"phase": self.phase, "name": self.name, "status": self.status, "detail": self.detail, "at": self.at}

    def done(self, phase: Phase) -> bool:
        return self.phase == phase and self.status == Status.DONE


@dataclass(frozen=True)
class SiteOptions:
    """What rollback needs to reach a site registry again (never credentials: they come from the environment)."""

    insecure: Tuple[str, ...] = ()
    registry_ca: Optional[str] = None
    strip_source_host: bool = False

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "SiteOptions":
        if not (isinstance(obj, dict) and isinstance(obj.get("insecure", []), list)
                and all(isinstance(h, str) for h in obj.get("insecure", []))
                and isinstance(obj.get("registry_ca") or "", str)
                and isinstance(obj.get("strip_source_host", False), bool)):
            raise where.error("holds unreadable options for that site")
        return cls(tuple(obj.get("insecure", [])), obj.get("registry_ca") or None, obj.get("strip_source_host", False))

    def to_dict(self) -> Dict[str, Json]:
        return {"insecure": list(self.insecure), "registry_ca": self.registry_ca,
                "strip_source_host": self.strip_source_host}


@dataclass(frozen=True)
class ReceiptRecord:
    """One install or rollback attempt. ``name``, ``version``, ``phases`` and ``site_options`` are checked (the
    kit's downgrade floor and rollback depend on them); the rest is what happened, for people to read."""

    archive: Json               # the archive's file name, or "rollback"
    started: Json
    finished: Json = None
    name: Optional[str] = None
    version: Optional[str] = None
    bundle_id: Json = None
    signer: Json = None
    previous: Json = None       # the version current before
    downgrade_reason: Json = None
    phases: Tuple[PhaseRecord, ...] = ()
    outcome: Json = Outcome.RUNNING
    error: Json = None          # the BundleError's to_json()
    # written only when they happened
    action: Json = None         # "rollback"
    sites: Json = None          # site registry -> what phase 3 pushed there
    site_options: Mapping[str, SiteOptions] = field(default_factory=dict)
    docker: Json = None         # what phase 3 loaded into Docker
    deploy_outputs: Json = None  # what phase 4 rendered
    secrets_access: Json = None  # who --secrets-group/--secrets-owner let read the site's secrets

    OPTIONAL = ("action", "sites", "docker", "deploy_outputs", "secrets_access")

    @classmethod
    def from_dict(cls, obj: Json, where: Where) -> "ReceiptRecord":
        if not isinstance(obj, dict) or obj.get("receipt") != RECEIPT_FORMAT:
            raise where.error("is not a receipt")
        name, version = obj.get("name"), obj.get("version")
        if name is not None and not (isinstance(name, str) and NAME_RE.fullmatch(name)):
            raise where.key("name").error("is not a bundle name")
        if version is not None and not is_semver(version):
            raise where.key("version").error("is not SemVer")
        if not isinstance(obj.get("phases"), list):
            raise where.key("phases").error("is not a list")
        phases = tuple(PhaseRecord.from_dict(p, where.key("phases").item(i)) for i, p in enumerate(obj["phases"]))
        options = obj.get("site_options") or {}
        if not isinstance(options, dict):
            raise where.key("site_options").error("is not an object")
        site_options = {site: SiteOptions.from_dict(o, where.key("site_options").key(site))
                        for site, o in options.items()}
        return cls(obj.get("archive"), obj.get("started"), obj.get("finished"), name, version, obj.get("bundle_id"),
                   obj.get("signer"), obj.get("previous"), obj.get("downgrade_reason"), phases, obj.get("outcome"),
                   obj.get("error"), obj.get("action"), obj.get("sites"), site_options, obj.get("docker"),
                   obj.get("deploy_outputs"), obj.get("secrets_access"))

    def to_dict(self) -> Dict[str, Json]:
        doc: Dict[str, Json] = {
            "receipt": RECEIPT_FORMAT, "archive": self.archive, "started": self.started, "finished": self.finished,
            "name": self.name, "version": self.version, "bundle_id": self.bundle_id, "signer": self.signer,
            "previous": self.previous, "downgrade_reason": self.downgrade_reason,
            "phases": [p.to_dict() for p in self.phases], "outcome": self.outcome, "error": self.error}
        doc.update((k, getattr(self, k)) for k in self.OPTIONAL if getattr(self, k) is not None)
        if self.site_options:
            doc["site_options"] = {site: o.to_dict() for site, o in self.site_options.items()}
        return doc

    def done(self, phase: Phase) -> bool:
        """True when this attempt recorded ``phase`` as done."""
        return any(p.done(phase) for p in self.phases)

    def with_phase(self, record: PhaseRecord) -> "ReceiptRecord":
        return replace(self, phases=self.phases + (record,))
