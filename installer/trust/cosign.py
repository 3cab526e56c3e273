"""Cosign key-based image signatures, checked offline with the primitives of signing.py (docs/VERIFY.md).

cosign's signature of a manifest digest D is an image manifest tagged ``sha256-<hex of D>.sig`` (or, in OCI 1.1
mode, a referrer of D with artifactType ``application/vnd.dev.cosign.artifact.sig.v1+json``). Each of its layers
of type ``application/vnd.dev.cosign.simplesigning.v1+json`` is a "simple signing" payload::

    {"critical": {"identity": {"docker-reference": "ghcr.io/acme/app"},
                  "image": {"docker-manifest-digest": "sha256:<hex of D>"},
                  "type": "cosign container image signature"},
     "optional": {...}}

with the signature, base64, in the layer's ``dev.cosignproject.cosign/signature`` annotation: ECDSA P-256 keys
sign SHA-256 of the payload bytes (DER), Ed25519 keys the payload bytes themselves. What is signed is the payload;
the payload names the digest: both must hold. Keyless (Fulcio certificate) signatures are not checked here.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from installer.errors import ContentMismatch, TrustError
from installer.format.model import BundleHead
from installer.format.oci import COSIGN_SIGNATURE_LAYER, MAX_PAYLOAD_BYTES, parse_document
from installer.format.paths import blob_path
from installer.format.reference import DIGEST_RE
from installer.trust.signing import PublicKey, parse_public_key, verify

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING_TYPE = "cosign container image signature"
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
MAX_SIGNATURE_CHARS = 1024          # base64 of a DER ECDSA P-256 or an Ed25519 signature is under 100
MAX_LAYERS = 64                     # signatures in one .sig manifest (cosign appends one per signing)


@dataclass(frozen=True)
class CosignCheck:
    """One signature that verified: the layer holding it and the identity its payload names (informative)."""

    layer: str                          # the payload blob's digest
    identity: Optional[str]             # critical.identity.docker-reference


def read_payload(payload: bytes) -> Optional[Tuple[str, Optional[str]]]:
    """(the manifest digest, the docker-reference) a simple-signing payload names, or None when it is not one
    (not JSON, nested past the parser, another type, no strict digest)."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != SIMPLE_SIGNING_TYPE:
        return None
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        return None
    identity = critical.get("identity")
    ref = identity.get("docker-reference") if isinstance(identity, dict) else None
    return digest, ref[:512] if isinstance(ref, str) else None


def check_signature_manifest(key: PublicKey, manifest: bytes, media_type: str, digest: str,
                             read_blob: Callable[[str, int], bytes], where: str) -> Optional[CosignCheck]:
    """The first layer of the signature manifest ``manifest`` whose payload names ``digest`` and whose signature
    verifies with ``key``; None when no layer does. ``read_blob(digest, size)`` gives a layer's bytes (already
    checked against its digest by the caller); a layer larger than MAX_PAYLOAD_BYTES is never read."""
    doc = parse_document(manifest, media_type, where)
    if doc.config is None:
        return None
    for layer in doc.children[:MAX_LAYERS]:
        if layer.media_type != COSIGN_SIGNATURE_LAYER or layer.size > MAX_PAYLOAD_BYTES:
            continue
        encoded = layer.annotation(SIGNATURE_ANNOTATION)
        if not encoded or len(encoded) > MAX_SIGNATURE_CHARS:
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        payload = read_blob(layer.digest, layer.size)
        named = read_payload(payload)
        if named is None or named[0] != digest:
            continue
        if verify(key, payload, signature):
            return CosignCheck(layer.digest, named[1])
    return None


def signature_layers(manifest: bytes, media_type: str, where: str) -> List[str]:
    """The payload digests of a signature manifest (what a reviewer fetches to check it by hand)."""
    doc = parse_document(manifest, media_type, where)
    return [layer.digest for layer in doc.children[:MAX_LAYERS] if layer.media_type == COSIGN_SIGNATURE_LAYER]


def _only(digest: str, data: bytes) -> Callable[[str, int], bytes]:
    """A blob reader that has one blob (any other reads as empty, which no payload check accepts)."""
    def read(wanted: str, _size: int) -> bytes:
        return data if wanted == digest else b""
    return read


def recheck_upstream_signatures(meta: BundleHead, captured: Dict[str, bytes]) -> None:
    """Each upstream cosign signature bundle.json says was checked at build time (``signed-by``) is checked again
    from the archive: the carried signature manifest and payload (``captured``: member path -> bytes, as
    imagecheck.ImageGraph kept them while they streamed past, each already matched against SHA256SUMS) and the
    public key bundle.json records. ContentMismatch (exit 5) when one does not hold."""
    problems = []
    for image in meta.images:
        for g in image.signatures:
            if g.signature is None or g.payload is None:
                continue  # not carried (a platform subset of a signed index): checked at build time only
            what = "%s: the cosign signature %s" % (image.ref, g.signature)
            manifest = captured.get(blob_path(g.signature))
            payload = captured.get(blob_path(g.payload))
            media_type = next((r.media_type for r in image.referrers if r.digest == g.signature), "")
            if manifest is None or payload is None:
                problems.append("%s is not in the archive" % what)
                continue
            try:
                key = parse_public_key(g.public_key.encode("utf-8"), "the key of %s" % what)
            except TrustError as exc:
                problems.append(exc.message)
                continue
            if key.fingerprint != g.key:
                problems.append("%s: the recorded key is %s, not %s" % (what, key.fingerprint, g.key))
                continue
            check = check_signature_manifest(key, manifest, media_type, g.digest, _only(g.payload, payload), what)
            if check is None or check.layer != g.payload:
                problems.append("%s does not verify %s with the key %s" % (what, g.digest, g.key))
    if problems:
        raise ContentMismatch("an upstream signature recorded in bundle.json does not hold", problems)
