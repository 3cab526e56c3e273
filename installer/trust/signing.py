"""Public keys, fingerprints and detached-signature verification.

Ed25519 signatures are raw 64-byte signatures over the SHA256SUMS bytes; ECDSA P-256 ones are
DER over SHA-256 of them. ``cryptography`` verifies when importable; otherwise the ``openssl``
executable runs the same commands docs/VERIFY.md gives to reviewers.
"""

import base64
import binascii
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from typing import Iterable, List, Optional, Tuple

from installer.errors import LocalEnvironmentError, TrustError
from installer.fsutil import PathRefused, open_regular, read_fd

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256"

# DER of the AlgorithmIdentifier contents we accept (SubjectPublicKeyInfo, RFC 5280/8410).
_OID_ED25519 = bytes.fromhex("06032b6570")
_OID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")
_OID_PRIME256V1 = bytes.fromhex("06082a8648ce3d030107")
_PEM_RE = re.compile(rb"-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----")
MAX_KEY_FILE_BYTES = 16 * 1024


class PublicKey:
    __slots__ = ("der", "algorithm", "fingerprint", "source")

    def __init__(self, der: bytes, algorithm: str, source: str = "") -> None:
        self.der = der
        self.algorithm = algorithm
        self.fingerprint = fingerprint(der)
        self.source = source

    def pem(self) -> bytes:
        body = base64.encodebytes(self.der).replace(b"\n", b"")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return b"-----BEGIN PUBLIC KEY-----\n" + b"\n".join(lines) + b"\n-----END PUBLIC KEY-----\n"


def fingerprint(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def _der_item(data: bytes, pos: int) -> Tuple[int, int, int]:
    """(tag, content_start, content_end) of the DER item at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError("short DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("DER item overruns")
    return tag, pos, pos + length


def _algorithm_of_spki(der: bytes) -> str:
    tag, start, end = _der_item(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a SubjectPublicKeyInfo")
    tag, alg_start, alg_end = _der_item(der, start)
    if tag != 0x30:
        raise ValueError("no AlgorithmIdentifier")
    alg = der[alg_start:alg_end]
    bit_tag, bit_start, bit_end = _der_item(der, alg_end)
    if bit_tag != 0x03 or bit_end != end:
        raise ValueError("no key bit string")
    key_len = bit_end - bit_start - 1
    if der[bit_start] != 0:
        raise ValueError("the key bit string has unused bits")
    if alg == _OID_ED25519 and key_len == 32:
        return ED25519
    if alg == _OID_EC_PUBLIC_KEY + _OID_PRIME256V1 and key_len == 65 and der[bit_start + 1] == 0x04:
        return ECDSA_P256
    raise ValueError("unsupported key type (only Ed25519 and ECDSA P-256 keys are accepted)")


def parse_public_key(data: bytes, source: str = "") -> PublicKey:
    """Parse one PEM SubjectPublicKeyInfo; raise TrustError naming ``source`` otherwise."""
    match = _PEM_RE.search(data) if len(data) <= MAX_KEY_FILE_BYTES else None
    try:
        if not match:
            raise ValueError("no PEM public key")
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        algorithm = _algorithm_of_spki(der)
        _check_with_cryptography(der)
    except (ValueError, binascii.Error) as exc:
        raise TrustError("%s is not a usable public key: %s" % (source or "the key", exc)) from exc
    return PublicKey(der, algorithm, source)


def _check_with_cryptography(der: bytes) -> None:
    """Where cryptography is present it also proves the point is on the curve."""
    try:
        from cryptography.hazmat.primitives.serialization import load_der_public_key
    except ImportError:
        return  # openssl checks the point when it verifies
    try:
        load_der_public_key(der)
    except (ValueError, TypeError) as exc:
        raise ValueError("the key does not load (%s)" % (str(exc) or type(exc).__name__)) from exc


def canonical_signature(algorithm: str, signature: bytes) -> bool:
    """Ed25519: exactly 64 bytes. ECDSA: one DER SEQUENCE and nothing after it.

    `openssl dgst -verify` ignores bytes after the DER; cryptography does not. Refusing
    non-canonical signatures keeps both paths (and the reviewer's command) in agreement.
    """
    if algorithm == ED25519:
        return len(signature) == 64
    try:
        tag, _start, end = _der_item(signature, 0)
    except ValueError:
        return False
    return tag == 0x30 and end == len(signature)


def load_public_key(path: str, follow: bool = True) -> PublicKey:
    """A key file: a regular file (a FIFO or device is refused, never waited on); ``follow`` when the user
    named it, not when it was found in a folder."""
    try:
        fd = open_regular(path, MAX_KEY_FILE_BYTES, follow=follow)
        data = read_fd(fd, MAX_KEY_FILE_BYTES, path)
    except PathRefused as exc:
        raise TrustError("%s %s; a key is a regular file" % (exc.path, exc.why)) from exc
    except OSError as exc:
        raise TrustError("cannot read key %s: %s" % (path, exc.strerror)) from exc
    return parse_public_key(data, path)


def verify(key: PublicKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid signature of ``data`` by ``key``."""
    if not canonical_signature(key.algorithm, signature):
        return False
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return _verify_openssl(key, data, signature)
    return _verify_cryptography(key, data, signature)


def _verify_cryptography(key: PublicKey, data: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    public = load_der_public_key(key.der)
    try:
        if key.algorithm == ED25519 and isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        elif key.algorithm == ECDSA_P256 and isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False  # the key's bytes are not of the algorithm it claims: it signs nothing
    except InvalidSignature:
        return False
    return True


def openssl_verify_command(algorithm: str, pub: str = "bundle.pub", data: str = "SHA256SUMS",
                           sig: str = "SHA256SUMS.sig") -> List[str]:
    """The exact reviewer command for this key type (docs/FORMAT.md "Archive format")."""
    if algorithm == ED25519:
        return ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", data, "-sigfile", sig]
    return ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, data]


def _verify_openssl(key: PublicKey, data: bytes, signature: bytes) -> bool:
    exe = shutil.which("openssl")
    if not exe:
        raise LocalEnvironmentError("cannot check signatures: neither the 'cryptography' package nor the openssl "
                                    "program is available")
    with tempfile.TemporaryDirectory(prefix="offline-bundle-sig-") as tmp:
        paths = {}
        for name, content in (("bundle.pub", key.pem()), ("SHA256SUMS", data), ("SHA256SUMS.sig", signature)):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "wb") as fh:
                fh.write(content)
        cmd = openssl_verify_command(key.algorithm, paths["bundle.pub"], paths["SHA256SUMS"], paths["SHA256SUMS.sig"])
        cmd[0] = exe
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc.returncode == 0


def find_signer(keys: Iterable[PublicKey], data: bytes, signature: bytes) -> Optional[PublicKey]:
    for key in keys:
        if verify(key, data, signature):
            return key
    return None
