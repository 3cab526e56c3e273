"""An OCI distribution client on the standard library (http.client), for pulls and pushes.

Why our own: the installer must run with the standard library only, and oras-py cannot push
through token auth. What it does that a naive client would not:
- bearer tokens per scope (pull, then pull+push, plus pull on a mount source), refreshed on expiry;
- basic credentials only over TLS or to hosts the user named insecure, never across a redirect
  to another host, never in a log or an error;
- TLS verified unless the host is named insecure (then HTTPS without verification, else HTTP);
- retries on connection errors, 5xx and 429 (honouring Retry-After), and blob downloads that
  resume with HTTP Range after a dropped connection;
- every byte hashed against its digest; manifests capped in size.
"""

import base64
import email.utils
import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from typing import BinaryIO, Callable, Dict, Iterable, Optional, Sequence, Tuple

from installer import __version__
from installer.errors import ContentMismatch, InvalidInput, RegistryError
from installer.format.oci import ACCEPT, MAX_MANIFEST_BYTES, SCHEMA1, media_type_of
from installer.format.reference import strict_digest

USER_AGENT = "offline-bundle/%s" % __version__
CHUNK = 1 << 20
REDIRECTS = (301, 302, 303, 307, 308)
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 60.0
Credentials = Optional[Tuple[str, str]]


class _Transient(Exception):
    """A failure worth another try: dropped connection, 5xx, 429."""

    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when - time.time(), MAX_RETRY_AFTER))


def parse_www_authenticate(value: str) -> Tuple[str, Dict[str, str]]:
    """'Bearer realm="...",service="...",scope="..."' -> ('bearer', {...})."""
    scheme, _, rest = value.strip().partition(" ")
    params: Dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip().lower()
        j = eq + 1
        if j < len(rest) and rest[j] == '"':
            end = j + 1
            out = []
            while end < len(rest) and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < len(rest):
                    end += 1
                out.append(rest[end])
                end += 1
            params[key] = "".join(out)
            i = end + 1
        else:
            end = rest.find(",", j)
            end = len(rest) if end < 0 else end
            params[key] = rest[j:end].strip()
            i = end + 1
    return scheme.lower(), params


class Registry:
    """One registry host. Thread-safe: each thread keeps its own connection."""

    def __init__(self, host: str, *, insecure: bool = False, ca_file: Optional[str] = None,
                 credentials: Credentials = None, timeout: float = 60.0, retries: int = 5,
                 backoff: float = 0.5, insecure_hosts: Sequence[str] = ()) -> None:
        self.host = host
        self.insecure = insecure
        self.credentials = credentials
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.insecure_hosts = set(insecure_hosts) | ({host} if insecure else set())
        self._verified = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self._unverified = ssl._create_unverified_context()
        self._scheme: Optional[str] = None if insecure else "https"
        self._local = threading.local()
        self._tokens: Dict[Tuple[str, ...], Tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._basic_ok = False
        self.requests = 0  # counted, for tests and progress

    # --- connections --------------------------------------------------------------------------
    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (scheme, netloc)
        conn = pool.get(key)
        if conn is None:
            if scheme == "https":
                host_only = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
                ctx = self._unverified if netloc in self.insecure_hosts or host_only in self.insecure_hosts else self._verified
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=ctx, blocksize=CHUNK)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=CHUNK)
            pool[key] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = getattr(self._local, "pool", {}).pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def _plain_allowed(self, netloc: str) -> bool:
        return netloc in self.insecure_hosts or netloc.rsplit(":", 1)[0] in self.insecure_hosts

    def scheme(self) -> str:
        """https, or for a host named insecure: https without verification if it speaks TLS, else http."""
        if self._scheme is None:
            try:
                conn = self._connection("https", self.host)
                conn.request("GET", "/v2/", headers={"User-Agent": USER_AGENT})
                conn.getresponse().read()
                self._scheme = "https"
            except (ssl.SSLError, ConnectionError, http.client.HTTPException, socket.timeout, OSError):
                self._drop("https", self.host)
                self._scheme = "http"
        return self._scheme

    # --- auth ---------------------------------------------------------------------------------
    def _basic_header(self) -> str:
        user, secret = self.credentials
        return "Basic " + base64.b64encode(("%s:%s" % (user, secret)).encode()).decode()

    def _may_send_basic(self, scheme: str, netloc: str) -> bool:
        return self.credentials is not None and (scheme == "https" or self._plain_allowed(netloc))

    def _auth_header(self, scopes: Tuple[str, ...]) -> Optional[str]:
        with self._lock:
            token = self._tokens.get(scopes)
        if token and token[1] > time.time():
            return "Bearer " + token[0]
        if self._basic_ok and self.credentials:
            return self._basic_header()
        return None

    def _fetch_token(self, params: Dict[str, str], scopes: Tuple[str, ...]) -> None:
        realm = params.get("realm")
        if not realm:
            raise RegistryError("%s asked for a bearer token without naming a token service" % self.host)
        url = urllib.parse.urlsplit(realm)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise RegistryError("%s named an unusable token service" % self.host)
        if url.scheme == "http" and not self._plain_allowed(url.netloc):
            raise RegistryError("%s sends us to a plain-HTTP token service at %s; name it with --insecure-registry "
                                "if that is intended" % (self.host, url.netloc))
        query = [("service", params["service"])] if params.get("service") else []
        wanted = list(scopes)
        if params.get("scope"):
            wanted += [s for s in params["scope"].split(" ") if s not in wanted]
        query += [("scope", s) for s in wanted]
        path = (url.path or "/") + "?" + urllib.parse.urlencode(query) + ("&" + url.query if url.query else "")
        headers = {"User-Agent": USER_AGENT}
        if self._may_send_basic(url.scheme, url.netloc):
            headers["Authorization"] = self._basic_header()
        resp, body = self._simple(url.scheme, url.netloc, "GET", path, headers)
        if resp.status == 401:
            raise RegistryError("authentication to %s failed: the token service refused the credentials%s"
                                % (self.host, "" if self.credentials else " (no credentials were found for it)"))
        if resp.status != 200:
            raise RegistryError("the token service of %s answered HTTP %d" % (self.host, resp.status))
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            ttl = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise RegistryError("the token service of %s answered something that is not a token" % self.host)
        if not isinstance(token, str) or not token:
            raise RegistryError("the token service of %s answered without a token" % self.host)
        with self._lock:
            self._tokens[scopes] = (token, time.time() + max(ttl - 10, 1))

    def _simple(self, scheme: str, netloc: str, method: str, path: str, headers: Dict[str, str]):
        """One small request (token service): retried on transient failures."""
        def attempt():
            conn = self._connection(scheme, netloc)
            try:
                conn.request(method, path, headers=headers)
                resp = conn.getresponse()
                body = resp.read(1 << 20)
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError) as exc:
                self._drop(scheme, netloc)
                raise _Transient("%s: %s" % (netloc, exc))
            if resp.status in RETRY_STATUSES:
                raise _Transient("%s answered HTTP %d" % (netloc, resp.status), _retry_after(resp.getheader("Retry-After")))
            return resp, body
        return self._retrying(attempt)

    # --- the request loop -----------------------------------------------------------------------
    def _retrying(self, attempt: Callable):
        delay = self.backoff
        for number in range(self.retries + 1):
            try:
                return attempt()
            except _Transient as exc:
                if number == self.retries:
                    raise RegistryError("%s is not reachable or keeps failing: %s" % (self.host, exc))
                time.sleep(exc.retry_after if exc.retry_after is not None else delay)
                delay = min(delay * 2, 8.0)
            except ssl.SSLCertVerificationError as exc:
                raise RegistryError("cannot verify the TLS certificate of %s (%s); pass --registry-ca FILE, or "
                                    "--insecure-registry %s if you accept an unverified connection"
                                    % (self.host, exc.verify_message or exc.reason, self.host))

    def open(self, method: str, path: str, scopes: Sequence[str], headers: Optional[Dict[str, str]] = None,
             body: Optional[Callable[[], object]] = None, length: Optional[int] = None) -> http.client.HTTPResponse:
        """Send one request through auth and redirects; return the final response, unread.

        ``body`` is a factory so a redirect or an auth retry can send it again.
        Transient failures raise _Transient for the caller's retry loop.
        """
        scopes = tuple(scopes)
        scheme, netloc = self.scheme(), self.host
        target = path
        auth_rounds = 0
        for _hop in range(6):
            hdrs = {"User-Agent": USER_AGENT}
            hdrs.update(headers or {})
            if netloc == self.host:
                auth = self._auth_header(scopes)
                if auth:
                    hdrs["Authorization"] = auth
            if length is not None:
                hdrs["Content-Length"] = str(length)
            conn = self._connection(scheme, netloc)
            self.requests += 1
            try:
                conn.request(method, target, body=body() if body else None, headers=hdrs)
                resp = conn.getresponse()
            except ssl.SSLCertVerificationError:
                self._drop(scheme, netloc)
                raise
            except ssl.SSLError as exc:
                self._drop(scheme, netloc)
                if "WRONG_VERSION_NUMBER" in str(exc) or "wrong version number" in str(exc):
                    # Not worth retrying: the other side does not speak TLS at all.
                    raise RegistryError("%s does not speak TLS; if it is a plain-HTTP registry, name it with "
                                        "--insecure-registry %s" % (netloc, netloc))
                raise _Transient("%s %s: %s" % (method, netloc, exc))
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError) as exc:
                self._drop(scheme, netloc)
                raise _Transient("%s %s: %s" % (method, netloc, exc))
            except BaseException:  # e.g. a body that refused to finish (_BlobCheck): the connection is mid-request
                self._drop(scheme, netloc)
                raise
            if resp.status == 401 and netloc == self.host and auth_rounds < 2:
                resp.read()
                auth_rounds += 1
                self._authenticate(resp.getheader("WWW-Authenticate", ""), scopes, scheme, netloc)
                continue
            if resp.status in REDIRECTS and resp.getheader("Location"):
                resp.read()
                url = urllib.parse.urlsplit(urllib.parse.urljoin("%s://%s%s" % (scheme, netloc, target),
                                                                 resp.getheader("Location")))
                if url.scheme == "http" and not self._plain_allowed(url.netloc):
                    raise RegistryError("%s redirected to plain HTTP at %s; refused" % (self.host, url.netloc))
                # Another host gets no Authorization header: we only ever add it for self.host.
                scheme, netloc = url.scheme, url.netloc
                target = url.path + ("?" + url.query if url.query else "")
                if method == "POST" and resp.status in (301, 302, 303):
                    method = "GET"
                continue
            if resp.status in RETRY_STATUSES:
                resp.read()
                raise _Transient("%s answered HTTP %d" % (netloc, resp.status), _retry_after(resp.getheader("Retry-After")))
            return resp
        raise RegistryError("%s redirected too many times" % self.host)

    def _authenticate(self, challenge: str, scopes: Tuple[str, ...], scheme: str, netloc: str) -> None:
        kind, params = parse_www_authenticate(challenge)
        if kind == "bearer":
            with self._lock:
                self._tokens.pop(scopes, None)
            self._fetch_token(params, scopes)
        elif kind == "basic":
            if not self.credentials:
                raise RegistryError("%s needs credentials and none were found (docker login, or BUNDLE_REGISTRY_USER "
                                    "and BUNDLE_REGISTRY_PASSWORD where they apply)" % self.host)
            if not self._may_send_basic(scheme, netloc):
                raise RegistryError("%s asks for a password over plain HTTP; refused (name it with --insecure-registry "
                                    "to allow that)" % self.host)
            if self._basic_ok:
                raise RegistryError("authentication to %s failed: the credentials were refused" % self.host)
            self._basic_ok = True
        else:
            raise RegistryError("%s asks for an unsupported authentication scheme %r" % (self.host, kind))

    def call(self, method: str, path: str, scopes: Sequence[str], headers=None, body=None, length=None,
             ok: Iterable[int] = (200,), read_limit: int = 1 << 20) -> Tuple[http.client.HTTPResponse, bytes]:
        """A whole request with retries; the body is read (up to ``read_limit``)."""
        def attempt():
            resp = self.open(method, path, scopes, headers, body, length)
            try:
                data = resp.read(read_limit + 1)
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError) as exc:
                self._drop(self.scheme(), self.host)
                raise _Transient("%s %s: %s" % (method, self.host, exc))
            return resp, data
        resp, data = self._retrying(attempt)
        if resp.status not in tuple(ok):
            raise self._status_error(method, path, resp, data)
        if len(data) > read_limit:
            raise RegistryError("%s%s answered more than %d bytes, more than a manifest may be"
                                % (self.host, path.split("?", 1)[0], read_limit))
        return resp, data

    def _status_error(self, method: str, path: str, resp, data: bytes) -> RegistryError:
        what = "%s %s%s" % (method, self.host, path.split("?", 1)[0])
        if resp.status == 401:
            return RegistryError("authentication to %s failed (%s)" % (self.host, what))
        if resp.status == 403:
            return RegistryError("%s refused access (%s: HTTP 403)" % (self.host, what))
        if resp.status == 404:
            return RegistryError("not found: %s" % what)
        detail = ""
        try:
            errors = json.loads(data).get("errors") or []
            detail = ": " + "; ".join(str(e.get("message") or e.get("code")) for e in errors[:3])
        except (ValueError, AttributeError):
            pass
        return RegistryError("%s failed with HTTP %d%s" % (what, resp.status, detail))

    # --- pulls ------------------------------------------------------------------------------------
    def get_manifest(self, repo: str, reference: str) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest) exactly as served; the digest is computed, not trusted."""
        resp, data = self.call("GET", "/v2/%s/manifests/%s" % (repo, reference), [_pull(repo)],
                               headers={"Accept": ACCEPT}, read_limit=MAX_MANIFEST_BYTES)
        media_type = media_type_of(data, resp.getheader("Content-Type", ""))
        if media_type in SCHEMA1:
            # Refused before any digest check: a registry's digest for schema 1 is not the sha256 of its bytes.
            raise InvalidInput("%s/%s:%s is a Docker schema 1 manifest, which is not supported (re-push it as "
                               "schema 2 or OCI)" % (self.host, repo, reference))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        served = self._served_digest(resp, repo, reference)
        if reference.startswith("sha256:") and digest != reference:
            raise ContentMismatch("%s/%s@%s: the registry served a manifest whose sha256 is %s" % (self.host, repo, reference, digest))
        if served is not None and served != digest:
            raise ContentMismatch("%s/%s:%s: Docker-Content-Digest says %s but the bytes hash to %s"
                                  % (self.host, repo, reference, served, digest))
        return data, media_type, digest

    def head_manifest(self, repo: str, reference: str, scopes: Optional[Sequence[str]] = None) -> Optional[str]:
        """The digest a tag (or digest) points at, or None if it does not exist."""
        resp, _ = self.call("HEAD", "/v2/%s/manifests/%s" % (repo, reference), scopes or [_pull(repo)],
                            headers={"Accept": ACCEPT}, ok=(200, 404), read_limit=0)
        if resp.status == 404:
            return None
        return self._served_digest(resp, repo, reference)

    def _served_digest(self, resp: http.client.HTTPResponse, repo: str, reference: str) -> Optional[str]:
        """The Docker-Content-Digest header, strictly checked (callers make it a cache path), or None."""
        served = resp.getheader("Docker-Content-Digest")
        if served is None:
            return None
        where = "%s/%s%s%s" % (self.host, repo, "@" if reference.startswith("sha256:") else ":", reference)
        return strict_digest(served, where + " (its Docker-Content-Digest header)", RegistryError)

    def download_blob(self, repo: str, digest: str, size: int, out: BinaryIO,
                      progress: Optional[Callable[[int], None]] = None) -> None:
        """Stream a blob into ``out`` while hashing; resume with Range after a cut; check size and digest."""
        h = hashlib.sha256()
        written = 0
        delay = self.backoff
        for number in range(self.retries + 1):
            try:
                headers = {"Range": "bytes=%d-" % written} if written else {}
                resp = self.open("GET", "/v2/%s/blobs/%s" % (repo, digest), [_pull(repo)], headers)
                if resp.status not in (200, 206):
                    data = resp.read(1 << 16)
                    raise self._status_error("GET", "/v2/%s/blobs/%s" % (repo, digest), resp, data)
                if written and resp.status == 200:
                    # The server ignored the Range: start again from the first byte.
                    out.seek(0)
                    out.truncate()
                    h = hashlib.sha256()
                    written = 0
                elif resp.status == 206:
                    start = (resp.getheader("Content-Range") or "").replace("bytes ", "").split("-", 1)[0]
                    if not start.isdigit() or int(start) != written:
                        raise RegistryError("%s answered a range request with the wrong range" % self.host)
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except (ConnectionError, http.client.HTTPException, socket.timeout, OSError) as exc:
                        self._drop(self.scheme(), self.host)
                        raise _Transient("connection lost after %d bytes of %s: %s" % (written, digest, exc))
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > size:
                        raise ContentMismatch("%s@%s: the registry sent more than the %d bytes the manifest declares"
                                              % (repo, digest, size))
                    h.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
                if written < size:
                    self._drop(self.scheme(), self.host)
                    raise _Transient("connection lost after %d of %d bytes of %s" % (written, size, digest))
                break
            except _Transient as exc:
                if number == self.retries:
                    raise RegistryError("cannot download %s from %s: %s" % (digest, self.host, exc))
                time.sleep(exc.retry_after if exc.retry_after is not None else delay)
                delay = min(delay * 2, 8.0)
        actual = "sha256:" + h.hexdigest()
        if actual != digest:
            raise ContentMismatch("%s/%s: blob %s has sha256 %s: the registry served other bytes" % (self.host, repo, digest, actual))

    # --- pushes -----------------------------------------------------------------------------------
    def blob_exists(self, repo: str, digest: str) -> bool:
        resp, _ = self.call("HEAD", "/v2/%s/blobs/%s" % (repo, digest), [_push(repo)], ok=(200, 404), read_limit=0)
        return resp.status == 200

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> Optional[str]:
        """Cross-repository mount. True when mounted; otherwise the upload location the registry opened."""
        path = "/v2/%s/blobs/uploads/?%s" % (repo, urllib.parse.urlencode({"mount": digest, "from": source_repo}))
        resp, _ = self.call("POST", path, [_push(repo), _pull(source_repo)], ok=(201, 202), length=0)
        return None if resp.status == 201 else resp.getheader("Location")

    def upload_blob(self, repo: str, digest: str, size: int, opener: Callable[[], BinaryIO],
                    location: Optional[str] = None, chunk_size: int = 0,
                    progress: Optional[Callable[[int], None]] = None, rehash: bool = True) -> None:
        """Monolithic PUT (or PATCH chunks of ``chunk_size`` then PUT), streamed from ``opener()``.

        With ``rehash`` the bytes are hashed on their way out and the last byte is not sent unless they have
        ``digest``; a caller that hashed these very files in this run, under the kit lock, may skip it."""
        check = _BlobCheck(digest, size) if rehash else None
        if location is None:
            resp, _ = self.call("POST", "/v2/%s/blobs/uploads/" % repo, [_push(repo)], ok=(202,), length=0)
            location = resp.getheader("Location")
        if not location:
            raise RegistryError("%s opened an upload without a Location" % self.host)
        if chunk_size and size > chunk_size:
            offset = 0
            while offset < size:
                n = min(chunk_size, size - offset)
                resp, _ = self.call("PATCH", _relative(location), [_push(repo)],
                                    headers={"Content-Type": "application/octet-stream",
                                             "Content-Range": "%d-%d" % (offset, offset + n - 1)},
                                    body=_slice_factory(opener, offset, n, progress, check), length=n, ok=(202,))
                location = resp.getheader("Location") or location
                offset += n
            body, length = None, 0
        else:
            body, length = _slice_factory(opener, 0, size, progress, check), size
        sep = "&" if "?" in location else "?"
        self.call("PUT", _relative(location) + sep + urllib.parse.urlencode({"digest": digest}), [_push(repo)],
                  headers={"Content-Type": "application/octet-stream"}, body=body, length=length, ok=(201,))

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        resp, _ = self.call("PUT", "/v2/%s/manifests/%s" % (repo, reference), [_push(repo)],
                            headers={"Content-Type": media_type}, body=lambda: data, length=len(data), ok=(201,))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        served = self._served_digest(resp, repo, reference)
        if served is not None and served != digest:
            raise ContentMismatch("%s stored %s/%s as %s, not %s" % (self.host, repo, reference, served, digest))
        return digest


def _pull(repo: str) -> str:
    return "repository:%s:pull" % repo


def _push(repo: str) -> str:
    return "repository:%s:pull,push" % repo


def _relative(location: str) -> str:
    """Upload locations may be absolute URLs on the same host; keep path and query."""
    url = urllib.parse.urlsplit(location)
    return url.path + ("?" + url.query if url.query else "")


def _slice_factory(opener: Callable[[], BinaryIO], offset: int, length: int,
                   progress: Optional[Callable[[int], None]], check: Optional["_BlobCheck"] = None):
    """A body factory: a fresh reader over bytes [offset, offset+length) each time it is called."""
    def make():
        return _SliceReader(opener(), offset, length, progress, check)
    return make


class _BlobCheck:
    """Hashes a blob's bytes in order as its slices are sent (a retried slice is not hashed twice) and refuses
    to send its last byte when the whole does not have its digest: a changed file never completes an upload."""

    def __init__(self, digest: str, size: int) -> None:
        self.digest = digest
        self.size = size
        self.pos = 0
        self._h = hashlib.sha256()

    def feed(self, offset: int, data: bytes) -> None:
        if offset > self.pos:
            raise ContentMismatch("blob %s was not read in order while it was uploaded" % self.digest)
        fresh = data[self.pos - offset:]
        self._h.update(fresh)
        self.pos += len(fresh)
        if self.pos >= self.size and "sha256:" + self._h.hexdigest() != self.digest:
            raise ContentMismatch("the kit's copy of blob %s no longer has that sha256; it was not pushed (the installed "
                                  "version is damaged: see offline-bundle verify --kit)" % self.digest)


class _SliceReader:
    """File-like view that http.client streams from, in blocks, reporting progress."""

    def __init__(self, fh: BinaryIO, offset: int, length: int, progress, check: Optional[_BlobCheck] = None) -> None:
        self._fh = fh
        self._fh.seek(offset)
        self._pos = offset
        self._left = length
        self._progress = progress
        self._check = check

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            self._fh.close()
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fh.read(n)
        if len(data) > self._left:
            data = data[:self._left]
        if self._check is not None and data:
            self._check.feed(self._pos, data)  # raises before the last byte leaves when the hash differs
        self._pos += len(data)
        self._left -= len(data)
        if self._progress and data:
            self._progress(len(data))
        if not data:
            self._fh.close()
        return data
