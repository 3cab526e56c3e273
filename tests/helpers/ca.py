"""The test PKI: a throwaway CA (EC P-256) issuing server certificates and token-signing certificates.

Keys are generated once per process (key generation is the slow part) and shared through ``default_ca()``;
pass your own ``TestCA()`` to prove a client rejects a server signed by another CA.
"""

from __future__ import annotations

import base64
import datetime
import os
import ipaddress
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestCA:
    """A throwaway CA (EC P-256) that issues server certs and token-signing certs.

    EC keys are used where the protocol allows because RSA generation is the slow part; the token
    signer is RSA because the brief (and Docker Hub) use RS256.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "offline-bundle test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self._server: Optional[Tuple[bytes, bytes]] = None
        self._signer = None
        self._lock = threading.Lock()

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def _issue(self, cn: str, public_key, eku, sans=None) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(self.key, hashes.SHA256())

    def server_pem(self) -> Tuple[bytes, bytes]:
        """(cert PEM, key PEM) for 127.0.0.1 / localhost, made once per CA."""
        with self._lock:
            if self._server is None:
                key = ec.generate_private_key(ec.SECP256R1())
                cert = self._issue("127.0.0.1", key.public_key(), [ExtendedKeyUsageOID.SERVER_AUTH],
                                   [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
                self._server = (cert.public_bytes(serialization.Encoding.PEM),
                                key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                                  serialization.NoEncryption()))
            return self._server

    def token_signer(self) -> Tuple[rsa.RSAPrivateKey, x509.Certificate]:
        """RSA key + cert (signed by this CA) for RS256 registry tokens, made once per CA."""
        with self._lock:
            if self._signer is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                cert = self._issue("token-signer", key.public_key(), [ExtendedKeyUsageOID.CODE_SIGNING])
                self._signer = (key, cert)
            return self._signer

    def write(self, folder: Path) -> Dict[str, Path]:
        """Write ca.crt, server.crt, server.key into folder; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        crt, key = self.server_pem()
        paths = {"ca": folder / "ca.crt", "cert": folder / "server.crt", "key": folder / "server.key"}
        paths["ca"].write_bytes(self.cert_pem)
        paths["cert"].write_bytes(crt)
        paths["key"].write_bytes(key)
        os.chmod(paths["key"], 0o600)
        return paths


_DEFAULT_CA: Optional[TestCA] = None
_DEFAULT_CA_LOCK = threading.Lock()


def default_ca() -> TestCA:
    """The process-wide test CA (made on first use)."""
    global _DEFAULT_CA
    with _DEFAULT_CA_LOCK:
        if _DEFAULT_CA is None:
            _DEFAULT_CA = TestCA()
        return _DEFAULT_CA
