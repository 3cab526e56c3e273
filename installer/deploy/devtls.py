"""Development TLS material for a bundle's services (``offline-bundle tls``, ``install --dev-tls``).

One self-signed CA and, signed by it, certificates for mutual TLS between the services a bundle's
``deploy.tls`` section names (installer/format/deployspec.py). A stack whose containers all mount
ONE folder holding the CA certificate and one shared certificate and key (compose: the folder a
``deploy.compose.env`` variable points at; Kubernetes: a Secret made from that folder) needs that
shared certificate to be a server certificate for every service and a client certificate at once.
Written into OUT_DIR, with the file stems the section names (defaults in brackets):

- ``CA.crt`` / ``CA.key``            [ca] the CA (CA:true, pathlen 0, keyCertSign + cRLSign);
- ``SERVICE.crt`` / ``SERVICE.key``  one per service (serverAuth + clientAuth);
- ``SHARED.crt`` / ``SHARED.key``    [tls] the combined certificate: every service's names;
- ``CLIENT.crt`` / ``CLIENT.key``    [client] a client certificate (clientAuth) for scrapers and operators.

A service answers to NAME, NAME.NAMESPACE.svc and NAME.NAMESPACE.svc.cluster.local, and every
server certificate also to localhost and 127.0.0.1. Keys are ECDSA P-256, unencrypted PKCS#8 PEM,
mode 0600 whatever the umask; certificates 0644. ``cryptography`` builds them when importable;
otherwise the ``openssl`` program (OpenSSL 1.1.1 or 3.x) does, through ``openssl ca`` so that both
back ends set the same validity dates and extensions. For development and staging only: production
sites bring their own PKI.

Nothing secret leaves this module: results and errors carry paths and fingerprints only.
"""

import base64
import contextlib
import datetime
import errno
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from installer.errors import InternalError, LocalEnvironmentError, UsageError
from installer.format.deployspec import Certificate, TlsSpec
from installer.fsutil import fsync_dir, write_new

NAMESPACE = "default"  # the Kubernetes names of the services, when no namespace is given
CLUSTER_DOMAIN = "cluster.local"
LOCAL_NAMES = ("localhost",)
LOCAL_IPS = ("127.0.0.1",)

ORGANIZATION = "offline-bundle development"

# The certificate is valid from a little before ``now``: hosts' clocks differ.
CLOCK_SKEW = datetime.timedelta(minutes=5)

SERVER_AUTH = "serverAuth"
CLIENT_AUTH = "clientAuth"

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_COMMON_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9 ._-]{0,62}[A-Za-z0-9])?$")  # nothing -subj would parse

CERT_MODE = 0o644
KEY_MODE = 0o600
DIR_MODE = 0o700


class _Spec:
    """One certificate to make: its file stem, subject, SANs, usages."""

    __slots__ = ("stem", "common_name", "dns", "ips", "usages", "is_ca")

    def __init__(self, stem: str, common_name: str, dns: Sequence[str] = (), ips: Sequence[str] = (),
                 usages: Sequence[str] = (), is_ca: bool = False) -> None:
        self.stem = stem
        self.common_name = common_name
        self.dns = list(dns)
        self.ips = list(ips)
        self.usages = list(usages)
        self.is_ca = is_ca

    def sans(self) -> List[str]:
        return ["DNS:" + n for n in self.dns] + ["IP:" + ip for ip in self.ips]


# --------------------------------------------------------------------------------------------
# What gets made


def service_names(name: str, namespace: str = NAMESPACE) -> List[str]:
    """The DNS names a service answers to: compose name and its Kubernetes names."""
    return [name, "%s.%s.svc" % (name, namespace), "%s.%s.svc.%s" % (name, namespace, CLUSTER_DOMAIN)]


def _check(tls: TlsSpec, namespace: str) -> TlsSpec:
    """The spec's names again (it may come from the command line, not only from a parsed bundle)."""
    if not isinstance(tls, TlsSpec):
        raise UsageError("the TLS set must be a TlsSpec")
    if isinstance(tls.services, str) or not isinstance(tls.services, (tuple, list)):
        raise UsageError("services must be a list of service names, not one string")
    stems: List[str] = []
    for role in ("ca", "shared", "client"):
        cert = getattr(tls, role)
        if not isinstance(cert, Certificate) or not isinstance(cert.file, str) or not _NAME_RE.match(cert.file):
            raise UsageError("the %s certificate's file name is not a DNS label" % role)
        if not isinstance(cert.cn, str) or not _COMMON_NAME_RE.match(cert.cn):
            raise UsageError("the %s certificate's common name may hold only letters, digits, ' ', '.', '_' and '-'"
                             % role)
        stems.append(cert.file)
    for name in tls.services:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise UsageError("%r is not a valid service name (lower-case letters, digits and '-', "
                             "at most 63 characters)" % (name,))
        if name in stems[:3]:
            raise UsageError("%r cannot be a service name: %s.crt is one of the shared files" % (name, name))
        if name in stems:
            raise UsageError("service %r is named twice" % name)
        stems.append(name)
    if len(set(stems[:3])) != 3:
        raise UsageError("the CA, shared and client certificates need three different file names")
    if not isinstance(namespace, str) or not _NAME_RE.match(namespace):
        raise UsageError("%r is not a valid Kubernetes namespace" % (namespace,))
    return tls


def _specs(tls: TlsSpec, namespace: str) -> List[_Spec]:
    both = [SERVER_AUTH, CLIENT_AUTH]
    specs = [_Spec(tls.ca.file, tls.ca.cn, is_ca=True)]
    all_dns = []  # type: List[str]
    for name in tls.services:
        dns = service_names(name, namespace)
        all_dns.extend(dns)
        specs.append(_Spec(name, name, dns + list(LOCAL_NAMES), LOCAL_IPS, both))
    specs.append(_Spec(tls.shared.file, tls.shared.cn, all_dns + list(LOCAL_NAMES), LOCAL_IPS, both))
    specs.append(_Spec(tls.client.file, tls.client.cn, usages=[CLIENT_AUTH]))
    return specs


def file_names(tls: Optional[TlsSpec] = None) -> List[str]:
    """Every file ``generate`` writes for this set, in the order it reports them."""
    result = []
    for spec in _specs(_check(tls or TlsSpec(), NAMESPACE), NAMESPACE):
        result.extend([spec.stem + ".crt", spec.stem + ".key"])
    return result


def existing_files(out_dir: str, tls: Optional[TlsSpec] = None) -> List[str]:
    """The files ``generate`` would write that already exist in ``out_dir`` (links count)."""
    return [f for f in file_names(tls) if os.path.lexists(os.path.join(out_dir, f))]


def backend() -> str:
    """``cryptography`` when importable, else ``openssl`` when on PATH; else LocalEnvironmentError."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        pass
    else:
        return "cryptography"
    if shutil.which("openssl"):
        return "openssl"
    raise LocalEnvironmentError("cannot make TLS certificates: neither the Python package 'cryptography' "
                                "nor the openssl program is available")


# --------------------------------------------------------------------------------------------
# Dates


def _validity(now: Optional[datetime.datetime], days: int) -> Tuple[datetime.datetime, datetime.datetime]:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise UsageError("days must be a whole number of days, at least 1 (got %r)" % (days,))
    if days > 36500:
        raise UsageError("days must be at most 36500 (got %d)" % days)
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif not isinstance(now, datetime.datetime):
        raise UsageError("now must be a datetime")
    elif now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)  # naive means UTC
    now = now.astimezone(datetime.timezone.utc).replace(microsecond=0)
    not_before = now - CLOCK_SKEW
    not_after = now + datetime.timedelta(days=days)
    if not_before.year < 1950 or not_after.year > 9999:
        raise UsageError("the validity period must lie between 1950 and 9999")
    return not_before, not_after


def _iso(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _asn1_time(when: datetime.datetime) -> str:
    """RFC 5280: UTCTime through 2049, GeneralizedTime from 2050 (``openssl ca -startdate``)."""
    if when.year < 2050:
        return when.strftime("%y%m%d%H%M%SZ")
    return when.strftime("%Y%m%d%H%M%SZ")


def _serial() -> int:
    """A positive serial of at most 20 octets with 159 random bits (RFC 5280 4.1.2.2)."""
    return secrets.randbits(159) | 1


# --------------------------------------------------------------------------------------------
# Back end: cryptography


def _make_cryptography(specs: Sequence[_Spec], not_before: datetime.datetime,
                       not_after: datetime.datetime) -> Dict[str, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    eku_oids = {SERVER_AUTH: ExtendedKeyUsageOID.SERVER_AUTH, CLIENT_AUTH: ExtendedKeyUsageOID.CLIENT_AUTH}

    def name_of(common_name: str) -> "x509.Name":
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def key_usage(cert_sign: bool) -> "x509.KeyUsage":
        return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False,
                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                             key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                             decipher_only=False)

    out = {}  # type: Dict[str, bytes]
    ca_key = None
    ca_name = None
    ca_ski = None
    for spec in specs:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = name_of(spec.common_name)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = (x509.CertificateBuilder()
                   .subject_name(subject)
                   .public_key(key.public_key())
                   .serial_number(_serial())
                   .not_valid_before(not_before)
                   .not_valid_after(not_after))
        if spec.is_ca:
            builder = (builder.issuer_name(subject)
                       .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                       .add_extension(key_usage(True), critical=True)
                       .add_extension(ski, critical=False))
            signer = key
        else:
            if ca_key is None or ca_name is None or ca_ski is None:
                raise InternalError("the CA must be made before the certificates it signs")
            builder = (builder.issuer_name(ca_name)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(key_usage(False), critical=True)
                       .add_extension(x509.ExtendedKeyUsage([eku_oids[u] for u in spec.usages]), critical=False)
                       .add_extension(ski, critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                                      critical=False))
            general: List[x509.GeneralName] = [x509.DNSName(n) for n in spec.dns]
            general += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in spec.ips]
            if general:
                builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
            signer = ca_key
        cert = builder.sign(signer, hashes.SHA256())
        if spec.is_ca:
            ca_key, ca_name, ca_ski = key, subject, ski
        out[spec.stem + ".crt"] = cert.public_bytes(serialization.Encoding.PEM)
        out[spec.stem + ".key"] = key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
    return out


# --------------------------------------------------------------------------------------------
# Back end: the openssl program

_OPENSSL_CONFIG_HEAD = """\
# Written by offline-bundle (installer/deploy/devtls.py) for one run; deleted afterwards.
[ ca ]
default_ca = devtls_ca

[ devtls_ca ]
database = {tmp}/index.txt
new_certs_dir = {tmp}/newcerts
serial = {tmp}/serial
default_md = sha256
policy = devtls_policy
unique_subject = no
preserve = yes
email_in_dn = no
copy_extensions = none

[ devtls_policy ]
organizationName = optional
commonName = supplied

[ req ]
distinguished_name = devtls_dn
string_mask = utf8only

[ devtls_dn ]

[ ext_ca ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


def _openssl_config(tmp: str, specs: Sequence[_Spec]) -> str:
    names = {SERVER_AUTH: "serverAuth", CLIENT_AUTH: "clientAuth"}
    parts = [_OPENSSL_CONFIG_HEAD.format(tmp=tmp)]
    for index, spec in enumerate(specs):
        if spec.is_ca:
            continue
        lines = ["[ ext_%d ]" % index,
                 "basicConstraints = critical, CA:false",
                 "keyUsage = critical, digitalSignature",
                 "extendedKeyUsage = " + ", ".join(names[u] for u in spec.usages),
                 "subjectKeyIdentifier = hash",
                 "authorityKeyIdentifier = keyid:always"]
        if spec.dns or spec.ips:
            lines.append("subjectAltName = @san_%d" % index)
            lines.append("")
            lines.append("[ san_%d ]" % index)
            lines.extend("DNS.%d = %s" % (i + 1, n) for i, n in enumerate(spec.dns))
            lines.extend("IP.%d = %s" % (i + 1, ip) for i, ip in enumerate(spec.ips))
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _run_openssl(exe: str, args: List[str], cwd: str, what: str) -> None:
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)  # the temp config is given explicitly where one is read
    try:
        proc = subprocess.run([exe] + args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalEnvironmentError("openssl could not %s: %s" % (what, type(exc).__name__)) from exc
    if proc.returncode != 0:
        # openssl never prints key material on failure; keep only its first error line.
        lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        detail = lines[0][:200] if lines else "exit status %d" % proc.returncode
        raise LocalEnvironmentError("openssl could not %s (OpenSSL 1.1.1 or later is needed): %s" % (what, detail))


def _make_openssl(specs: Sequence[_Spec], not_before: datetime.datetime,
                  not_after: datetime.datetime) -> Dict[str, bytes]:
    exe = shutil.which("openssl")
    if not exe:
        raise LocalEnvironmentError("cannot make TLS certificates: neither the Python package 'cryptography' "
                                    "nor the openssl program is available")
    start, end = _asn1_time(not_before), _asn1_time(not_after)
    out = {}  # type: Dict[str, bytes]
    tmp = tempfile.mkdtemp(prefix="offline-bundle-devtls-")  # 0700: the keys pass through here
    try:
        os.mkdir(os.path.join(tmp, "newcerts"), DIR_MODE)
        with open(os.path.join(tmp, "index.txt"), "w"):
            pass
        config = os.path.join(tmp, "openssl.cnf")
        with open(config, "w") as fh:
            fh.write(_openssl_config(tmp, specs))
        for index, spec in enumerate(specs):
            key = os.path.join(tmp, spec.stem + ".key")
            csr = os.path.join(tmp, spec.stem + ".csr")
            crt = os.path.join(tmp, spec.stem + ".crt")
            _run_openssl(exe, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-pkeyopt", "ec_param_enc:named_curve", "-out", key],
                         tmp, "make the %s key" % spec.stem)
            _run_openssl(exe, ["req", "-new", "-config", config, "-key", key, "-sha256",
                               "-subj", "/O=%s/CN=%s" % (ORGANIZATION, spec.common_name), "-out", csr],
                         tmp, "make the %s certificate request" % spec.stem)
            with open(os.path.join(tmp, "serial"), "w") as fh:
                fh.write("%040x\n" % _serial())
            args = ["ca", "-batch", "-config", config, "-in", csr, "-out", crt, "-notext", "-md", "sha256",
                    "-startdate", start, "-enddate", end]
            if spec.is_ca:
                args += ["-selfsign", "-keyfile", key, "-extensions", "ext_ca"]
            else:
                args += ["-cert", os.path.join(tmp, "ca.crt"), "-keyfile", os.path.join(tmp, "ca.key"),
                         "-extensions", "ext_%d" % index]
            _run_openssl(exe, args, tmp, "sign the %s certificate" % spec.stem)
            for path in (crt, key):
                with open(path, "rb") as fh:
                    out[os.path.basename(path)] = fh.read()
            _pem_der(out[spec.stem + ".crt"], spec.stem + ".crt")  # fail here, not at install, if malformed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------
# Writing


_PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")


def _pem_der(pem: bytes, what: str) -> bytes:
    match = _PEM_CERT_RE.search(pem)
    if not match:
        raise InternalError("the generated %s is not a PEM certificate" % what)
    return base64.b64decode(b"".join(match.group(1).split()))


def _prepare_dir(out_dir: str) -> None:
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError("%s exists and is not a folder" % out_dir)
    if not os.path.isdir(out_dir):
        parent = os.path.dirname(out_dir)
        try:
            if parent:
                os.makedirs(parent, exist_ok=True)
            os.mkdir(out_dir, DIR_MODE)
            os.chmod(out_dir, DIR_MODE)  # whatever the umask
        except FileExistsError as exc:
            if not os.path.isdir(out_dir):
                raise UsageError("%s exists and is not a folder" % out_dir) from exc
        except OSError as exc:
            raise LocalEnvironmentError("cannot create %s: %s" % (out_dir, exc.strerror or type(exc).__name__)) from exc


def _place(out_dir: str, material: Dict[str, bytes], order: Sequence[str], force: bool) -> None:
    """Stage every file in a private folder inside ``out_dir``, then move them into place.

    Without ``force`` a file is linked in (``link`` never replaces), so a file that appeared
    meanwhile is not overwritten either; on any failure the files placed so far are removed.
    """
    try:
        stage = tempfile.mkdtemp(prefix=".devtls-", dir=out_dir)
    except OSError as exc:
        raise LocalEnvironmentError("cannot write into %s: %s" % (out_dir, exc.strerror or type(exc).__name__)) from exc
    placed = []  # type: List[str]
    try:
        try:
            for name in order:
                write_new(os.path.join(stage, name), material[name],
                           KEY_MODE if name.endswith(".key") else CERT_MODE)
            for name in order:
                src, dst = os.path.join(stage, name), os.path.join(out_dir, name)
                if force:
                    os.replace(src, dst)
                else:
                    try:
                        os.link(src, dst)
                    except FileExistsError as exc:
                        raise UsageError("%s already exists; refusing to overwrite it (use --force to replace)"
                                         % dst) from exc
                    except OSError as exc:
                        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                            raise
                        if os.path.lexists(dst):
                            raise UsageError("%s already exists; refusing to overwrite it (use --force to replace)"
                                             % dst) from exc
                        os.rename(src, dst)
                placed.append(dst)
        except OSError as exc:
            raise LocalEnvironmentError("cannot write TLS files into %s: %s"
                                        % (out_dir, exc.strerror or type(exc).__name__)) from exc
    except BaseException:
        if not force:
            for path in placed:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):  # best effort: the files themselves are fsynced
            fsync_dir(out_dir)


# --------------------------------------------------------------------------------------------
# The entry point


def generate(out_dir: str, *, tls: Optional[TlsSpec] = None, namespace: str = NAMESPACE, days: int = 365,
             now: Optional[datetime.datetime] = None, force: bool = False) -> Dict[str, Any]:
    """Write the CA, one certificate per service, the shared and the client certificate into ``out_dir``.

    ``tls`` names them (default: no services, files ca.*, tls.* and client.*); ``namespace`` gives the
    services their Kubernetes names. Refuses (UsageError, nothing written) when any of those files
    exists, unless ``force``. Returns paths, fingerprints (``SHA256:`` + hex of the DER certificate),
    validity and SANs; never key material.
    """
    tls = _check(tls or TlsSpec(), namespace)
    not_before, not_after = _validity(now, days)
    out_dir = os.path.abspath(os.fspath(out_dir))
    specs = _specs(tls, namespace)
    order = []  # type: List[str]
    for spec in specs:
        order.extend([spec.stem + ".crt", spec.stem + ".key"])
    if os.path.isdir(out_dir) and not force:
        present = [f for f in order if os.path.lexists(os.path.join(out_dir, f))]
        if present:
            raise UsageError("%s already holds %s; refusing to overwrite (use --force to replace them)"
                             % (out_dir, ", ".join(present)))
    which = backend()
    if which == "cryptography":
        material = _make_cryptography(specs, not_before, not_after)
    else:
        material = _make_openssl(specs, not_before, not_after)
    _prepare_dir(out_dir)
    _place(out_dir, material, order, force)

    certificates = {}
    for spec in specs:
        der = _pem_der(material[spec.stem + ".crt"], spec.stem + ".crt")
        certificates[spec.stem] = {
            "cert": os.path.join(out_dir, spec.stem + ".crt"),
            "key": os.path.join(out_dir, spec.stem + ".key"),
            "fingerprint": "SHA256:" + hashlib.sha256(der).hexdigest(),
            "subject": "O=%s,CN=%s" % (ORGANIZATION, spec.common_name),
            "issuer": "O=%s,CN=%s" % (ORGANIZATION, tls.ca.cn),
            "is_ca": spec.is_ca,
            "extended_key_usage": list(spec.usages),
            "sans": spec.sans(),
            "not_before": _iso(not_before),
            "not_after": _iso(not_after),
        }
    return {
        "out_dir": out_dir,
        "backend": which,
        "namespace": namespace,
        "services": list(tls.services),
        "not_before": _iso(not_before),
        "not_after": _iso(not_after),
        "files": [os.path.join(out_dir, f) for f in order],
        "certificates": certificates,
    }
