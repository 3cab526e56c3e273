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

    from tests.helpers.registry import start_registry
    with start_registry(tmp_path, kind="token", accesslog=True) as reg:
        push(layout, "v1", reg)                       # tests.helpers.images.push (skopeo)
        api = reg.client()                            # authenticated requests-based API client
        raw, mt, digest = api.manifest("test/image", "v1")
        assert ("GET", "/v2/", 401) in reg.requests()
        assert reg.token_requests[-1].user == reg.username

The CA/keys are generated once per process (key generation is the slow part) and shared by every
registry unless ``ca=TestCA()`` is passed, e.g. to prove a client rejects a registry signed by another CA.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, NamedTuple, Optional

from .ca import TestCA, default_ca
from .client import RegistryClient, RegistryError  # noqa: F401  (re-exported: registry.client() returns one)
from .procs import free_port, orphan_safe, stop_process  # noqa: F401
from .tokenserver import TokenRequest, TokenServer

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
KINDS = ("plain", "tls", "basic", "basic-plain", "token", "token-plain")


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
                 issuer: str = "test-token-issuer", urls_allow: Optional[List[str]] = None) -> None:
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
        # validation.manifests.urls.allow: the regexps of foreign-layer URLs the registry accepts in a manifest
        # (None: the setting is absent, and distribution refuses every manifest with a foreign URL)
        self.urls_allow = urls_allow
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
        if self.urls_allow is not None:
            lines += ["validation:", "  manifests:", "    urls:", "      allow: %s" % json.dumps(self.urls_allow)]
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
    schema1 (accept signed schema-1 manifest PUTs; default False), service, issuer, urls_allow (foreign-layer
    URL regexps the registry accepts; default: the setting absent).
    """
    return Registry(tmpdir, kind=kind, accesslog=accesslog, ca=ca, **opts).start()
