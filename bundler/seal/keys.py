"""Signing keys: generation, loading with permission and passphrase checks, signing."""

import os
import stat
from typing import Dict, Optional, Tuple, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from installer.errors import TrustError, UsageError
from installer.trust.signing import ECDSA_P256, ED25519, PublicKey, openssl_verify_command

ALGORITHMS = (ED25519, ECDSA_P256)
# What a bundle key can be: load_signer refuses any other key (an EC key on another curve among them).
PrivateKey = Union[ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey]


def passphrase_from_env() -> Optional[bytes]:
    """BUNDLE_KEY_PASSPHRASE_FILE wins over BUNDLE_KEY_PASSPHRASE; a trailing newline is dropped."""
    path = os.environ.get("BUNDLE_KEY_PASSPHRASE_FILE")
    if path:
        try:
            with open(path, "rb") as fh:
                value = fh.read()
        except OSError as exc:
            raise UsageError("cannot read BUNDLE_KEY_PASSPHRASE_FILE %s: %s" % (path, exc.strerror)) from exc
        return value.rstrip(b"\r\n") or None
    text = os.environ.get("BUNDLE_KEY_PASSPHRASE")
    return text.encode() if text else None


def _public_of(private: PrivateKey) -> PublicKey:
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    algorithm = ED25519 if isinstance(private, ed25519.Ed25519PrivateKey) else ECDSA_P256
    return PublicKey(der, algorithm)


def keygen(out_dir: str, algorithm: str = ED25519) -> Tuple[str, str, PublicKey]:
    if algorithm not in ALGORITHMS:
        raise UsageError("--algorithm takes ed25519 or ecdsa-p256, not %r" % algorithm)
    private: PrivateKey = (ed25519.Ed25519PrivateKey.generate() if algorithm == ED25519
                           else ec.generate_private_key(ec.SECP256R1()))
    passphrase = passphrase_from_env()
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = _public_of(private)
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
        os.chmod(out_dir, 0o755)  # a trust folder others can write to would be refused
    key_path = os.path.join(out_dir, "bundle.key")
    pub_path = os.path.join(out_dir, "bundle.pub")
    for path in (key_path, pub_path):
        if os.path.exists(path):
            raise UsageError("%s already exists; choose another --out or move it away" % path)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(key_path, 0o600)  # whatever the umask said
    fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(public.pem())
    os.chmod(pub_path, 0o644)
    return key_path, pub_path, public


class Signer:
    """A loaded private key that signs SHA256SUMS bytes deterministically."""

    def __init__(self, private: PrivateKey) -> None:
        self._private = private
        self.public = _public_of(private)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._private, ed25519.Ed25519PrivateKey):  # self.public.algorithm == ED25519
            return self._private.sign(data)  # Ed25519 is deterministic by construction
        # RFC 6979: the same key and bytes always give the same signature (reproducible archives).
        return self._private.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def load_signer(path: str) -> Signer:
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise UsageError("the key %s does not exist" % path) from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TrustError("the private key %s is readable by group or others; chmod 600 it first" % path)
    with open(path, "rb") as fh:
        data = fh.read(64 * 1024)
    passphrase = passphrase_from_env()
    try:
        private = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        if passphrase:
            raise TrustError("the private key %s is not encrypted but a passphrase was given" % path) from exc
        raise TrustError("the private key %s is encrypted: set BUNDLE_KEY_PASSPHRASE_FILE or BUNDLE_KEY_PASSPHRASE"
                         % path) from exc
    except ValueError as exc:
        if passphrase:
            raise TrustError("cannot decrypt the private key %s: wrong passphrase or not a key" % path) from exc
        raise TrustError("%s is not a PEM private key" % path) from exc
    if not isinstance(private, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)) or (
            isinstance(private, ec.EllipticCurvePrivateKey) and not isinstance(private.curve, ec.SECP256R1)):
        raise TrustError("the key %s is neither Ed25519 nor ECDSA P-256" % path)
    return Signer(private)


def describe_public(pub: PublicKey) -> Dict[str, str]:
    return {
        "fingerprint": pub.fingerprint,
        "algorithm": pub.algorithm,
        "openssl_verify": " ".join(openssl_verify_command(pub.algorithm)),
    }
