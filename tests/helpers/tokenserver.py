"""A Docker-Hub-style bearer token server (the `auth.token` flow of distribution), on loopback.

Its tokens are signed by the test CA.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from .ca import TestCA, _b64url


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
