"""DSSE envelopes (installer/trust/dsse.py), the signed form of the provenance statement of issue 14 point 2, checked
against an independent implementation (securesystemslib, test-only) and against openssl by hand.

- An envelope we sign with a bundle key (Ed25519 and ECDSA P-256, bundler/seal/keys.py) verifies with
  securesystemslib's DSSE Envelope.verify; one securesystemslib signs verifies with ours. Both agree on PAE.
- The reviewer's by-hand check: the PAE rebuilt with printf from the envelope's payloadType and payload, checked
  with `openssl pkeyutl -verify` (Ed25519) or `openssl dgst -sha256 -verify` (ECDSA), fails for one changed byte.
- Hostile envelopes are refused before a signature is tried: other fields, non-canonical base64, too many
  signatures, another payload type; a keyid that names another key neither hides a good signature nor lets a bad
  one through.
"""

import base64
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from bundler.seal.keys import load_signer
from installer.errors import InvalidInput, TrustError
from installer.trust import dsse
from installer.trust.signing import load_public_key

STATEMENT = {"_type": "https://in-toto.io/Statement/v1",
             "subject": [{"name": "config/app.yaml", "digest": {"sha256": "ab" * 32}}],
             "predicateType": "https://slsa.dev/provenance/v1", "predicate": {"buildDefinition": {}}}
PAYLOAD = json.dumps(STATEMENT, sort_keys=True).encode()


def _sign(keydir, kind):
    signer = load_signer(str(keydir / kind / "bundle.key"))
    sig = signer.sign(dsse.pae(dsse.IN_TOTO, PAYLOAD))
    return dsse.envelope(dsse.IN_TOTO, PAYLOAD, [(signer.public.fingerprint, sig)]), signer


def _sslib_key(keydir, kind, keyid):
    pem = (keydir / kind / "bundle.pub").read_bytes()
    public = serialization.load_pem_public_key(pem)
    scheme = "ed25519" if kind == "ed" else "ecdsa-sha2-nistp256"
    return SSlibKey.from_crypto(public, keyid=keyid, scheme=scheme)


@pytest.mark.parametrize("kind", ["ed", "ec"])
def test_ours_verifies_with_securesystemslib_and_ours(keydir, kind):
    data, signer = _sign(keydir, kind)
    env = SslibEnvelope.from_dict(json.loads(data))
    assert env.pae() == dsse.pae(dsse.IN_TOTO, PAYLOAD)
    accepted = env.verify([_sslib_key(keydir, kind, signer.public.fingerprint)], 1)
    assert list(accepted) == [signer.public.fingerprint]
    parsed = dsse.parse(data, "provenance.dsse.json")
    pub = load_public_key(str(keydir / kind / "bundle.pub"))
    assert dsse.verify_envelope(parsed, [pub], "provenance.dsse.json").fingerprint == pub.fingerprint
    assert dsse.find_subject(dsse.statement(parsed, "x"), "config/app.yaml") == "ab" * 32


@pytest.mark.parametrize("kind", ["ed", "ec"])
def test_securesystemslib_signed_verifies_with_ours(keydir, kind):
    private = serialization.load_pem_private_key((keydir / kind / "bundle.key").read_bytes(), password=None)
    pub = load_public_key(str(keydir / kind / "bundle.pub"))
    key = _sslib_key(keydir, kind, pub.fingerprint)
    env = SslibEnvelope(PAYLOAD, dsse.IN_TOTO, {})
    env.sign(CryptoSigner(private, key))
    data = json.dumps(env.to_dict()).encode()
    assert dsse.verify_envelope(dsse.parse(data, "theirs"), [pub], "theirs").fingerprint == pub.fingerprint


@pytest.mark.parametrize("kind", ["ed", "ec"])
def test_by_hand_with_printf_and_openssl(keydir, kind, tmp_path):
    """What docs/VERIFY.md shows: the PAE from printf, the signature from base64 -d, openssl verifies."""
    data, _ = _sign(keydir, kind)
    (tmp_path / "provenance.dsse.json").write_bytes(data)
    (tmp_path / "bundle.pub").write_bytes((keydir / kind / "bundle.pub").read_bytes())
    check = ("openssl pkeyutl -verify -pubin -inkey bundle.pub -rawin -in pae.bin -sigfile sig.bin"
             if kind == "ed" else "openssl dgst -sha256 -verify bundle.pub -signature sig.bin pae.bin")
    script = r"""set -eu
python3 -c 'import json; e = json.load(open("provenance.dsse.json"))
print(e["payloadType"]); print(e["payload"]); print(e["signatures"][0]["sig"])' > fields
type=$(sed -n 1p fields)
sed -n 2p fields | base64 -d > payload.json
sed -n 3p fields | base64 -d > sig.bin
printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < payload.json)" > pae.bin
cat payload.json >> pae.bin
""" + check
    ok = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "pae.bin").read_bytes() == dsse.pae(dsse.IN_TOTO, PAYLOAD)
    # one changed byte in the statement: the same commands fail
    doc = json.loads(data)
    doc["payload"] = base64.b64encode(PAYLOAD.replace(b"ab", b"ac", 1)).decode()
    (tmp_path / "provenance.dsse.json").write_text(json.dumps(doc))
    bad = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0


def test_a_changed_payload_or_type_is_refused(keydir):
    data, _ = _sign(keydir, "ed")
    pub = load_public_key(str(keydir / "ed" / "bundle.pub"))
    doc = json.loads(data)
    doc["payload"] = base64.b64encode(PAYLOAD + b" ").decode()
    with pytest.raises(TrustError, match="no valid signature"):
        dsse.verify_envelope(dsse.parse(json.dumps(doc).encode(), "p"), [pub], "p")
    doc = json.loads(data)
    doc["payloadType"] = "text/plain"
    with pytest.raises(TrustError, match="not a application/vnd.in-toto"):
        dsse.verify_envelope(dsse.parse(json.dumps(doc).encode(), "p"), [pub], "p")
    other = load_public_key(str(keydir / "other" / "bundle.pub"))
    with pytest.raises(TrustError):
        dsse.verify_envelope(dsse.parse(data, "p"), [other], "p")


def test_keyid_is_only_a_hint(keydir):
    data, _ = _sign(keydir, "ed")
    pub = load_public_key(str(keydir / "ed" / "bundle.pub"))
    doc = json.loads(data)
    doc["signatures"][0]["keyid"] = load_public_key(str(keydir / "other" / "bundle.pub")).fingerprint
    assert dsse.verify_envelope(dsse.parse(json.dumps(doc).encode(), "p"), [pub], "p").fingerprint == pub.fingerprint


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(extra=1), "nothing else"),
    (lambda d: d.update(payload=d["payload"] + "\n"), "base64"),
    (lambda d: d.update(payload="QR=="), "not canonical base64"),       # "QQ==" spelt with non-zero pad bits
    (lambda d: d.update(signatures=[]), "1 to 8"),
    (lambda d: d.update(signatures=d["signatures"] * 9), "1 to 8"),
    (lambda d: d["signatures"][0].update(sig="A" * 5000), "at most"),
    (lambda d: d["signatures"][0].update(other="x"), "keyid, sig"),
    (lambda d: d.update(payloadType=7), "media type"),
])
def test_hostile_envelopes_are_refused_before_any_signature(keydir, change, message):
    data, _ = _sign(keydir, "ed")
    doc = json.loads(data)
    change(doc)
    with pytest.raises(InvalidInput, match=message):
        dsse.parse(json.dumps(doc).encode(), "p")
    with pytest.raises(InvalidInput, match="JSON"):
        dsse.parse(b"[" * 100000, "p")
