"""Find the supply-chain artifacts that refer to an image's kept manifests (docs/FORMAT.md "Referrers").

For each kept manifest digest D (the image's top and every per-platform manifest kept):

- cosign's tags ``sha256-<hex of D>.sig`` / ``.att`` / ``.sbom``: one GET each (404: none);
- OCI 1.1 referrers: the registry's referrers API (``GET /v2/<repo>/referrers/D``) when it has one, else the
  referrers tag schema's index tagged ``sha256-<hex of D>``. Every manifest such a list names is fetched by digest
  and must itself name D as its ``subject``: a list is only a hint, never trusted for what it claims;
- buildx attestation manifests of a single chosen platform (images.Shape.attestations): they carry no subject,
  the index said whose they are (``vnd.docker.reference.digest``).

A referrer is one image manifest (not an index) with distributable layers; it is kept byte-exact with its config
and layers. Hostile or runaway answers are bounded: at most MAX_REFERRERS per image and MAX_REFERRER_BYTES per
referrer; what is left out is said in a build warning, never silently.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

from installer.errors import InvalidInput, RegistryError
from installer.format.model import FOUND_BY, Referrer, fallback_tag, referrer_tag
from installer.format.oci import (DSSE_ENVELOPE, IN_TOTO, INDEX_TYPES, MANIFEST_TYPES, MAX_MANIFEST_BYTES, OCI_INDEX,
                                  Descriptor, OciDocument, parse_document)
from installer.site.registry import Registry
from installer.trust.cosign import COSIGN_SIG_ARTIFACT

MAX_REFERRERS = 256                       # per image, over all its kept manifests
MAX_REFERRER_BYTES = 256 * 1024 * 1024    # one referrer's manifest, config and layers together
MAX_LISTED = 1024                         # descriptors read from one referrers list
LOOKUPS = 4                               # lookups in flight at once (as many as the blob pool)
TAG_KINDS = (("sig", "signature"), ("att", "attestation"), ("sbom", "sbom"))


def referrer_kind(artifact_type: str, layer_types: Sequence[str]) -> str:
    """signature | attestation | sbom | artifact, from the artifact type (else the config's media type) and the
    layers' media types."""
    text = " ".join([artifact_type] + list(layer_types)).lower()
    if artifact_type in (COSIGN_SIG_ARTIFACT,) or "notary.signature" in text or "cosign.simplesigning" in text:
        return "signature"
    if any(word in text for word in ("spdx", "cyclonedx", "sbom", "syft")):
        return "sbom"
    if IN_TOTO in text or DSSE_ENVELOPE in text or "in-toto" in text or "sigstore.bundle" in text \
            or "attestation" in text or "provenance" in text:
        return "attestation"
    return "artifact"


@dataclass
class Found:
    """One referrer to carry: its bundle.json entry and every blob it needs (digest -> size), manifest included."""

    referrer: Referrer
    blobs: Dict[str, int] = field(default_factory=dict)
    data: bytes = b""                     # the manifest as served (signedby.py reads signatures from it)


class ReferrerFinder:
    """Looks for referrers of one image's manifests in ``repo`` of ``reg``; manifests go into ``cache``."""

    def __init__(self, reg: Registry, repo: str, cache: "ManifestCache", where: str) -> None:
        self.reg = reg
        self.repo = repo
        self.cache = cache
        self.where = where
        self.notes: List[str] = []
        self._found: Dict[str, Found] = {}

    def find(self, subjects: Sequence[str], attestations: Sequence[Descriptor] = ()) -> List[Found]:
        # The questions (cosign's three tags and the referrers list, per subject) go out together: most answers
        # are 404s, and a warm rebuild asks them all again. The answers are then taken in a fixed order.
        # One tags list first, where the registry gives it: then only the tags that exist are read (a warm rebuild
        # asks one question per repository, not four per manifest).
        listed = self.reg.tags(self.repo) if subjects else None
        tags = set(listed or ())
        questions: List[Tuple[str, str, str]] = []
        for subject in subjects:
            questions += [(subject, referrer_tag(subject, suffix), kind) for suffix, kind in TAG_KINDS
                          if listed is None or referrer_tag(subject, suffix) in tags]
            fallback = listed is None or fallback_tag(subject) in tags
            if fallback or self.reg.has_referrers_api is not False:
                questions.append((subject, "yes" if fallback else "", "listed"))
        with ThreadPoolExecutor(max_workers=LOOKUPS) as pool:
            answers = list(pool.map(self._ask, questions))
        for (subject, tag, kind), answer in zip(questions, answers):
            if answer is None:
                continue
            if kind == "listed":
                self._take_listing(subject, *answer)
            else:
                data, media_type, digest = answer
                self.cache.put_manifest(digest, data, media_type)
                self._add(Descriptor(media_type, digest, len(data)), subject, tag, "tag", kind, data)
        for att in attestations:
            of = att.attestation_of
            if of is not None:
                self._add(att, of, None, "index", "attestation")
        return list(self._found.values())

    def pinned(self, pins: Sequence[Referrer]) -> Tuple[List[Found], List[Tuple[str, str]]]:
        """The referrers a lock file pins, fetched by digest (no looking: the build is what was locked); (found,
        [(digest, why) for each that cannot be carried as pinned])."""
        found, missing = [], []
        for pin in pins:
            try:
                data, media_type, _d = self.cache.manifest(self.reg, self.repo, pin.digest,
                                                            Descriptor(pin.media_type, pin.digest, pin.size))
            except RegistryError as exc:
                missing.append((pin.digest, "cannot be fetched (%s)" % exc.message))
                continue
            if len(data) != pin.size or media_type in INDEX_TYPES:
                missing.append((pin.digest, "is not the manifest the lock describes"))
                continue
            blobs, problem = _blobs(pin.digest, len(data), parse_document(data, media_type, "%s: the referrer %s"
                                                                              % (self.where, pin.digest)))
            if problem:
                missing.append((pin.digest, "cannot be carried: %s" % problem))
                continue
            found.append(Found(pin, blobs, data))
        return found, missing

    # --- the three ways a referrer is found -------------------------------------------------------------------
    def _ask(self, question: Tuple[str, str, str]) -> Optional[Tuple[bytes, str, str]]:
        """One lookup: a cosign tag (bytes, media type, digest), or a subject's referrers list (bytes, media type,
        how it was found; ``tag`` "" when the tags list shows no fallback tag); None when there is none."""
        subject, tag, kind = question
        if kind != "listed":
            return self.reg.find_manifest(self.repo, tag)
        listing = self.reg.referrers(self.repo, subject)
        if listing is not None:
            return listing, OCI_INDEX, "referrers-api"
        if not tag:  # the tags list says there is no fallback tag
            return None
        got = self.reg.find_manifest(self.repo, fallback_tag(subject))
        return None if got is None else (got[0], got[1], "fallback-tag")

    def _take_listing(self, subject: str, listing: bytes, media_type: str, found_by: str) -> None:
        if media_type != OCI_INDEX:
            self.notes.append("%s: the tag %s is not an OCI index; not read as a referrers list"
                              % (self.where, fallback_tag(subject)))
            return
        doc = parse_document(listing, OCI_INDEX, "%s: the referrers of %s" % (self.where, subject))
        for desc in doc.children[:MAX_LISTED]:
            if desc.media_type not in MANIFEST_TYPES or desc.size > MAX_MANIFEST_BYTES:
                continue
            self._add(desc, subject, None, found_by, "")

    # --- one candidate ----------------------------------------------------------------------------------------
    def _add(self, desc: Descriptor, subject: str, tag: Optional[str], found_by: str, kind: str,
             data: Optional[bytes] = None) -> None:
        assert found_by in FOUND_BY
        if desc.digest in self._found or desc.digest == subject:
            return
        if len(self._found) >= MAX_REFERRERS:
            self._skip(desc.digest, "more than %d referrers for one image" % MAX_REFERRERS)
            return
        if data is None:
            data, media_type, _digest = self.cache.manifest(self.reg, self.repo, desc.digest, desc)
        else:
            media_type = desc.media_type
        what = "%s: the referrer %s" % (self.where, desc.digest)
        if media_type in INDEX_TYPES:
            self._skip(desc.digest, "it is an index, not a manifest")
            return
        try:
            doc = parse_document(data, media_type, what)
        except InvalidInput as exc:
            self._skip(desc.digest, str(exc))
            return
        if found_by in ("referrers-api", "fallback-tag") and (doc.subject is None or doc.subject.digest != subject):
            # A listing is a hint: only a manifest that itself names the subject refers to it.
            self._skip(desc.digest, "it does not name %s as its subject" % subject)
            return
        blobs, problem = _blobs(desc.digest, len(data), doc)
        if problem:
            self._skip(desc.digest, problem)
            return
        kind = kind or referrer_kind(doc.kind_type, [c.media_type for c in doc.children])
        entry = Referrer(desc.digest, media_type, len(data), subject, kind, tag, doc.kind_type or None, found_by,
                         absent=frozenset(k for k, v in (("tag", tag), ("artifact_type", doc.kind_type)) if not v))
        self._found[desc.digest] = Found(entry, blobs, data)

    def _skip(self, digest: str, why: str) -> None:
        self.notes.append("%s: the referrer %s is not carried: %s" % (self.where, digest, why))


def _blobs(digest: str, size: int, doc: OciDocument) -> Tuple[Dict[str, int], str]:
    """The blobs one referrer manifest needs, or a reason it cannot be carried."""
    if doc.config is None:
        return {}, "it is an index, not a manifest"
    blobs = {digest: size, doc.config.digest: doc.config.size}
    for layer in doc.children:
        if layer.foreign:
            return {}, "it has a foreign (non-distributable) layer"
        blobs[layer.digest] = layer.size
    if sum(blobs.values()) > MAX_REFERRER_BYTES:
        return {}, "it is larger than %d MiB" % (MAX_REFERRER_BYTES >> 20)
    return blobs, ""


class ManifestCache(Protocol):
    """What the finder needs of the puller: fetch a manifest by digest through the blob cache, and keep one."""

    def manifest(self, reg: Registry, repo: str, reference: str, known: Optional[Descriptor] = None
                 ) -> Tuple[bytes, str, str]: ...

    def put_manifest(self, digest: str, data: bytes, media_type: str) -> None: ...
