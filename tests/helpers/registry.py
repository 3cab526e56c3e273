"""Real OCI registries for tests: CNCF distribution 2.8 (Debian ``docker-registry``) started per test.

Everything binds to 127.0.0.1 on a free port and is stopped by PID (the registry) or by shutting its
thread down (our token server) at teardown. Nothing here touches the network beyond loopback.

Kinds (``start_registry(tmpdir, kind=...)``):

=============== ============================================================================
``plain``        HTTP, no auth.
``tls``          HTTPS with a server cert from the test CA (SAN IP:127.0.0.1, DNS:localhost).
``basic``        HTTPS + htpasswd basic auth (bcrypt entries, as distribution requires).
``basic-plain``  HTTP + htpasswd basic auth (our client must refuse to send creds here unless
                 the host is named with ``--insecure-registry``).
``token``        HTTPS registry with ``auth.token`` + our own HTTPS token server (Docker Hub flow).
``token-plain``  The same over plain HTTP (registry and token server).
=============== ============================================================================

Example::

    from helpers.registry import start_registry
    with start_registry(tmp_path, kind="token", accesslog=True) as reg:
        push(layout, "v1", reg)                       # helpers.images.push (skopeo)
        api = reg.client()                            # authenticated requests-based API client
        raw, mt, digest = api.manifest("test/image", "v1")
        assert ("GET", "/v2/", 401) in reg.requests()
        assert reg.token_requests[-1].user == reg.username

The CA/keys are generated once per process (key generation is the slow part) and shared by every
registry unless ``ca=TestCA()`` is passed, e.g. to prove a client rejects a registry signed by another CA.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
KINDS = ("plain", "tls", "basic", "basic-plain", "token", "token-plain")


# --------------------------------------------------------------------------------------------------
# small process / port utilities (shared with dockerd.py and faults.py)

def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (callers retry on EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def orphan_safe(argv: List[str]) -> List[str]:
    """Prefix argv so the child gets SIGTERM if the test process dies (setpriv --pdeathsig).

    Only from the main thread: Linux sends the parent-death signal when the *thread* that forked
    exits, and a helper thread ending must not take a registry or dockerd with it.
    """
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "TERM", "--"] + list(argv)
    return list(argv)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal one child process by its PID, wait for it, SIGKILL if it does not go. Never a broad kill."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --------------------------------------------------------------------------------------------------
# test PKI

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


# --------------------------------------------------------------------------------------------------
# token server

class TokenRequest(NamedTuple):
    user: Optional[str]   # None = anonymous
    scope: str            # the scope parameters joined by a space ("" when none)


def _parse_scope(scope: str) -> Optional[Tuple[str, str, List[str]]]:
    """'repository:a/b:pull,push' -> ('repository', 'a/b', ['pull', 'push']).

    The name sits between the first and the last colon (a type may carry '(class)', names no colon).
    """
    if scope.count(":") < 2:
        return None
    typ, rest = scope.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    return typ, name, [a for a in actions.split(",") if a]


class TokenServer:
    """Issues registry bearer tokens (RS256 JWT with x5c), the way Docker Hub's auth service does.

    Policy: anonymous -> only ``pull`` of what was asked (nothing when ``anonymous_pull=False``);
    ``username``/``password`` via basic auth -> every action asked for, on any repository (so
    ``pull`` on another repository for cross-repo mounts works); wrong credentials -> 401.

    GET with basic auth (the Docker flow) and POST ``grant_type=password`` (the OAuth2 form) are
    both served; the response carries ``token``, ``access_token``, ``expires_in`` and ``issued_at``.
    Every request is recorded in ``token_requests`` as (user or None, scopes joined by a space).

    Mutable at run time, for expiry tests: ``ttl`` (``expires_in`` and exp - iat) and ``exp_skew``
    (seconds added to the exp claim only). distribution 2.8 accepts tokens up to 60 s past exp
    (its leeway), so a test that needs the *registry* to reject a token sets ``exp_skew = -120``;
    a test of a client's own refresh logic sets a small ``ttl`` and watches ``token_requests``.
    """

    def __init__(self, ca: TestCA, service: str, issuer: str, username: str, password: str,
                 ttl: int = 300, anonymous_pull: bool = True, tls: Optional[Tuple[Path, Path]] = None) -> None:
        self.ca, self.service, self.issuer = ca, service, issuer
        self.username, self.password = username, password
        self.ttl, self.exp_skew = ttl, 0
        self.anonymous_pull = anonymous_pull
        self.token_requests: List[TokenRequest] = []
        self.granted: List[dict] = []    # one entry per issued token: {user, access}
        self._key, self._cert = ca.token_signer()
        self._x5c = [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]
        self._lock = threading.Lock()

        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep pytest output clean
                pass

            def do_GET(self):
                outer._handle(self)

            def do_POST(self):
                outer._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            # handshake in the handler thread, so a silent client can't block accept()
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            self.scheme = "https"
        self.port = self._httpd.server_address[1]
        self.realm = "%s://127.0.0.1:%d/token" % (self.scheme, self.port)
        # poll_interval 0.05: shutdown() returns in 50 ms instead of 500
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="token-server",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- internals
    def _sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": self._x5c}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(sig)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        if url.path != "/token":
            h.close_connection = True   # an unread POST body must not be parsed as the next request
            return self._reply(h, 404, {"error": "not found"})
        q = urllib.parse.parse_qs(url.query)
        auth = h.headers.get("Authorization", "")
        form_creds = None
        if h.command == "POST":
            # OAuth2 form (docker/distribution token spec "oauth"): grant_type=password with
            # username/password in the body; refresh tokens are not supported (-> 400)
            length = int(h.headers.get("Content-Length") or 0)
            q = urllib.parse.parse_qs(h.rfile.read(length).decode(errors="replace"))
            if q.get("grant_type", [""])[0] != "password":
                return self._reply(h, 400, {"error": "unsupported_grant_type"})
            form_creds = (q.get("username", [""])[0], q.get("password", [""])[0])
        scopes = q.get("scope", [])
        # some clients send several scopes space-separated in one parameter
        scopes = [s for item in scopes for s in item.split(" ") if s]
        user = None
        if auth or form_creds:
            ok = False
            if form_creds:
                user = form_creds[0]
                ok = form_creds == (self.username, self.password)
            elif auth.lower().startswith("basic "):
                try:
                    u, _, p = base64.b64decode(auth[6:].strip()).decode().partition(":")
                    ok = (u == self.username and p == self.password)
                    user = u
                except Exception:
                    ok = False
            with self._lock:
                self.token_requests.append(TokenRequest(user, " ".join(scopes)))
            if not ok:
                return self._reply(h, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                   {"WWW-Authenticate": 'Basic realm="test-token"'})
        else:
            with self._lock:
                self.token_requests.append(TokenRequest(None, " ".join(scopes)))
        access = []
        for s in scopes:
            parsed = _parse_scope(s)
            if not parsed:
                continue
            typ, name, actions = parsed
            if user is None:
                actions = [a for a in actions if a == "pull"] if self.anonymous_pull else []
            if actions:
                access.append({"type": typ, "name": name, "actions": actions})
        now = int(time.time())
        with self._lock:
            ttl, skew = self.ttl, self.exp_skew
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + ttl + skew,
                  "nbf": now - 1, "iat": now, "jti": secrets.token_hex(16), "access": access}
        token = self._sign(claims)
        with self._lock:
            self.granted.append({"user": user, "access": access})
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._reply(h, 200, {"token": token, "access_token": token, "expires_in": ttl, "issued_at": issued})

    @staticmethod
    def _reply(h, status: int, body: dict, headers: Optional[dict] = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)


# --------------------------------------------------------------------------------------------------
# the registry

class Request(NamedTuple):
    method: str
    path: str     # request URI as logged (includes the query string)
    status: int


_ACCESS_RE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) ')


class Registry:
    """A running ``docker-registry serve`` (see the module docstring). Use ``start_registry``.

    Attributes: ``host`` ('127.0.0.1:PORT'), ``url``, ``scheme``, ``kind``, ``pid``;
    ``ca_file`` (test CA PEM, TLS kinds, else None) and ``cert_dir`` (holds only ``ca.crt``: skopeo
    ``--*-cert-dir``); ``username``/``password``/``creds`` (auth kinds, else None); ``log_path``
    (access log, parsed by ``requests()``), ``error_log_path`` (the registry's own log), ``dir``
    (config, data, certs); ``token_server`` (token kinds: ``realm``, ``ttl``, ``exp_skew``,
    ``token_requests``, ``granted``).
    """

    def __init__(self, tmpdir, kind: str = "plain", accesslog: bool = False, ca: Optional[TestCA] = None,
                 username: str = "tester", password: str = "s3cret", token_ttl: int = 300,
                 anonymous_pull: bool = True, schema1: bool = False, service: str = "test-registry",
                 issuer: str = "test-token-issuer") -> None:
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % (KINDS,))
        self.kind = kind
        self.accesslog = accesslog
        self.tls = kind in ("tls", "basic", "token")
        self.scheme = "https" if self.tls else "http"
        self.auth = {"basic": "basic", "basic-plain": "basic", "token": "token", "token-plain": "token"}.get(kind)
        self.username = username if self.auth else None
        self.password = password if self.auth else None
        self._ca = ca or (default_ca() if (self.tls or self.auth == "token") else None)
        self.schema1 = schema1
        self.service, self.issuer = service, issuer
        self._token_ttl, self._anonymous_pull = token_ttl, anonymous_pull
        base = Path(tmpdir)
        base.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="registry-%s-" % kind, dir=str(base)))
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "access.log"        # stdout of the registry: the access log
        self.error_log_path = self.dir / "registry.log"  # stderr: the application log
        self.config_path = self.dir / "config.yml"
        self.ca_file: Optional[Path] = None
        self.cert_dir: Optional[Path] = None
        self.token_server: Optional[TokenServer] = None
        self.proc: Optional[subprocess.Popen] = None
        self._files: list = []
        self._startup_lines = 0
        self.port = 0

    # -- public API
    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    @property
    def host(self) -> str:
        return "127.0.0.1:%d" % self.port

    @property
    def url(self) -> str:
        return "%s://%s" % (self.scheme, self.host)

    @property
    def token_requests(self) -> List[TokenRequest]:
        return self.token_server.token_requests if self.token_server else []

    @property
    def creds(self) -> Optional[str]:
        """'user:password' (skopeo --creds style) or None."""
        return "%s:%s" % (self.username, self.password) if self.username else None

    def verify(self):
        """The ``verify=`` value for requests: the CA file for TLS kinds, else True."""
        return str(self.ca_file) if self.ca_file else True

    def client(self, username: Optional[str] = "default", password: Optional[str] = None) -> "RegistryClient":
        """A small authenticated HTTP API client (``username=None`` for anonymous)."""
        if username == "default":
            username, password = self.username, self.password
        return RegistryClient(self, username, password)

    def docker_config(self, folder, username: Optional[str] = None, password: Optional[str] = None) -> Path:
        """Write (or add to) ``folder/config.json`` with this registry's credentials, as ``docker login``
        would; point DOCKER_CONFIG at ``folder``. Returns the file path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.json"
        cfg = json.loads(path.read_text()) if path.exists() else {}
        user = username or self.username
        pw = password if password is not None else self.password
        if user is None:
            raise ValueError("this registry kind has no credentials; pass username/password")
        auth = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
        cfg.setdefault("auths", {})[self.host] = {"auth": auth}
        path.write_text(json.dumps(cfg, indent=2))
        os.chmod(path, 0o600)
        return path

    def requests(self, settle: float = 0.02, include_startup: bool = False) -> List[Request]:
        """The access log as (method, path, status) tuples, oldest first (needs accesslog=True).

        The readiness probes made by ``start()`` are left out unless ``include_startup``.
        """
        if not self.accesslog:
            raise RuntimeError("start the registry with accesslog=True to count requests")
        # the registry writes a line as its handler returns, a hair after a client may have finished;
        # wait until the file stops growing (usually one settle period)
        deadline = time.monotonic() + 2
        size = -1
        while time.monotonic() < deadline:
            cur = self.log_path.stat().st_size if self.log_path.exists() else 0
            if cur == size:
                break
            size = cur
            time.sleep(settle)
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            m = _ACCESS_RE.match(line)
            if m:
                out.append(Request(m.group(1), m.group(2), int(m.group(3))))
        return out if include_startup else out[self._startup_lines:]

    def mark(self) -> int:
        """Number of logged requests so far; pass to ``requests_since`` to see only later ones."""
        return len(self.requests())

    def requests_since(self, mark: int) -> List[Request]:
        return self.requests()[mark:]

    @staticmethod
    def blob_fetches(reqs: List[Request]) -> List[Request]:
        """GETs of blobs (successful or not) in a list from ``requests()``."""
        return [r for r in reqs if r.method == "GET" and "/blobs/sha256:" in r.path]

    @staticmethod
    def writes(reqs: List[Request]) -> List[Request]:
        """Requests that create or change something (POST/PUT/PATCH/DELETE)."""
        return [r for r in reqs if r.method in ("POST", "PUT", "PATCH", "DELETE")]

    def stop(self) -> None:
        """Stop the registry (SIGTERM by PID, then SIGKILL) and the token server. Idempotent."""
        self._stop_process()
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "Registry(kind=%s, url=%s, pid=%s)" % (self.kind, self.url, self.pid)

    # -- internals
    def start(self) -> "Registry":
        self.data_dir.mkdir(exist_ok=True)
        lines = ["version: 0.1",
                 "log:",
                 "  level: warn",
                 "  accesslog: {disabled: %s}" % ("false" if self.accesslog else "true"),
                 "storage:",
                 "  filesystem: {rootdirectory: %s}" % json.dumps(str(self.data_dir)),
                 "  delete: {enabled: true}",
                 "  maintenance: {uploadpurging: {enabled: false}}"]
        if self.schema1:
            lines += ["compatibility: {schema1: {enabled: true}}"]
        if self.tls or self.auth == "token":
            # token kinds need the CA even over plain HTTP: it is the registry's rootcertbundle
            certs = self._ca.write(self.dir / "certs")
            if self.tls:
                self.ca_file = certs["ca"]
                # skopeo's --cert-dir treats *.key without a matching *.cert as an error: only ca.crt here
                self.cert_dir = self.dir / "certdir"
                self.cert_dir.mkdir(exist_ok=True)
                shutil.copy(certs["ca"], self.cert_dir / "ca.crt")
        if self.auth == "basic":
            out = subprocess.run(["htpasswd", "-Bbn", self.username, self.password], check=True,
                                 capture_output=True, text=True).stdout.strip()
            (self.dir / "htpasswd").write_text(out + "\n")
            lines += ["auth:", "  htpasswd: {realm: test-registry, path: %s}" % json.dumps(str(self.dir / "htpasswd"))]
        elif self.auth == "token":
            tls = (self.dir / "certs" / "server.crt", self.dir / "certs" / "server.key") if self.tls else None
            self.token_server = TokenServer(self._ca, self.service, self.issuer, self.username, self.password,
                                            ttl=self._token_ttl, anonymous_pull=self._anonymous_pull, tls=tls)
            lines += ["auth:", "  token:",
                      "    realm: %s" % self.token_server.realm,
                      "    service: %s" % self.service,
                      "    issuer: %s" % self.issuer,
                      "    rootcertbundle: %s" % json.dumps(str(self.dir / "certs" / "ca.crt"))]
        last_err = ""
        for _attempt in range(5):
            self.port = free_port()
            http_lines = ["http:", "  addr: 127.0.0.1:%d" % self.port,
                          "  secret: test-secret-%s" % secrets.token_hex(8)]
            if self.tls:
                certs = self.dir / "certs"
                http_lines += ["  tls: {certificate: %s, key: %s}" % (json.dumps(str(certs / "server.crt")),
                                                                      json.dumps(str(certs / "server.key")))]
            self.config_path.write_text("\n".join(lines + http_lines) + "\n")
            out = open(self.log_path, "ab")
            err = open(self.error_log_path, "ab")
            self._files = [out, err]
            self.proc = subprocess.Popen(orphan_safe([REGISTRY_BIN, "serve", str(self.config_path)]),
                                         stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            if self._wait_up():
                # the probe's log line is written before its response is flushed: count is exact
                if self.accesslog:
                    self._startup_lines = sum(1 for line in self.log_path.read_text(errors="replace").splitlines()
                                              if _ACCESS_RE.match(line))
                return self
            last_err = self.error_log_path.read_text(errors="replace")[-2000:]
            self._stop_process()
            if "address already in use" not in last_err:
                break
        self.stop()
        raise RuntimeError("docker-registry (%s) did not start: %s" % (self.kind, last_err))

    def _stop_process(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        for f in self._files:
            f.close()
        self._files = []

    def _wait_up(self, timeout: float = 15.0) -> bool:
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if ctx:
                    conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=ctx)
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/v2/")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 401):
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.01)
        return False


def start_registry(tmpdir, kind: str = "plain", accesslog: bool = False, ca: Optional[TestCA] = None,
                   **opts) -> Registry:
    """Start a registry; returns it running. Also a context manager (``with start_registry(...) as r``).

    opts: username, password, token_ttl (s, default 300), anonymous_pull (token kinds, default True),
    schema1 (accept signed schema-1 manifest PUTs; default False), service, issuer.
    """
    return Registry(tmpdir, kind=kind, accesslog=accesslog, ca=ca, **opts).start()


# --------------------------------------------------------------------------------------------------
# a minimal registry API client for assertions and hand-made uploads (requests-based)

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')

ACCEPT_ALL = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
])


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryError(Exception):
    def __init__(self, resp: requests.Response) -> None:
        super().__init__("%s %s -> %d %s" % (resp.request.method, resp.request.url, resp.status_code, resp.text[:500]))
        self.response = resp
        self.status = resp.status_code


class RegistryClient:
    """Talks to a test registry with the Distribution API, handling basic and bearer challenges.

    Intentionally simple (one retry after a 401, tokens cached per scope): it is a test oracle and
    seeding tool, not the product's client.
    """

    def __init__(self, registry: Registry, username: Optional[str], password: Optional[str]) -> None:
        self.registry = registry
        self.base = registry.url
        self.username, self.password = username, password
        self.session = requests.Session()
        # trust_env=False: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on dev machines) would otherwise
        # override session.verify, and *_PROXY must never divert loopback test traffic
        self.session.trust_env = False
        self.session.verify = registry.verify()
        self._auth_header: Optional[str] = None
        self._tokens: Dict[str, str] = {}

    def _authorize(self, challenge: str) -> Optional[str]:
        scheme = challenge.split(" ", 1)[0].lower()
        params = dict(_CHALLENGE_RE.findall(challenge))
        if scheme == "basic":
            if self.username is None:
                return None
            return "Basic " + base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        if scheme == "bearer":
            scope = params.get("scope", "")
            if scope in self._tokens:
                return "Bearer " + self._tokens[scope]
            q = {"service": params.get("service", "")}
            if scope:
                q["scope"] = scope
            auth = (self.username, self.password) if self.username else None
            r = self.session.get(params["realm"], params=q, auth=auth, timeout=30)
            if r.status_code != 200:
                raise RegistryError(r)
            body = r.json()
            self._tokens[scope] = body.get("token") or body["access_token"]
            return "Bearer " + self._tokens[scope]
        return None

    def request(self, method: str, path_or_url: str, ok=(200, 201, 202, 204, 206, 307), **kw) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        headers = dict(kw.pop("headers", {}) or {})
        kw.setdefault("timeout", 60)
        kw.setdefault("allow_redirects", False)
        if self._auth_header:
            headers.setdefault("Authorization", self._auth_header)
        r = self.session.request(method, url, headers=headers, **kw)
        if r.status_code == 401 and "WWW-Authenticate" in r.headers:
            value = self._authorize(r.headers["WWW-Authenticate"])
            if value:
                if value.startswith("Basic"):
                    self._auth_header = value
                headers["Authorization"] = value
                data = kw.get("data")
                if hasattr(data, "seek"):
                    data.seek(0)
                r = self.session.request(method, url, headers=headers, **kw)
        if ok and r.status_code not in ok:
            raise RegistryError(r)
        return r

    # -- conveniences
    def manifest(self, repo: str, ref: str, accept: str = ACCEPT_ALL) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest as the registry serves it."""
        r = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": accept})
        return r.content, r.headers.get("Content-Type", ""), sha256_digest(r.content)

    def has_manifest(self, repo: str, ref: str) -> bool:
        r = self.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref), ok=None, headers={"Accept": ACCEPT_ALL})
        return r.status_code == 200

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), data=data,
                         headers={"Content-Type": media_type})
        return r.headers.get("Docker-Content-Digest") or sha256_digest(data)

    def has_blob(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=None).status_code == 200

    def blob(self, repo: str, digest: str) -> bytes:
        r = self.request("GET", "/v2/%s/blobs/%s" % (repo, digest), allow_redirects=True)
        return r.content

    def upload_blob(self, repo: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT ?digest=); returns the digest."""
        digest = sha256_digest(data)
        if self.has_blob(repo, digest):
            return digest
        r = self.request("POST", "/v2/%s/blobs/uploads/" % repo)
        loc = urllib.parse.urljoin(self.base + "/", r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        self.request("PUT", loc + sep + "digest=" + digest, data=data,
                     headers={"Content-Type": "application/octet-stream"})
        return digest

    def tags(self, repo: str) -> List[str]:
        r = self.request("GET", "/v2/%s/tags/list" % repo)
        return r.json().get("tags") or []

    def delete_manifest(self, repo: str, digest: str) -> None:
        self.request("DELETE", "/v2/%s/manifests/%s" % (repo, digest))
