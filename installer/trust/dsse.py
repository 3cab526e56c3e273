"""DSSE envelopes (Dead Simple Signing Envelope, v1.0.2): the signed form of the bundle's provenance statement
(issue 14 point 2).

A DSSE signature is over the pre-authentication encoding (PAE) of the payload, never over the payload's JSON:

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body     (LEN: ASCII decimal byte count)

so a reviewer rebuilds the signed bytes with printf and checks them with openssl alone (docs/VERIFY.md). The
envelope is JSON: {"payloadType", "payload" (standard base64), "signatures": [{"keyid", "sig" (base64)}]}.

Everything read from an envelope is hostile until checked: the envelope is size-capped, its fields are exactly
those, base64 is strict (no whitespace, no junk, canonical padding), the payload type must be the one expected
(an in-toto statement), at most a handful of signatures are tried, and each signature is checked with the
installer's own verifier (Ed25519 or ECDSA P-256, through `cryptography` or the openssl program) against the keys
the caller trusts. Standard library only: the installer runs it on CPython 3.9.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from installer.errors import InvalidInput, TrustError
from installer.trust.signing import PublicKey, canonical_signature, verify

IN_TOTO = "application/vnd.in-toto+json"
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024   # a provenance statement lists every file and image digest of a bundle
MAX_SIGNATURES = 8
MAX_SIG_TEXT = 1024                     # base64 of an Ed25519 or ECDSA P-256 signature is far below this


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(payload_type: str, payload: bytes, signatures: Iterable[Tuple[str, bytes]]) -> bytes:
    """The envelope's JSON bytes (keys sorted, one line, a newline): ``signatures`` are (keyid, signature)."""
    doc = {"payloadType": payload_type, "payload": base64.b64encode(payload).decode("ascii"),
           "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")} for keyid, sig in signatures]}
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def key_id(key: PublicKey) -> str:
    """The keyid an envelope names a bundle key by: its fingerprint (SHA256:<base64> of the DER public key)."""
    return key.fingerprint


def _b64(text: Any, where: str, cap: int) -> bytes:
    if not isinstance(text, str) or len(text) > cap * 4 // 3 + 4:
        raise InvalidInput("%s is not base64 text of at most %d bytes" % (where, cap))
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidInput("%s is not valid base64" % where) from exc
    if base64.b64encode(raw).decode("ascii") != text:  # one spelling only: no alternative padding or bits
        raise InvalidInput("%s is not canonical base64" % where)
    return raw


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: List[Tuple[str, bytes]]   # (keyid, signature bytes)


def parse(data: bytes, where: str) -> Envelope:
    """An envelope's bytes, checked field by field; problems are InvalidInput naming ``where``."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise InvalidInput("%s is larger than %d MiB" % (where, MAX_ENVELOPE_BYTES >> 20))
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput("%s is not a JSON DSSE envelope" % where) from exc
    if not isinstance(doc, dict) or set(doc) != {"payloadType", "payload", "signatures"}:
        raise InvalidInput("%s is not a DSSE envelope (payloadType, payload and signatures, nothing else)" % where)
    kind = doc["payloadType"]
    if not isinstance(kind, str) or not 0 < len(kind) <= 256:
        raise InvalidInput("%s: payloadType is not a media type" % where)
    payload = _b64(doc["payload"], where + ": payload", MAX_ENVELOPE_BYTES)
    sigs = doc["signatures"]
    if not isinstance(sigs, list) or not 0 < len(sigs) <= MAX_SIGNATURES:
        raise InvalidInput("%s: signatures is not a list of 1 to %d signatures" % (where, MAX_SIGNATURES))
    signatures = []
    for i, entry in enumerate(sigs):
        if not isinstance(entry, dict) or not set(entry) <= {"keyid", "sig"} or "sig" not in entry:
            raise InvalidInput("%s: signatures[%d] is not {keyid, sig}" % (where, i))
        keyid = entry.get("keyid", "")
        if not isinstance(keyid, str) or len(keyid) > 256:
            raise InvalidInput("%s: signatures[%d].keyid is not a short string" % (where, i))
        signatures.append((keyid, _b64(entry["sig"], "%s: signatures[%d].sig" % (where, i), MAX_SIG_TEXT)))
    return Envelope(kind, payload, signatures)


def verify_envelope(env: Envelope, keys: Iterable[PublicKey], where: str,
                    payload_type: str = IN_TOTO) -> PublicKey:
    """The first of ``keys`` whose signature over PAE(type, payload) the envelope carries; TrustError (exit 4)
    when the type is another or no signature verifies. keyid is a hint only: every signature is tried against
    every key, so a wrong or missing keyid never hides a good signature, nor makes a bad one pass."""
    if env.payload_type != payload_type:
        raise TrustError("%s signs a %s, not a %s" % (where, env.payload_type[:80], payload_type))
    signed = pae(env.payload_type, env.payload)
    candidates = list(keys)
    for _keyid, sig in env.signatures:
        for key in candidates:
            if canonical_signature(key.algorithm, sig) and verify(key, signed, sig):
                return key
    raise TrustError("%s carries no valid signature by %s" % (
        where, "any of the trusted keys" if len(candidates) != 1 else key_id(candidates[0])))


def statement(env: Envelope, where: str) -> Dict[str, Any]:
    """The in-toto Statement an envelope carries (call after verify_envelope): a JSON object with _type."""
    try:
        doc = json.loads(env.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput("%s: the payload is not JSON" % where) from exc
    if not isinstance(doc, dict) or doc.get("_type") != "https://in-toto.io/Statement/v1":
        raise InvalidInput("%s: the payload is not an in-toto Statement v1" % where)
    return doc


def find_subject(doc: Dict[str, Any], name: str) -> Optional[str]:
    """The sha256 an in-toto statement records for subject ``name``, or None."""
    for subject in doc.get("subject") or []:
        if isinstance(subject, dict) and subject.get("name") == name:
            digest = subject.get("digest")
            value = digest.get("sha256") if isinstance(digest, dict) else None
            if isinstance(value, str):
                return value
    return None
