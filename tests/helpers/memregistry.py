"""An in-memory OCI Distribution registry behind the Transport seam, with fault injection: a fake for unit tests.

It is a ``Transport`` (installer/site/transport.py): hand it to ``Registry(transport=...)``, ``SitePush``,
``Puller``, ``SourceOptions`` (build) or ``DeployOptions`` (install), and every request the client makes is
answered here, in memory, in microseconds. The real-registry tests (tests/integration, tests/adversarial) stay
as they are; this one exists so push, pull and the install phases can be unit-tested, faults included.

What it serves (distribution-spec v1.1, the part our client speaks):

=============================================== ===============================================================
``GET  /v2/``                                   200 (401 and a challenge when ``auth`` is on)
``HEAD/GET /v2/<name>/blobs/<digest>``          200; ``Range: bytes=N-`` gives 206; 404 BLOB_UNKNOWN
                                                (``blob_redirect="[SCHEME://]HOST"``: a GET is sent there, 307)
``POST /v2/<name>/blobs/uploads/``              202 and an absolute Location with a query (a client must keep it)
``POST ...uploads/?mount=<digest>&from=<repo>`` 201 when <repo> holds the blob, else 202: an upload, as the spec says
``PATCH <location>`` (``Content-Range: a-b``)   202, Location, Range; 416 when a-b does not continue the upload
``PUT <location>?digest=<digest>``              201; 400 DIGEST_INVALID when the bytes have another sha256;
                                                404 BLOB_UPLOAD_UNKNOWN for an upload already finished
``HEAD/GET/PUT /v2/<name>/manifests/<ref>``     by tag or digest; a PUT checks its digest and that every blob or
                                                child manifest it names is in <name> (400 MANIFEST_BLOB_UNKNOWN)
``GET  /v2/<name>/tags/list``                   the tags, sorted; ``?n=`` (capped at ``tags_page``) and ``?last=``
                                                page them, with a Link header to the next page
``GET  /v2/<name>/referrers/<digest>``          ``referrers_api=True``: the OCI 1.1 referrers index (a PUT of a
                                                manifest with a subject answers OCI-Subject); else 404 text, as
                                                distribution 2.8 answers
(foreign layers)                                a manifest whose foreign layers have URLs is refused (500,
                                                UNKNOWN, as distribution 2.8) unless ``urls_allow`` (a regexp)
                                                matches them all; their blobs are not required
=============================================== ===============================================================

``auth="basic"``: 401 with a Basic challenge until the right ``username``/``password`` come. ``auth="bearer"``:
401 with a Bearer challenge naming the token service on ``token_host`` (served here too); tokens are granted per
repository and action (anonymous callers get pull only, and only with ``anonymous_pull``) and expire after
``token_ttl`` seconds (``expire_tokens()`` ends them now). ``tls=False`` is a plain-HTTP registry (https to it
raises NotTLS, like a real one); ``tls=True`` answers https only. Any other host: connection refused.

Faults, as rules like helpers/faults.py's (both use helpers/rules.py): ``reg.fail(action, method=, path=, nth=,
times=)`` (``path`` is a regex searched in path+query; ``nth`` counts matching requests from 1; neither ``nth`` nor
``times``: always; a delay combines with the first other rule that applies, and only the rules applied count as
fired).

========================= =========================================================================
``status(code, ...)``     answer ``code`` instead (``retry_after=`` adds Retry-After; ``headers=``, ``body=``)
``reset(after=False)``    the connection breaks before the registry saw the request (TransportError);
                          ``after=True``: it handled it (state changed) and the answer is lost
``truncate(n)``           the body ends after n bytes, as http.client reports a server hanging up early
``cut(n)``                n body bytes, then the connection breaks (read raises TransportError)
``corrupt(offset)``       the body byte at ``offset`` flipped: bytes that do not have their digest
``digest_header(value)``  Docker-Content-Digest says ``value``
``delay(seconds)``        wait that long (real time) first; combines with one other matching rule
``timeout()``             the client's read timeout: TransportError("timed out")
``untrusted()``           the TLS certificate does not verify: CertificateError
========================= =========================================================================

Example::

    reg = MemRegistry("site.test")
    sleeps = Sleeps()
    client = Registry(reg.host, insecure=True, transport=reg, policy=RetryPolicy(sleep=sleeps))
    reg.fail(status(503, retry_after=2), method="PUT", path=r"/blobs/uploads/", nth=1)
    ... push ...
    assert sleeps.calls == [2.0] and reg.tags("team/app") == {"1.0": digest}
"""

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from installer.site.retry import RetryPolicy
from installer.site.transport import CertificateError, NotTLS, Request, Response, TransportError
from tests.helpers.rules import Rule, header_value, pick, status_parts

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX_TYPES = (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")

_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>blobs/uploads/|blobs/|manifests/|tags/list|referrers/)(?P<rest>.*)$")
FOREIGN_TYPES = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                 "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
Headers = List[Tuple[str, str]]
Answer = Tuple[int, Headers, bytes]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _error(status: int, code: str, message: str, headers: Optional[Headers] = None) -> Answer:
    body = _json({"errors": [{"code": code, "message": message}]})
    return status, (headers or []) + [("Content-Type", "application/json")], body


# --------------------------------------------------------------------------------------------------
# faults

@dataclass(frozen=True)
class Action:
    kind: str
    code: int = 0
    n: int = 0
    seconds: float = 0.0
    headers: Tuple[Tuple[str, str], ...] = ()
    body: bytes = b""
    value: str = ""
    after: bool = False

    def __str__(self) -> str:
        return {"status": "status(%d)" % self.code, "reset": "reset(after=%s)" % self.after,
                "truncate": "truncate(%d)" % self.n, "cut": "cut(%d)" % self.n, "corrupt": "corrupt(%d)" % self.n,
                "digest": "digest_header(%s)" % self.value, "delay": "delay(%s)" % self.seconds,
                "timeout": "timeout()", "untrusted": "untrusted()"}[self.kind]


def status(code: int, retry_after: Optional[Union[int, str]] = None, headers: Optional[Dict[str, str]] = None,
           body: bytes = b"") -> Action:
    hdrs, body = status_parts(code, retry_after, headers, body)
    return Action("status", code=code, headers=hdrs, body=body)


def reset(after: bool = False) -> Action:
    return Action("reset", after=after)


def truncate(nbytes: int) -> Action:
    return Action("truncate", n=nbytes)


def cut(nbytes: int) -> Action:
    return Action("cut", n=nbytes)


def corrupt(byte_offset: int) -> Action:
    return Action("corrupt", n=byte_offset)


def digest_header(value: str) -> Action:
    return Action("digest", value=value)


def delay(seconds: float) -> Action:
    return Action("delay", seconds=seconds)


def timeout() -> Action:
    return Action("timeout")


def untrusted() -> Action:
    return Action("untrusted")


@dataclass
class Seen:
    """One request as the fake saw it, and what became of it."""
    method: str
    scheme: str
    netloc: str
    target: str
    headers: Dict[str, str]
    body_size: int = 0
    status: int = 0                # 0: no answer (a reset, a timeout, a body that raised)
    fault: Optional[str] = None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> Optional[str]:
        return header_value(self.headers, name)

    @property
    def authorization(self) -> Optional[str]:
        return self.header("Authorization")


class Sleeps:
    """A RetryPolicy.sleep that records each wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: List[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def quick_policy(sleeps: Optional[Sleeps] = None, retries: int = 5) -> RetryPolicy:
    """The default policy (same statuses, backoff and caps) whose waits are recorded, not slept."""
    return RetryPolicy(retries=retries, sleep=sleeps if sleeps is not None else Sleeps())


# --------------------------------------------------------------------------------------------------
# the registry

@dataclass
class _Upload:
    repo: str
    data: bytearray = field(default_factory=bytearray)
    done: bool = False


class MemRegistry:
    """An OCI registry in memory that is also a Transport. Thread-safe."""

    def __init__(self, host: str = "registry.test", *, tls: bool = False, auth: Optional[str] = None,
                 username: str = "user", password: str = "secret-password", token_host: Optional[str] = None,
                 token_ttl: float = 300.0, anonymous_pull: bool = False, blob_redirect: Optional[str] = None,
                 referrers_api: bool = False, urls_allow: Optional[str] = None,
                 tags_page: Optional[int] = None) -> None:
        if auth not in (None, "basic", "bearer"):
            raise ValueError("auth is None, 'basic' or 'bearer'")
        self.host = host
        self.tls = tls
        # referrers_api: OCI 1.1's GET /v2/<name>/referrers/<digest> (else 404, as distribution 2.8 answers) and
        # the OCI-Subject header on a PUT of a manifest with a subject
        self.referrers_api = referrers_api
        # urls_allow: a regexp foreign-layer URLs must match (distribution's validation.manifests.urls.allow);
        # None: a manifest with a foreign layer is refused as distribution 2.8 refuses it (500, UNKNOWN errors)
        self.urls_allow = re.compile(urls_allow) if urls_allow is not None else None
        self.tags_page = tags_page  # the most tags one page of tags/list holds (None: all of them)
        self.auth = auth
        self.username = username
        self.password = password
        self.token_host = token_host or "auth." + host.split(":", 1)[0]
        self.token_ttl = token_ttl
        self.anonymous_pull = anonymous_pull
        # blob_redirect: "HOST" (same scheme as the registry) or "http://HOST" / "https://HOST"
        scheme, _, netloc = (blob_redirect or "").rpartition("://")
        self.blob_redirect = netloc or None
        self._storage_scheme = scheme or ("https" if tls else "http")
        self.scheme = "https" if tls else "http"
        self.log: List[Seen] = []
        self.token_requests: List[Tuple[Optional[str], str]] = []  # (user or None, scope)
        self._rules: List[Rule] = []
        self._lock = threading.RLock()
        self._blobs: Dict[str, bytes] = {}
        self._links: Dict[str, Set[str]] = {}
        self._manifests: Dict[str, Dict[str, Tuple[bytes, str]]] = {}
        self._tags: Dict[str, Dict[str, str]] = {}
        self._uploads: Dict[str, _Upload] = {}
        self._tokens: Dict[str, Tuple[Set[str], float]] = {}
        self._state = 0

    def __repr__(self) -> str:
        return "MemRegistry(%s, tls=%s, auth=%s)" % (self.host, self.tls, self.auth)

    # --- seeding and looking (no request, no fault) -------------------------------------------------
    def put_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        with self._lock:
            self._blobs[digest] = bytes(data)
            self._links.setdefault(repo, set()).add(digest)
        return digest

    def put_manifest(self, repo: str, data: bytes, media_type: str, tag: Optional[str] = None) -> str:
        digest = sha256(data)
        with self._lock:
            self._manifests.setdefault(repo, {})[digest] = (bytes(data), media_type)
            if tag:
                self._tags.setdefault(repo, {})[tag] = digest
        return digest

    def has_blob(self, repo: str, digest: str) -> bool:
        with self._lock:
            return digest in self._links.get(repo, set())

    def blob(self, digest: str) -> bytes:
        with self._lock:
            return self._blobs[digest]

    def blobs(self, repo: str) -> Set[str]:
        with self._lock:
            return set(self._links.get(repo, set()))

    def manifest(self, repo: str, reference: str) -> Optional[Tuple[bytes, str]]:
        with self._lock:
            digest = reference if _DIGEST.match(reference) else self._tags.get(repo, {}).get(reference)
            return self._manifests.get(repo, {}).get(digest or "")

    def manifests(self, repo: str) -> Set[str]:
        with self._lock:
            return set(self._manifests.get(repo, {}))

    def tags(self, repo: str) -> Dict[str, str]:
        with self._lock:
            return dict(self._tags.get(repo, {}))

    def repositories(self) -> List[str]:
        with self._lock:
            return sorted(set(self._links) | set(self._manifests))

    def requests(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Seen]:
        with self._lock:
            return [s for s in self.log if (method is None or s.method == method)
                    and (path is None or re.search(path, s.target))]

    def writes(self) -> List[Seen]:
        """Requests that change something (POST, PATCH, PUT, DELETE) and were answered."""
        return [s for s in self.requests() if s.method in ("POST", "PATCH", "PUT", "DELETE") and s.status]

    def fail(self, action: Action, method: Optional[str] = None, path: Optional[str] = None,
             nth: Union[int, Iterable[int], None] = None, times: Optional[int] = None) -> Rule:
        rule = Rule(action, method, path, nth, times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._rules = []

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {t: (granted, 0.0) for t, (granted, _) in self._tokens.items()}

    # --- images, for seeding ------------------------------------------------------------------------
    def seed_image(self, repo: str, tag: Optional[str], layers: Sequence[bytes],
                   platform: Tuple[str, str] = ("linux", "amd64"), media_type: str = OCI_MANIFEST) -> "Seeded":
        """An image manifest with a config for ``platform`` and these layers, pushed (and tagged)."""
        config = _json({"architecture": platform[1], "os": platform[0],
                        "rootfs": {"type": "layers", "diff_ids": [sha256(b) for b in layers]}})
        digests = [self.put_blob(repo, b) for b in layers]
        descs = [{"mediaType": OCI_LAYER, "digest": d, "size": len(b)} for d, b in zip(digests, layers)]
        doc = {"schemaVersion": 2, "mediaType": media_type,
               "config": {"mediaType": OCI_CONFIG, "digest": self.put_blob(repo, config), "size": len(config)},
               "layers": descs}
        data = _json(doc)
        digest = self.put_manifest(repo, data, media_type, tag)
        return Seeded(repo, tag, digest, media_type, data, [sha256(config)] + digests,
                      platform="%s/%s" % platform)

    def seed_index(self, repo: str, tag: Optional[str], platforms: Sequence[Tuple[str, str]],
                   layer: bytes = b"shared base layer\n") -> "Seeded":
        """An index over one image per platform (each with ``layer`` and one layer of its own), pushed."""
        children = [self.seed_image(repo, None, [layer, ("only on %s/%s\n" % p).encode()], p) for p in platforms]
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": c.media_type, "digest": c.digest, "size": len(c.data),
             "platform": {"os": p[0], "architecture": p[1]}} for c, p in zip(children, platforms)]}
        data = _json(doc)
        digest = self.put_manifest(repo, data, OCI_INDEX, tag)
        return Seeded(repo, tag, digest, OCI_INDEX, data, sorted({b for c in children for b in c.blobs}),
                      children=children)

    # --- the Transport ------------------------------------------------------------------------------
    def send(self, request: Request) -> Response:
        seen = Seen(request.method, request.scheme, request.netloc, request.target, dict(request.headers))
        with self._lock:
            self.log.append(seen)
        body = _read_body(request.body)  # the client streams its body first, whatever happens next
        seen.body_size = len(body)
        if request.netloc not in (self.host, self.token_host, self.blob_redirect):
            seen.fault = "refused"
            raise TransportError("%s %s: [Errno 111] Connection refused" % (request.method, request.netloc))
        with self._lock:
            delays, action = pick(self._rules, request.method, request.target)
        for each in delays:
            time.sleep(each.seconds)
        if action is not None:
            seen.fault = str(action)
            if action.kind == "reset" and not action.after:
                raise TransportError("%s %s: [Errno 104] Connection reset by peer" % (request.method, request.netloc))
            if action.kind == "timeout":
                raise TransportError("%s %s: timed out" % (request.method, request.netloc))
            if action.kind == "untrusted":
                raise CertificateError(request.netloc, "self-signed certificate in certificate chain")
            if action.kind == "status":
                seen.status = action.code
                return _response(request, action.code, list(action.headers), action.body, None)
        if request.netloc == self.blob_redirect:
            answer = self._storage(request)  # speaks whatever scheme the redirect named
        elif request.scheme == "https" and not self.tls:
            raise NotTLS(request.netloc, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
        elif request.scheme == "http" and self.tls:
            answer = _error(400, "BAD_REQUEST", "Client sent an HTTP request to an HTTPS server.")
        elif request.netloc == self.token_host:
            answer = self._token_service(request)
        else:
            declared = request.header("Content-Length")
            if declared is not None and int(declared) != len(body):
                answer = _error(400, "BAD_REQUEST",
                                "the body is %d bytes, Content-Length says %s" % (len(body), declared))
            else:
                with self._lock:
                    answer = self._registry(request, body)
        if action is not None and action.kind == "reset":  # after=True: done, and the answer is lost
            raise TransportError("%s %s: [Errno 104] Connection reset by peer" % (request.method, request.netloc))
        code, headers, data = answer
        if action is not None and action.kind == "digest":
            headers = [(k, v) for k, v in headers if k.lower() != "docker-content-digest"]
            headers.append(("Docker-Content-Digest", action.value))
        if action is not None and action.kind == "corrupt" and action.n < len(data):
            data = data[:action.n] + bytes([data[action.n] ^ 0xFF]) + data[action.n + 1:]
        seen.status = code
        return _response(request, code, headers, data, action)

    # --- auth -------------------------------------------------------------------------------------------
    def _challenge(self, name: Optional[str], actions: str) -> Answer:
        if self.auth == "basic":
            header = 'Basic realm="memregistry"'
        else:
            header = 'Bearer realm="%s://%s/token",service="%s"' % (self.scheme, self.token_host, self.host)
            if name:
                header += ',scope="repository:%s:%s"' % (name, actions)
        return _error(401, "UNAUTHORIZED", "authentication required", [("WWW-Authenticate", header)])

    def _user(self, authorization: Optional[str]) -> Optional[str]:
        """The user a Basic header proves, or None."""
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if (user, password) == (self.username, self.password) else None

    def _denied(self, request: Request, name: Optional[str], action: str) -> Optional[Answer]:
        if self.auth is None:
            return None
        authorization = request.header("Authorization")
        actions = "pull" if action == "pull" else "pull,push"
        if self.auth == "basic":
            return None if self._user(authorization) else self._challenge(name, actions)
        if not authorization or not authorization.startswith("Bearer "):
            return self._challenge(name, actions)
        granted, expires = self._tokens.get(authorization[7:], (set(), 0.0))
        if expires <= time.time() or (name is not None and "%s:%s" % (name, action) not in granted):
            return self._challenge(name, actions)
        return None

    def _token_service(self, request: Request) -> Answer:
        path, _, query = request.target.partition("?")
        if request.method != "GET" or path != "/token":
            return _error(404, "NOT_FOUND", "no such endpoint")
        authorization = request.header("Authorization")
        user = self._user(authorization)
        if authorization and user is None:
            return _error(401, "UNAUTHORIZED", "wrong credentials")
        if user is None and not self.anonymous_pull:
            return _error(401, "UNAUTHORIZED", "anonymous access is not allowed")
        granted: Set[str] = set()
        for scope in urllib.parse.parse_qs(query).get("scope", []):
            with self._lock:
                self.token_requests.append((user, scope))
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            for act in actions.split(","):
                if act == "pull" or (act == "push" and user is not None):
                    granted.add("%s:%s" % (name, act))
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = (granted, time.time() + self.token_ttl)
        return 200, [("Content-Type", "application/json")], _json(
            {"token": token, "access_token": token, "expires_in": int(self.token_ttl)})

    # --- the API ------------------------------------------------------------------------------------------
    def _location(self, name: str, upload_id: str) -> str:
        self._state += 1
        return "%s://%s/v2/%s/blobs/uploads/%s?_state=%d" % (self.scheme, self.host, name, upload_id, self._state)

    def _registry(self, request: Request, body: bytes) -> Answer:
        method = request.method
        path, _, query = request.target.partition("?")
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        if path in ("/v2/", "/v2"):
            return self._denied(request, None, "pull") or (200, [("Content-Type", "application/json")], b"{}")
        m = _ROUTE.match(path)
        if m is None:
            return _error(404, "NOT_FOUND", "no such endpoint")
        name, kind, rest = m.group("name"), m.group("kind"), m.group("rest")
        denied = self._denied(request, name, "pull" if method in ("GET", "HEAD") else "push")
        if denied is not None:
            return denied
        if kind == "blobs/":
            return self._blob(request, name, rest)
        if kind == "blobs/uploads/":
            return self._upload(request, name, rest, params, body)
        if kind == "manifests/":
            return self._manifest(request, name, rest, body)
        if kind == "referrers/":
            return self._referrers(request, name, rest)
        if method != "GET":
            return _error(405, "UNSUPPORTED", "method not allowed")
        if name not in self._tags and name not in self._manifests:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
        tags = sorted(self._tags.get(name, {}))
        # pages: ?n= (capped at tags_page, as Docker Hub caps it) after ?last=, a Link header to the next page
        size = min(int(params["n"]) if params.get("n", "").isdigit() else len(tags) or 1,
                   self.tags_page or len(tags) or 1)
        rest = [t for t in tags if t > params["last"]] if params.get("last") else tags
        page, more = rest[:size], len(rest) > size
        headers = [("Content-Type", "application/json")]
        if more:
            headers.append(("Link", '</v2/%s/tags/list?n=%d&last=%s>; rel="next"' % (name, size, page[-1])))
        return 200, headers, _json({"name": name, "tags": page})

    def _blob(self, request: Request, name: str, digest: str) -> Answer:
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", "method not allowed")
        if digest not in self._links.get(name, set()):
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if request.method == "GET" and self.blob_redirect:
            return 307, [("Location", "%s://%s/blobs/%s" % (self._storage_scheme, self.blob_redirect, digest))], b""
        return _ranged(request, self._blobs[digest], digest)

    def _storage(self, request: Request) -> Answer:
        """The blob store a registry redirects GETs to (no auth: the URL is the permission)."""
        digest = request.target.split("?", 1)[0].rpartition("/")[2]
        if request.method not in ("GET", "HEAD") or digest not in self._blobs:
            return _error(404, "NOT_FOUND", "no such object")
        return _ranged(request, self._blobs[digest], digest)

    def _upload(self, request: Request, name: str, rest: str, params: Dict[str, str], body: bytes) -> Answer:
        method = request.method
        if not rest:
            if method != "POST":
                return _error(405, "UNSUPPORTED", "method not allowed")
            mount, source = params.get("mount"), params.get("from")
            if (mount and source and mount in self._links.get(source, set())
                    and not self._denied(request, source, "pull")):
                self._links.setdefault(name, set()).add(mount)
                return 201, [("Location", "/v2/%s/blobs/%s" % (name, mount)), ("Docker-Content-Digest", mount),
                             ("Content-Length", "0")], b""
            if params.get("digest"):  # a monolithic upload in one POST
                return self._finish(name, _Upload(name, bytearray(body)), params["digest"])
            upload_id = uuid.uuid4().hex
            self._uploads[upload_id] = _Upload(name)
            return 202, [("Location", self._location(name, upload_id)), ("Range", "0-0"),
                         ("Docker-Upload-UUID", upload_id), ("Content-Length", "0")], b""
        upload = self._uploads.get(rest)
        if upload is None or upload.repo != name or upload.done:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        if method == "PATCH":
            span = request.header("Content-Range")
            if span is not None:
                start, _, end = span.partition("-")
                if not (start.isdigit() and end.isdigit()) or int(start) != len(upload.data) \
                        or int(end) - int(start) + 1 != len(body):
                    return _error(416, "BLOB_UPLOAD_INVALID", "the range %s does not continue the upload" % span)
            upload.data += body
            return 202, [("Location", self._location(name, rest)), ("Range", "0-%d" % (len(upload.data) - 1)),
                         ("Docker-Upload-UUID", rest), ("Content-Length", "0")], b""
        if method == "PUT":
            upload.data += body
            return self._finish(name, upload, params.get("digest", ""))
        if method == "DELETE":
            del self._uploads[rest]
            return 204, [], b""
        return _error(405, "UNSUPPORTED", "method not allowed")

    def _finish(self, name: str, upload: _Upload, digest: str) -> Answer:
        upload.done = True
        actual = sha256(bytes(upload.data))
        if not _DIGEST.match(digest) or actual != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self._blobs[digest] = bytes(upload.data)
        self._links.setdefault(name, set()).add(digest)
        return 201, [("Location", "/v2/%s/blobs/%s" % (name, digest)), ("Docker-Content-Digest", digest),
                     ("Content-Length", "0")], b""

    def _manifest(self, request: Request, name: str, reference: str, body: bytes) -> Answer:
        repo = self._manifests.get(name, {})
        if request.method in ("GET", "HEAD"):
            digest = reference if _DIGEST.match(reference) else self._tags.get(name, {}).get(reference)
            if digest is None or digest not in repo:
                return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            data, media_type = repo[digest]
            return 200, [("Content-Type", media_type), ("Docker-Content-Digest", digest),
                         ("Content-Length", str(len(data)))], data if request.method == "GET" else b""
        if request.method != "PUT":
            return _error(405, "UNSUPPORTED", "method not allowed")
        digest = sha256(body)
        if reference.startswith("sha256:") and reference != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        try:
            doc = json.loads(body)
        except ValueError:
            return _error(400, "MANIFEST_INVALID", "manifest invalid")
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            return _error(400, "MANIFEST_INVALID", "manifest invalid")
        media_type = (request.header("Content-Type") or doc.get("mediaType") or "").split(";")[0].strip()
        if media_type in INDEX_TYPES:
            missing = [c.get("digest") for c in doc.get("manifests") or [] if c.get("digest") not in repo]
        else:
            named = [doc.get("config") or {}] + list(doc.get("layers") or [])
            foreign = [b for b in named if b.get("mediaType") in FOREIGN_TYPES and b.get("urls")]
            if foreign and (self.urls_allow is None or not all(
                    self.urls_allow.search(u) for b in foreign for u in b["urls"])):
                return 500, [("Content-Type", "application/json")], _json(  # distribution 2.8's very words
                    {"errors": [{"code": "UNKNOWN", "message": "unknown error"},
                                {"code": "UNKNOWN", "message": "unknown error", "detail": {}}] + [
                        {"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry",
                         "detail": b["digest"]} for b in foreign]})
            named = [b for b in named if b not in foreign]
            missing = [b.get("digest") for b in named if b.get("digest") not in self._links.get(name, set())]
        if missing:
            return _error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry: %s" % missing[0])
        self._manifests.setdefault(name, {})[digest] = (bytes(body), media_type)
        if not reference.startswith("sha256:"):
            self._tags.setdefault(name, {})[reference] = digest
        headers = [("Location", "/v2/%s/manifests/%s" % (name, digest)), ("Docker-Content-Digest", digest),
                   ("Content-Length", "0")]
        subject = doc.get("subject")
        if self.referrers_api and isinstance(subject, dict) and isinstance(subject.get("digest"), str):
            headers.append(("OCI-Subject", subject["digest"]))
        return 201, headers, b""

    def _referrers(self, request: Request, name: str, digest: str) -> Answer:
        if not self.referrers_api:
            return 404, [("Content-Type", "text/plain; charset=utf-8")], b"404 page not found\n"
        if request.method != "GET":
            return _error(405, "UNSUPPORTED", "method not allowed")
        if not _DIGEST.match(digest):
            return _error(400, "DIGEST_INVALID", "invalid digest")
        listed = []
        for d, (data, media_type) in sorted(self._manifests.get(name, {}).items()):
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            subject = doc.get("subject") if isinstance(doc, dict) else None
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                continue
            entry = {"mediaType": media_type, "digest": d, "size": len(data)}
            kind = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if kind:
                entry["artifactType"] = kind
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            listed.append(entry)
        return 200, [("Content-Type", OCI_INDEX)], _json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                          "manifests": listed})


@dataclass
class Seeded:
    """What seed_image / seed_index put in the registry."""
    repo: str
    tag: Optional[str]
    digest: str
    media_type: str
    data: bytes
    blobs: List[str]
    platform: str = ""
    children: List["Seeded"] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.data)


def _read_body(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    out = bytearray()
    while True:
        chunk = body.read(64 * 1024)  # type: ignore[attr-defined]
        if not chunk:
            return bytes(out)
        out += chunk


def _ranged(request: Request, data: bytes, digest: str) -> Answer:
    headers = [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest),
               ("Accept-Ranges", "bytes")]
    wanted = request.header("Range")
    m = re.fullmatch(r"bytes=(\d+)-", wanted or "")
    if m and request.method == "GET":
        start = int(m.group(1))
        if start >= len(data):
            return _error(416, "RANGE_INVALID", "range not satisfiable")
        part = data[start:]
        return 206, headers + [("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data))),
                               ("Content-Length", str(len(part)))], part
    return 200, headers + [("Content-Length", str(len(data)))], data if request.method == "GET" else b""


def _response(request: Request, code: int, headers: Headers, data: bytes, action: Optional[Action]) -> Response:
    if request.method == "HEAD":
        data = b""
    limit = len(data)
    if action is not None and action.kind == "truncate":
        limit = min(limit, action.n)
    cut_at = action.n if action is not None and action.kind == "cut" else None
    if not any(k.lower() == "content-length" for k, _ in headers) and request.method != "HEAD":
        headers = headers + [("Content-Length", str(len(data)))]
    pos = 0

    def reader(n: int = -1) -> bytes:
        nonlocal pos
        if cut_at is not None and pos >= cut_at and pos < len(data):
            raise TransportError("%s %s: [Errno 104] Connection reset by peer (after %d body bytes)"
                                 % (request.method, request.netloc, pos))
        end = limit if n is None or n < 0 else min(limit, pos + n)
        if cut_at is not None:
            end = min(end, max(cut_at, pos))
        chunk = data[pos:end]
        pos = end
        return chunk

    return Response(code, headers, reader)
