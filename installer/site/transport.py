"""How one HTTP request reaches a registry: the Transport seam under the registry client.

A ``Transport`` has one method, ``send(request) -> Response``: it sends one request exactly as given (no
auth, no redirects, no retries: those are the client's, in registry.py, auth.py and retry.py) and returns
the response with its body unread. ``HTTPTransport`` is the real one, on http.client; the unit tests
plug in an in-memory registry (tests/helpers/memregistry.py) instead.

What HTTPTransport owns:
- a pool of keep-alive connections per thread, keyed by (scheme, host:port); a connection whose
  request failed, or whose response was closed before its end, is dropped, never reused;
- TLS verified (system CAs, or the CA file given) except for a host named insecure, which gets TLS
  without verification (whether plain HTTP is allowed at all is the client's rule, not the transport's).

Failures below HTTP (refused, reset, timed out, cut mid-body, not HTTP) raise ``TransportError``;
two of them are never worth another try and have their own class: ``CertificateError`` (the TLS
certificate does not verify) and ``NotTLS`` (https to a server that does not speak TLS). An exception
raised by the request body itself (e.g. a blob that no longer has its digest) goes through unchanged.
"""

import http.client
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Mapping, Optional, Protocol, Tuple, Union

CHUNK = 1 << 20


class Readable(Protocol):
    """A request body streamed in blocks (a file, or registry._SliceReader)."""

    def read(self, n: int = -1) -> bytes: ...


Body = Union[bytes, Readable]


class TransportError(Exception):
    """The request did not complete at the HTTP level; the connection it used has been dropped."""


class CertificateError(TransportError):
    """The server's TLS certificate does not verify against the trusted CAs."""

    def __init__(self, netloc: str, reason: str) -> None:
        super().__init__("%s: certificate verify failed: %s" % (netloc, reason))
        self.netloc = netloc
        self.reason = reason


class NotTLS(TransportError):
    """https was asked of a server that does not speak TLS at all (a plain-HTTP registry)."""

    def __init__(self, netloc: str, detail: str) -> None:
        super().__init__("%s does not speak TLS: %s" % (netloc, detail))
        self.netloc = netloc


@dataclass(frozen=True)
class Request:
    """One HTTP request as it goes on the wire. ``target`` is the path with its query; ``body`` is bytes, a
    readable streamed in blocks, or None (the caller sets Content-Length in ``headers``)."""

    method: str
    scheme: str
    netloc: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Optional[Body] = None

    @property
    def url(self) -> str:
        return "%s://%s%s" % (self.scheme, self.netloc, self.target)

    def header(self, name: str) -> Optional[str]:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class Response:
    """Status, headers (looked up case-insensitively) and a body read in pieces.

    ``read(n)`` returns b"" at the end of the body (also when a connection closes early, as http.client
    does: callers compare with the size they expect) and raises TransportError when the connection breaks.
    ``close()`` releases the response; a body not read to its end makes the transport drop the connection.
    """

    def __init__(self, status: int, headers: Iterable[Tuple[str, str]], reader: Callable[[int], bytes],
                 closer: Optional[Callable[[], None]] = None) -> None:
        self.status = status
        self.headers: Dict[str, str] = {}
        for key, value in headers:
            low = key.lower()
            self.headers[low] = self.headers[low] + ", " + value if low in self.headers else value
        self._reader = reader
        self._closer = closer
        self.closed = False

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.headers.get(name.lower(), default)

    def read(self, n: int = -1) -> bytes:
        return self._reader(n)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._closer is not None:
                self._closer()

    def __repr__(self) -> str:
        return "Response(%d)" % self.status


class Transport(Protocol):
    """Sends one request as given and returns its response, body unread. Raises TransportError (or one of its
    subclasses) when no HTTP response could be had; any exception from the request body goes through as is."""

    def send(self, request: Request) -> Response: ...


_NETWORK_ERRORS = (ConnectionError, http.client.HTTPException, socket.timeout, OSError)


class HTTPTransport:
    """The real transport: http.client, one connection pool per thread. Thread-safe."""

    def __init__(self, ca_file: Optional[str] = None, insecure_hosts: Iterable[str] = (), timeout: float = 60.0,
                 blocksize: int = CHUNK) -> None:
        self.insecure_hosts = frozenset(insecure_hosts)
        self.timeout = timeout
        self.blocksize = blocksize
        self._verified = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self._unverified = ssl._create_unverified_context()
        self._local = threading.local()

    def _unverified_for(self, netloc: str) -> bool:
        host_only = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
        return netloc in self.insecure_hosts or host_only in self.insecure_hosts

    def _pool(self) -> Dict[Tuple[str, str], http.client.HTTPConnection]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool = self._pool()
        conn = pool.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                ctx = self._unverified if self._unverified_for(netloc) else self._verified
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=ctx, blocksize=self.blocksize)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=self.blocksize)
            pool[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._pool().pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def send(self, request: Request) -> Response:
        scheme, netloc = request.scheme, request.netloc
        conn = self._connection(scheme, netloc)
        try:
            conn.request(request.method, request.target, body=request.body, headers=dict(request.headers))
            resp = conn.getresponse()
        except ssl.SSLCertVerificationError as exc:
            self._drop(scheme, netloc)
            raise CertificateError(netloc, str(exc.verify_message or exc.reason)) from exc
        except ssl.SSLError as exc:
            self._drop(scheme, netloc)
            if "WRONG_VERSION_NUMBER" in str(exc) or "wrong version number" in str(exc):
                raise NotTLS(netloc, str(exc)) from exc
            raise TransportError("%s %s: %s" % (request.method, netloc, exc)) from exc
        except _NETWORK_ERRORS as exc:
            self._drop(scheme, netloc)
            raise TransportError("%s %s: %s" % (request.method, netloc, exc)) from exc
        except BaseException:  # e.g. a body that refused to finish (registry._BlobCheck): the connection is mid-request
            self._drop(scheme, netloc)
            raise

        def reader(n: int) -> bytes:
            try:
                return resp.read(n) if n is not None and n >= 0 else resp.read()
            except _NETWORK_ERRORS as exc:
                self._drop(scheme, netloc)
                raise TransportError("%s %s: %s" % (request.method, netloc, exc)) from exc

        def closer() -> None:
            if resp.isclosed():
                if resp.length:  # the body ended before its Content-Length: the server hung up
                    self._drop(scheme, netloc)
                return
            if request.method == "HEAD" or resp.length == 0:
                try:
                    resp.read()  # nothing left to read: the connection stays in the pool
                    return
                except _NETWORK_ERRORS:
                    pass
            self._drop(scheme, netloc)

        return Response(resp.status, resp.getheaders(), reader, closer)
