"""The registry API client (OCI Distribution), for pulls and pushes: manifests, blobs, uploads, mounts.

Why our own: the installer must run with the standard library only, and oras-py cannot push
through token auth. The client is four small modules, each with one concern:
- transport.py: one HTTP request on the wire (http.client, a connection pool per thread, TLS verified
  unless the host is named insecure); the seam a test replaces with tests/helpers/memregistry.py;
- retry.py: the one retry policy (connection errors, 5xx, 408 and 429 honouring Retry-After; backoff; never
  an answer that cannot change);
- errorbody.py: the registry's own error (``errors[].code`` and ``message``), escaped and capped, which every
  error of an HTTP answer shows;
- auth.py: the WWW-Authenticate challenge, bearer tokens per scope, basic credentials;
- this module: the API on top. What it does that a naive client would not:
  - https, or for a host named insecure: https without verification if it speaks TLS, else http;
  - basic credentials only over TLS or to hosts the user named insecure, never across a redirect
    to another host, never in a log or an error; a redirect to plain HTTP elsewhere is refused;
  - blob downloads that resume with HTTP Range after a dropped connection;
  - every byte hashed against its digest (uploads too: _BlobCheck); manifests capped in size.
"""

import hashlib
import json
import re
import urllib.parse
from typing import BinaryIO, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from installer import __version__
from installer.errors import ContentMismatch, InvalidInput, RegistryError
from installer.format.oci import ACCEPT, MAX_MANIFEST_BYTES, OCI_INDEX, SCHEMA1, media_type_of
from installer.format.reference import strict_digest
from installer.site import errorbody
from installer.site.auth import Auth, Credentials
from installer.site.retry import RetryPolicy, Transient
from installer.site.transport import (CHUNK, Body, CertificateError, HTTPTransport, NotTLS, Request, Response,
                                      Transport, TransportError)

USER_AGENT = "offline-bundle/%s" % __version__
REDIRECTS = (301, 302, 303, 307, 308)
SMALL_BODY = 1 << 20  # what call() reads of an answer unless told otherwise


MAX_TAGS = 100_000  # tags read from one repository's list (Docker Hub's busiest hold a few thousand)


class Registry:
    """One registry host. Thread-safe (the transport keeps a connection per thread)."""

    def __init__(self, host: str, *, insecure: bool = False, ca_file: Optional[str] = None,
                 credentials: Credentials = None, timeout: float = 60.0, retries: int = 5,
                 backoff: float = 0.5, insecure_hosts: Sequence[str] = (), transport: Optional[Transport] = None,
                 policy: Optional[RetryPolicy] = None) -> None:
        self.host = host
        self.insecure = insecure
        self.insecure_hosts = set(insecure_hosts) | ({host} if insecure else set())
        self.transport: Transport = transport if transport is not None else HTTPTransport(
            ca_file, self.insecure_hosts, timeout)
        self.policy = policy if policy is not None else RetryPolicy(retries=retries, backoff=backoff)
        self.auth = Auth(host, credentials, self._plain_allowed)
        self._scheme: Optional[str] = None if insecure else "https"
        self.requests = 0  # counted, for tests and progress
        self.has_referrers_api: Optional[bool] = None  # learned from the first referrers question

    def _plain_allowed(self, netloc: str) -> bool:
        return netloc in self.insecure_hosts or netloc.rsplit(":", 1)[0] in self.insecure_hosts

    def scheme(self) -> str:
        """https, or for a host named insecure: https without verification if it speaks TLS, else http."""
        if self._scheme is None:
            try:
                resp = self.transport.send(Request("GET", "https", self.host, "/v2/", {"User-Agent": USER_AGENT}))
                try:
                    resp.read()
                finally:
                    resp.close()
                self._scheme = "https"
            except TransportError:
                self._scheme = "http"
        return self._scheme

    def _send(self, request: Request) -> Response:
        """transport.send, with the two TLS failures that are never retried turned into their messages."""
        try:
            return self.transport.send(request)
        except CertificateError as exc:
            raise RegistryError("cannot verify the TLS certificate of %s (%s); pass --registry-ca FILE, or "
                                "--insecure-registry %s if you accept an unverified connection"
                                % (exc.netloc, exc.reason, exc.netloc)) from exc
        except NotTLS as exc:
            raise RegistryError("%s does not speak TLS; if it is a plain-HTTP registry, name it with "
                                "--insecure-registry %s" % (exc.netloc, exc.netloc)) from exc

    def _give_up(self, exc: BaseException) -> RegistryError:
        return RegistryError("%s is not reachable or keeps failing: %s" % (self.host, exc))

    def _fetch(self, scheme: str, netloc: str, target: str, headers: Dict[str, str]) -> Tuple[int, bytes]:
        """One small GET (the token service), retried by the policy: (status, body)."""
        def attempt() -> Tuple[int, bytes]:
            resp = self._send(Request("GET", scheme, netloc, target, dict(headers, **{"User-Agent": USER_AGENT})))
            try:
                body = resp.read(SMALL_BODY)
            finally:
                resp.close()
            if self.policy.retries_answer(resp.status, body):
                raise self.policy.transient(netloc, resp.status, resp.getheader("Retry-After"), errorbody.said(body))
            return resp.status, body
        return self.policy.run(attempt, self._give_up)

    # --- one request: auth and redirects ---------------------------------------------------------
    def open(self, method: str, path: str, scopes: Sequence[str], headers: Optional[Dict[str, str]] = None,
             body: Optional[Callable[[], Body]] = None, length: Optional[int] = None) -> Response:
        """Send one request through auth and redirects; return the final response, unread (close it).

        ``body`` is a factory so a redirect or an auth retry can send it again. A failure the retry policy
        retries (TransportError, Transient for a retryable status) is raised for the caller's policy.run.
        """
        scope_key = tuple(scopes)
        scheme, netloc = self.scheme(), self.host
        target = path
        auth_rounds = 0
        for _hop in range(6):
            hdrs = {"User-Agent": USER_AGENT}
            hdrs.update(headers or {})
            if netloc == self.host:
                auth = self.auth.header(scope_key)
                if auth:
                    hdrs["Authorization"] = auth
            if length is not None:
                hdrs["Content-Length"] = str(length)
            try:
                payload = body() if body else None
            except OSError as exc:
                raise Transient("%s %s: %s" % (method, netloc, exc)) from exc
            self.requests += 1
            resp = self._send(Request(method, scheme, netloc, target, hdrs, payload))
            if resp.status == 401 and netloc == self.host and auth_rounds < 2:
                self._drain(resp)
                auth_rounds += 1
                self.auth.challenged(resp.getheader("WWW-Authenticate", "") or "", scope_key, scheme, netloc,
                                     self._fetch)
                continue
            location = resp.getheader("Location")
            if resp.status in REDIRECTS and location:
                self._drain(resp)
                url = urllib.parse.urlsplit(urllib.parse.urljoin("%s://%s%s" % (scheme, netloc, target), location))
                if url.scheme == "http" and not self._plain_allowed(url.netloc):
                    raise RegistryError("%s redirected to plain HTTP at %s; refused" % (self.host, url.netloc))
                # Another host gets no Authorization header: we only ever add it for self.host.
                scheme, netloc = url.scheme, url.netloc
                target = url.path + ("?" + url.query if url.query else "")
                if method == "POST" and resp.status in (301, 302, 303):
                    method = "GET"
                continue
            if self.policy.retries_status(resp.status):
                answer = self._error_body(resp)
                if not self.policy.retries_answer(resp.status, answer):
                    raise self._status_error(method, path, resp, answer)  # it will not change: not retried
                raise self.policy.transient(netloc, resp.status, resp.getheader("Retry-After"), errorbody.said(answer))
            return resp
        raise RegistryError("%s redirected too many times" % self.host)

    @staticmethod
    def _error_body(resp: Response) -> bytes:
        """The body of an error answer, up to errorbody.MAX_BODY (the rest is dropped with the connection)."""
        try:
            return resp.read(errorbody.MAX_BODY)
        finally:
            resp.close()

    @staticmethod
    def _drain(resp: Response) -> None:
        try:
            resp.read()
        finally:
            resp.close()

    def call(self, method: str, path: str, scopes: Sequence[str], headers: Optional[Dict[str, str]] = None,
             body: Optional[Callable[[], Body]] = None, length: Optional[int] = None,
             ok: Iterable[int] = (200,), read_limit: int = SMALL_BODY) -> Tuple[Response, bytes]:
        """A whole request under the retry policy; the body is read (up to ``read_limit``)."""
        def attempt() -> Tuple[Response, bytes]:
            resp = self.open(method, path, scopes, headers, body, length)
            try:
                data = resp.read(read_limit + 1)
            finally:
                resp.close()
            return resp, data
        resp, data = self.policy.run(attempt, self._give_up)
        if resp.status not in tuple(ok):
            raise self._status_error(method, path, resp, data)
        if len(data) > read_limit:
            raise RegistryError("%s%s answered more than %d bytes, more than a manifest may be"
                                % (self.host, path.split("?", 1)[0], read_limit))
        return resp, data

    def _status_error(self, method: str, path: str, resp: Response, data: bytes) -> RegistryError:
        """The one-line error of an answer that is not what the request wanted, with the registry's own words
        (``errors[].code`` and ``message``, escaped and capped: errorbody.said)."""
        what = "%s %s%s" % (method, self.host, path.split("?", 1)[0])
        said = errorbody.said(data)
        if resp.status == 401:
            return RegistryError("authentication to %s failed (%s%s)" % (self.host, what, "; " + said if said else ""))
        if resp.status == 403:
            return RegistryError("%s refused access (%s: HTTP 403%s)" % (self.host, what, "; " + said if said else ""))
        if resp.status == 404:
            return RegistryError("not found: %s%s" % (what, " (%s)" % said if said else ""))
        return RegistryError("%s failed with HTTP %d%s" % (what, resp.status, ": " + said if said else ""))

    # --- pulls ------------------------------------------------------------------------------------
    def get_manifest(self, repo: str, reference: str) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest) exactly as served; the digest is computed, not trusted."""
        found = self.find_manifest(repo, reference, missing_ok=False)
        assert found is not None  # missing_ok=False: a 404 raised
        return found

    def find_manifest(self, repo: str, reference: str, missing_ok: bool = True) -> Optional[Tuple[bytes, str, str]]:
        """As get_manifest, or None when the registry answers 404 (a tag that may or may not exist: one GET, not a
        HEAD and a GET)."""
        resp, data = self.call("GET", "/v2/%s/manifests/%s" % (repo, reference), [_pull(repo)],
                               headers={"Accept": ACCEPT}, read_limit=MAX_MANIFEST_BYTES,
                               ok=(200, 404) if missing_ok else (200,))
        if resp.status == 404:
            return None
        media_type = media_type_of(data, resp.getheader("Content-Type") or "")
        if media_type in SCHEMA1:
            # Refused before any digest check: a registry's digest for schema 1 is not the sha256 of its bytes.
            raise InvalidInput("%s/%s:%s is a Docker schema 1 manifest, which is not supported (re-push it as "
                               "schema 2 or OCI)" % (self.host, repo, reference))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        served = self._served_digest(resp, repo, reference)
        if reference.startswith("sha256:") and digest != reference:
            raise ContentMismatch("%s/%s@%s: the registry served a manifest whose sha256 is %s"
                                  % (self.host, repo, reference, digest))
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

    def _served_digest(self, resp: Response, repo: str, reference: str) -> Optional[str]:
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
        path = "/v2/%s/blobs/%s" % (repo, digest)

        def attempt() -> None:
            nonlocal h, written
            headers = {"Range": "bytes=%d-" % written} if written else {}
            resp = self.open("GET", path, [_pull(repo)], headers)
            try:
                if resp.status not in (200, 206):
                    raise self._status_error("GET", path, resp, resp.read(1 << 16))
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
                    except TransportError as exc:
                        raise Transient("connection lost after %d bytes of %s: %s" % (written, digest, exc)) from exc
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
                    raise Transient("connection lost after %d of %d bytes of %s" % (written, size, digest))
            finally:
                resp.close()

        self.policy.run(attempt, lambda exc: RegistryError("cannot download %s from %s: %s" % (digest, self.host, exc)))
        actual = "sha256:" + h.hexdigest()
        if actual != digest:
            raise ContentMismatch("%s/%s: blob %s has sha256 %s: the registry served other bytes"
                                  % (self.host, repo, digest, actual))

    # --- pushes -----------------------------------------------------------------------------------
    def tags(self, repo: str, max_pages: int = 64, max_tags: int = MAX_TAGS) -> Optional[List[str]]:
        """Every tag of ``repo`` (GET /v2/<repo>/tags/list, following its Link pages), or None when the registry
        will not list them (401, 403, 404, 405) or lists more than ``max_pages`` pages or ``max_tags`` tags (a
        runaway list is not held in memory): the caller then asks tag by tag."""
        path = "/v2/%s/tags/list?n=1000" % repo
        found: List[str] = []
        for _page in range(max_pages):
            resp, data = self.call("GET", path, [_pull(repo)], ok=(200, 401, 403, 404, 405),
                                   read_limit=MAX_MANIFEST_BYTES)
            if resp.status != 200:
                return None
            try:
                listed = json.loads(data).get("tags") or []
            except (ValueError, AttributeError):
                return None
            if not isinstance(listed, list):
                return None
            found += [t for t in listed if isinstance(t, str)]
            if len(found) > max_tags:
                return None
            following = _next_page(resp.getheader("Link") or "", repo)
            if following is None:
                return found
            path = following
        return None

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
        return self.put_manifest_answer(repo, reference, data, media_type)[0]

    def put_manifest_answer(self, repo: str, reference: str, data: bytes, media_type: str) -> Tuple[str, bool]:
        """PUT a manifest; (its digest, whether the registry answered OCI-Subject: it indexes referrers itself)."""
        resp, _ = self.call("PUT", "/v2/%s/manifests/%s" % (repo, reference), [_push(repo)],
                            headers={"Content-Type": media_type}, body=lambda: data, length=len(data), ok=(201,))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        served = self._served_digest(resp, repo, reference)
        if served is not None and served != digest:
            raise ContentMismatch("%s stored %s/%s as %s, not %s" % (self.host, repo, reference, served, digest))
        return digest, resp.getheader("OCI-Subject") is not None

    def referrers(self, repo: str, digest: str) -> Optional[bytes]:
        """The OCI 1.1 referrers API: the index of the manifests whose subject is ``digest``, or None when the
        registry does not have the API (it answers 404: a registry that has it never does, distribution-spec
        v1.1 "Listing Referrers"); remembered per registry, so the question is asked once."""
        if self.has_referrers_api is False:
            return None
        resp, data = self.call("GET", "/v2/%s/referrers/%s" % (repo, digest), [_pull(repo)],
                               headers={"Accept": OCI_INDEX}, ok=(200, 404, 405), read_limit=MAX_MANIFEST_BYTES)
        if resp.status != 200 or (resp.getheader("Content-Type") or "").split(";")[0].strip() != OCI_INDEX:
            self.has_referrers_api = False
            return None
        self.has_referrers_api = True
        return data


def _next_page(link: str, repo: str) -> Optional[str]:
    """The next page of a tags list from its Link header (distribution-spec: </v2/<name>/tags/list?n=..&last=..>;
    rel="next"); only a path on the same registry and repository is followed."""
    match = re.match(r'\s*<([^>]*)>\s*;\s*rel="?next"?', link)
    if match is None:
        return None
    target = urllib.parse.urlsplit(match.group(1))
    if target.scheme or target.netloc or target.path != "/v2/%s/tags/list" % repo:
        return None
    return target.path + ("?" + target.query if target.query else "")


def _pull(repo: str) -> str:
    return "repository:%s:pull" % repo


def _push(repo: str) -> str:
    return "repository:%s:pull,push" % repo


def _relative(location: str) -> str:
    """Upload locations may be absolute URLs on the same host; keep path and query."""
    url = urllib.parse.urlsplit(location)
    return url.path + ("?" + url.query if url.query else "")


def _slice_factory(opener: Callable[[], BinaryIO], offset: int, length: int,
                   progress: Optional[Callable[[int], None]],
                   check: Optional["_BlobCheck"] = None) -> Callable[[], "_SliceReader"]:
    """A body factory: a fresh reader over bytes [offset, offset+length) each time it is called."""
    def make() -> "_SliceReader":
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
            raise ContentMismatch("the kit's copy of blob %s no longer has that sha256; it was not pushed "
                                  "(the installed version is damaged: see offline-bundle verify --kit)" % self.digest)


class _SliceReader:
    """File-like view that a transport streams from, in blocks, reporting progress."""

    def __init__(self, fh: BinaryIO, offset: int, length: int, progress: Optional[Callable[[int], None]],
                 check: Optional[_BlobCheck] = None) -> None:
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
