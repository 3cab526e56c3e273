"""installer.deploy.devtls: development TLS material for the services a bundle names, with both back ends.

Each back end generates once per module (under umask 000) the set the default manifest's `deploy.tls`
declares (the telemetry stack: its data, not the code's); the tests then check the files, their
modes, the X.509 contents (with openssl and cryptography), and real mutual-TLS handshakes.
"""

import datetime
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest

from bundler.plan.manifest import load_manifest
from conftest import REPO
from installer.deploy import devtls
from installer.errors import LocalEnvironmentError, UsageError
from installer.format.deployspec import Certificate, TlsSpec

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(not OPENSSL, reason="the openssl program is needed for these tests")

DEPLOY = load_manifest(str(REPO / "manifests" / "telemetry-storage.yaml")).deploy
STACK = DEPLOY.tls
NS = DEPLOY.namespace
SERVICES = ["otel-collector", "prometheus", "tempo", "loki"]
assert list(STACK.services) == SERVICES and NS == "observability"
ALL_STEMS = ["ca"] + SERVICES + ["tls", "client"]
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


def _generate(out_dir, backend, **kw):
    """devtls.generate with the chosen back end (the stack's set unless ``tls`` says otherwise); 'openssl' hides
    cryptography from the module."""
    kw.setdefault("tls", STACK)
    kw.setdefault("namespace", NS)
    with pytest.MonkeyPatch.context() as mp:
        if backend == "openssl":
            mp.setitem(sys.modules, "cryptography", None)  # `import cryptography` raises ImportError
        return devtls.generate(str(out_dir), **kw)


@pytest.fixture(scope="module", params=["cryptography", "openssl"])
def made(request, tmp_path_factory):
    backend = request.param
    out = tmp_path_factory.mktemp("devtls-" + backend) / "nested" / "tls"
    old = os.umask(0)
    try:
        result = _generate(out, backend)
    finally:
        os.umask(old)
    return backend, out, result


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """Material from a second, unrelated CA."""
    out = tmp_path_factory.mktemp("devtls-other") / "tls"
    devtls.generate(str(out), tls=STACK, namespace=NS)
    return out


def _cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def _openssl(*args):
    return subprocess.run([OPENSSL] + [str(a) for a in args], capture_output=True, text=True, timeout=30)


# --------------------------------------------------------------------------------------------
# Files


def test_backend_used(made):
    backend, _, result = made
    assert result["backend"] == backend


def test_files_and_modes_under_umask_000(made):
    _, out, result = made
    expected = sorted(s + ext for s in ALL_STEMS for ext in (".crt", ".key"))
    assert sorted(os.listdir(out)) == expected  # no staging leftovers
    assert os.stat(out).st_mode & 0o7777 == 0o700
    for name in expected:
        mode = os.stat(out / name).st_mode & 0o7777
        assert mode == (0o600 if name.endswith(".key") else 0o644), name
    assert result["files"] == [str(out / (s + ext)) for s in ALL_STEMS for ext in (".crt", ".key")]
    assert list(result["certificates"]) == ALL_STEMS


def test_keys_are_p256_pkcs8_and_match_their_certs(made):
    _, out, _ = made
    for stem in ALL_STEMS:
        pem = (out / (stem + ".key")).read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n"), stem  # PKCS#8, unencrypted
        key = load_pem_private_key(pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        cert_spki = _cert(out / (stem + ".crt")).public_key().public_bytes(Encoding.DER,
                                                                           PublicFormat.SubjectPublicKeyInfo)
        assert spki == cert_spki, stem


def test_no_key_material_in_the_result(made):
    _, out, result = made
    text = json.dumps(result)
    assert "PRIVATE" not in text
    for stem in ALL_STEMS:
        body = (out / (stem + ".key")).read_text().splitlines()[1:-1]
        for line in body:
            assert line not in text
        assert result["certificates"][stem]["key"] == str(out / (stem + ".key"))


def test_fingerprints_and_dates_reported(made):
    _, out, result = made
    for stem in ALL_STEMS:
        info = result["certificates"][stem]
        cert = _cert(out / (stem + ".crt"))
        der = cert.public_bytes(Encoding.DER)
        assert info["fingerprint"] == "SHA256:" + hashlib.sha256(der).hexdigest()
        assert info["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert info["not_before"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    span = _cert(out / "tls.crt").not_valid_after_utc - _cert(out / "tls.crt").not_valid_before_utc
    assert span == datetime.timedelta(days=365) + devtls.CLOCK_SKEW


# --------------------------------------------------------------------------------------------
# X.509 contents


def test_openssl_verify_every_cert(made):
    _, out, _ = made
    for stem in ALL_STEMS:
        proc = _openssl("verify", "-x509_strict", "-CAfile", out / "ca.crt", out / (stem + ".crt"))
        assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), (stem, proc.stdout, proc.stderr)
    for stem in SERVICES + ["tls"]:
        for purpose in ("sslserver", "sslclient"):
            proc = _openssl("verify", "-purpose", purpose, "-CAfile", out / "ca.crt", out / (stem + ".crt"))
            assert proc.returncode == 0, (stem, purpose, proc.stderr)
    assert _openssl("verify", "-purpose", "sslclient", "-CAfile", out / "ca.crt", out / "client.crt").returncode == 0
    assert _openssl("verify", "-purpose", "sslserver", "-CAfile", out / "ca.crt", out / "client.crt").returncode != 0


def test_ca_extensions(made):
    _, out, _ = made
    ca = _cert(out / "ca.crt")
    assert ca.issuer == ca.subject
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STACK.ca.cn
    bc = _ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = _ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert _ext(ca, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(ca.public_key())


def _expected_sans(stem):
    def names(s):
        return [s, s + ".observability.svc", s + ".observability.svc.cluster.local"]
    if stem == "tls":
        dns = [n for s in SERVICES for n in names(s)]
    else:
        dns = names(stem)
    return ["DNS:" + n for n in dns + ["localhost"]] + ["IP:127.0.0.1"]


def test_sans_with_openssl(made):
    _, out, result = made
    for stem in SERVICES + ["tls"]:
        proc = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", out / (stem + ".crt"))
        assert proc.returncode == 0, proc.stderr
        listed = [s.strip().replace("IP Address:", "IP:") for s in proc.stdout.splitlines()[1].split(",")]
        assert listed == _expected_sans(stem)
        assert result["certificates"][stem]["sans"] == _expected_sans(stem)
    assert result["certificates"]["client"]["sans"] == []


def test_leaf_extensions(made):
    _, out, _ = made
    ca = _cert(out / "ca.crt")
    ca_ski = _ext(ca, x509.SubjectKeyIdentifier).value.digest
    for stem in SERVICES + ["tls", "client"]:
        cert = _cert(out / (stem + ".crt"))
        assert cert.issuer == ca.subject
        assert cert.signature_hash_algorithm.name == "sha256"
        bc = _ext(cert, x509.BasicConstraints)
        assert bc.critical and not bc.value.ca
        ku = _ext(cert, x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
        eku = list(_ext(cert, x509.ExtendedKeyUsage).value)
        assert eku == ([CLIENT_AUTH] if stem == "client" else [SERVER_AUTH, CLIENT_AUTH]), stem
        assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
        assert _ext(cert, x509.SubjectKeyIdentifier).value == \
            x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
        if stem == "client":
            with pytest.raises(x509.ExtensionNotFound):
                _ext(cert, x509.SubjectAlternativeName)
        else:
            sans = _ext(cert, x509.SubjectAlternativeName).value
            listed = ["DNS:" + n for n in sans.get_values_for_type(x509.DNSName)]
            listed += ["IP:" + str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
            assert listed == _expected_sans(stem), stem
    serials = {_cert(out / (s + ".crt")).serial_number for s in ALL_STEMS}
    assert len(serials) == len(ALL_STEMS)


# --------------------------------------------------------------------------------------------
# Real mutual-TLS handshakes


def _handshake(server_cert, server_key, server_ca, client_cert, client_key, client_ca, hostname):
    """One TLS connection over loopback. Returns (server_error, client_error, reply)."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(str(server_cert), str(server_key))
    sctx.verify_mode = ssl.CERT_REQUIRED
    sctx.load_verify_locations(str(server_ca))
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
    cctx.verify_flags |= ssl.VERIFY_X509_STRICT
    cctx.load_verify_locations(str(client_ca))
    if client_cert:
        cctx.load_cert_chain(str(client_cert), str(client_key))

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]
    box = {}

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError as exc:
            box["server"] = exc
            return
        conn.settimeout(5)
        try:
            with sctx.wrap_socket(conn, server_side=True) as tls:
                peer = tls.getpeercert()
                box["peer_cn"] = dict(x[0] for x in peer["subject"])["commonName"]
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            box["server"] = exc
        finally:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    reply, client_error = b"", None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with cctx.wrap_socket(raw, server_hostname=hostname) as tls:
                reply = tls.recv(2)  # TLS 1.3: a refused client certificate shows up here
    except (ssl.SSLError, OSError) as exc:
        client_error = exc
    thread.join(10)
    listener.close()
    return box.get("server"), client_error, reply, box.get("peer_cn")


@pytest.mark.parametrize("hostname", ["loki", "otel-collector", "localhost", "tempo.observability.svc",
                                      "otel-collector.observability.svc.cluster.local"])
def test_combined_cert_serves_every_name(made, hostname):
    _, out, _ = made
    server_err, client_err, reply, peer = _handshake(out / "tls.crt", out / "tls.key", out / "ca.crt",
                                                     out / "client.crt", out / "client.key", out / "ca.crt",
                                                     hostname)
    assert (server_err, client_err, reply, peer) == (None, None, b"ok", STACK.client.cn)


def test_combined_cert_is_also_a_client_cert(made):
    """Prometheus and the collector present tls.crt as their client certificate."""
    _, out, _ = made
    server_err, client_err, reply, peer = _handshake(out / "loki.crt", out / "loki.key", out / "ca.crt",
                                                     out / "tls.crt", out / "tls.key", out / "ca.crt",
                                                     "loki.observability.svc")
    assert (server_err, client_err, reply, peer) == (None, None, b"ok", STACK.shared.cn)


def test_service_cert_does_not_serve_other_names(made):
    _, out, _ = made
    _, client_err, reply, _ = _handshake(out / "loki.crt", out / "loki.key", out / "ca.crt",
                                         out / "client.crt", out / "client.key", out / "ca.crt", "tempo")
    assert isinstance(client_err, ssl.SSLCertVerificationError) and reply == b""


def test_client_cert_cannot_serve(made):
    """client.crt has clientAuth only: a TLS client refuses it as a server certificate."""
    _, out, _ = made
    _, client_err, reply, _ = _handshake(out / "client.crt", out / "client.key", out / "ca.crt",
                                         out / "tls.crt", out / "tls.key", out / "ca.crt", "localhost")
    assert isinstance(client_err, ssl.SSLCertVerificationError) and reply == b""


def test_client_cert_from_another_ca_is_refused(made, other_ca):
    _, out, _ = made
    server_err, _, reply, _ = _handshake(out / "tls.crt", out / "tls.key", out / "ca.crt",
                                         other_ca / "client.crt", other_ca / "client.key", out / "ca.crt",
                                         "loki")
    assert isinstance(server_err, ssl.SSLError) and reply == b""
    assert "certificate" in str(server_err).lower()


def test_server_cert_from_another_ca_is_refused(made, other_ca):
    _, out, _ = made
    _, client_err, reply, _ = _handshake(other_ca / "tls.crt", other_ca / "tls.key", out / "ca.crt",
                                         out / "client.crt", out / "client.key", out / "ca.crt", "loki")
    assert isinstance(client_err, ssl.SSLCertVerificationError) and reply == b""


# --------------------------------------------------------------------------------------------
# Overwriting, arguments, environment


@pytest.mark.parametrize("backend", ["cryptography", "openssl"])
def test_existing_files_are_not_overwritten_unless_force(tmp_path, backend):
    out = tmp_path / "tls"
    first = _generate(out, backend, tls=TlsSpec(("loki",)))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UsageError) as info:
        _generate(out, backend, tls=TlsSpec(("loki",)))
    assert "tls.key" in info.value.message and "PRIVATE" not in info.value.message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    again = _generate(out, backend, tls=TlsSpec(("loki",)), force=True)
    assert again["certificates"]["tls"]["fingerprint"] != first["certificates"]["tls"]["fingerprint"]
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert (out / "tls.key").read_bytes() != before["tls.key"]
    assert os.stat(out / "tls.key").st_mode & 0o777 == 0o600


def test_one_existing_file_blocks_everything(tmp_path):
    out = tmp_path / "tls"
    out.mkdir()
    (out / "tls.key").write_text("mine")
    with pytest.raises(UsageError, match="tls.key"):
        devtls.generate(str(out))
    assert os.listdir(out) == ["tls.key"] and (out / "tls.key").read_text() == "mine"
    dangling = tmp_path / "other"
    dangling.mkdir()
    os.symlink(str(tmp_path / "nowhere"), str(dangling / "ca.crt"))
    with pytest.raises(UsageError, match="ca.crt"):
        devtls.generate(str(dangling))
    assert not (tmp_path / "nowhere").exists()


def test_existing_folder_mode_is_kept(tmp_path):
    out = tmp_path / "tls"
    out.mkdir(mode=0o750)
    os.chmod(out, 0o750)
    devtls.generate(str(out), tls=TlsSpec(("tempo",)))
    assert os.stat(out).st_mode & 0o777 == 0o750
    assert devtls.existing_files(str(out), TlsSpec(("tempo",))) == devtls.file_names(TlsSpec(("tempo",)))


@pytest.mark.parametrize("backend", ["cryptography", "openssl"])
def test_now_and_days_set_the_validity(tmp_path, backend):
    now = datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
    result = _generate(tmp_path / "tls", backend, tls=TlsSpec(("loki",)), days=10, now=now)
    assert result["not_before"] == "2031-02-03T04:00:06Z"
    assert result["not_after"] == "2031-02-13T04:05:06Z"
    for stem in ("ca", "loki", "tls", "client"):
        cert = _cert(tmp_path / "tls" / (stem + ".crt"))
        assert cert.not_valid_before_utc == now - devtls.CLOCK_SKEW
        assert cert.not_valid_after_utc == now + datetime.timedelta(days=10)
    assert list(result["certificates"]) == ["ca", "loki", "tls", "client"]


def test_bad_arguments(tmp_path):
    for names in (["Loki"], ["tls"], ["ca"], ["client"], ["loki", "loki"], "loki", ["a_b"], ["a" * 64], [7]):
        with pytest.raises(UsageError):
            devtls.generate(str(tmp_path / "x"), tls=TlsSpec(names))
    renamed = TlsSpec(("loki",), shared=Certificate("server", "x"))
    with pytest.raises(UsageError):  # a service may not take the shared certificate's file name either
        devtls.generate(str(tmp_path / "x"), tls=TlsSpec(("server",), shared=Certificate("server", "x")))
    for bad in (Certificate("ca", "a/CN=evil"), Certificate("ca", "x=y"), Certificate("ca", " padded"),
                Certificate("ca", "a" * 65), Certificate("../ca", "x"), Certificate("tls", "x")):
        with pytest.raises(UsageError):
            devtls.generate(str(tmp_path / "x"), tls=TlsSpec(ca=bad))
    for namespace in ("Observability", "a.b", "", "x" * 64):
        with pytest.raises(UsageError):
            devtls.generate(str(tmp_path / "x"), tls=renamed, namespace=namespace)
    for days in (0, -1, True, 1.5):
        with pytest.raises(UsageError):
            devtls.generate(str(tmp_path / "x"), days=days)
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="not a folder"):
        devtls.generate(str(tmp_path / "file"))
    assert not (tmp_path / "x").exists()


def test_neither_backend_available(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(LocalEnvironmentError) as info:
        devtls.generate(str(tmp_path / "tls"))
    message = info.value.message
    assert "cryptography" in message and "openssl" in message and message.count(". ") == 0
    assert not (tmp_path / "tls").exists()


def test_the_default_set_names_no_service(tmp_path):
    """Without a `deploy.tls` (or `tls` without --service): a CA, a shared certificate for localhost, a client."""
    result = devtls.generate(str(tmp_path / "tls"))
    assert sorted(os.listdir(tmp_path / "tls")) == ["ca.crt", "ca.key", "client.crt", "client.key",
                                                    "tls.crt", "tls.key"]
    assert result["certificates"]["tls"]["sans"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert result["certificates"]["ca"]["subject"] == "O=offline-bundle development,CN=offline-bundle dev CA"
    assert result["services"] == [] and result["namespace"] == "default"


def test_file_stems_and_common_names_come_from_the_spec(tmp_path):
    spec = TlsSpec(("web",), Certificate("root", "Shop Dev Root"), Certificate("server", "shop-mtls"),
                   Certificate("operator", "shop-operator"))
    result = devtls.generate(str(tmp_path / "tls"), tls=spec, namespace="shop")
    assert sorted(os.listdir(tmp_path / "tls")) == sorted(s + e for s in ("root", "web", "server", "operator")
                                                          for e in (".crt", ".key"))
    assert devtls.file_names(spec) == [s + e for s in ("root", "web", "server", "operator") for e in (".crt", ".key")]
    server = _cert(tmp_path / "tls" / "server.crt")
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "shop-mtls"
    assert server.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Shop Dev Root"
    assert result["certificates"]["server"]["sans"] == ["DNS:web", "DNS:web.shop.svc", "DNS:web.shop.svc.cluster.local",
                                                        "DNS:localhost", "IP:127.0.0.1"]
