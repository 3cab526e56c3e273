"""A fault-injecting HTTP reverse proxy on loopback, for testing a registry client's resilience.

It sits in front of a real registry (or serves a few static files itself), streams bodies in both
directions (never buffers a 100 MB blob), keeps client connections alive (HTTP/1.1), passes
``Range`` / ``206`` / ``Content-Range`` through untouched, and records every request.

Rules pick requests by method and path regex (optionally only the Nth matching request, or the
first ``times`` ones) and apply one action:

============================ =====================================================================
``cut_after(n)``             send the upstream status, headers (full Content-Length) and n body bytes,
                             then close the TCP connection (a download dying mid-blob)
``stall_after(n, seconds)``  send n body bytes, then go silent for ``seconds`` (read timeouts)
``status(code, ...)``        answer ``code`` without contacting upstream (``retry_after=`` adds
                             Retry-After; ``headers=``/``body=`` for anything else, e.g. a 401)
``corrupt(offset)``          flip one byte of the response body at ``offset`` (digest mismatch)
``delay(seconds)``           wait before forwarding (combines with one other matching rule)
``redirect(url)``            302 to ``url`` + the original path and query (``keep_path=False``: url
                             as is), e.g. to a second ``FaultProxy`` that records what arrives
``drop()``                   close the connection as soon as the request headers are read
============================ =====================================================================

Example::

    from tests.helpers.faults import FaultProxy, cut_after, status
    with FaultProxy(registry) as proxy:                      # upstream: a Registry or "http://host:port"
        proxy.add(cut_after(1000), method="GET", path=r"/blobs/sha256:", nth=1)
        proxy.add(status(429, retry_after=1), path=r"/manifests/", times=2)
        ... point the client at proxy.host ...
        assert [r.status for r in proxy.records if "/blobs/" in r.path] == [200, 206]
        assert all(r.authorization is None for r in other_proxy.records)

``FaultProxy(None, static={"/file": b"..."})`` is a plain file server (GET/HEAD, single Range) that
records requests: the target of a ``redirect`` when a test checks that credentials do not follow.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from tests.helpers.rules import Rule, header_value, pick, status_parts

CHUNK = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "expect"}


# --------------------------------------------------------------------------------------------------
# actions

@dataclass(frozen=True)
class Action:
    kind: str
    n: int = 0
    seconds: float = 0.0
    code: int = 0
    headers: Tuple[Tuple[str, str], ...] = ()
    body: bytes = b""
    url: str = ""
    keep_path: bool = True

    def __str__(self) -> str:
        return {"cut": "cut_after(%d)" % self.n, "stall": "stall_after(%d, %s)" % (self.n, self.seconds),
                "status": "status(%d)" % self.code, "corrupt": "corrupt(%d)" % self.n,
                "delay": "delay(%s)" % self.seconds, "redirect": "redirect(%s)" % self.url,
                "drop": "drop()"}[self.kind]


def cut_after(nbytes: int) -> Action:
    return Action("cut", n=nbytes)


def stall_after(nbytes: int, seconds: float) -> Action:
    return Action("stall", n=nbytes, seconds=seconds)


def status(code: int, retry_after: Optional[Union[int, str]] = None, headers: Optional[Dict[str, str]] = None,
           body: bytes = b"") -> Action:
    hdrs, body = status_parts(code, retry_after, headers, body)
    return Action("status", code=code, headers=hdrs, body=body)


def corrupt(byte_offset: int) -> Action:
    return Action("corrupt", n=byte_offset)


def delay(seconds: float) -> Action:
    return Action("delay", seconds=seconds)


def redirect(to_url: str, code: int = 302, keep_path: bool = True) -> Action:
    return Action("redirect", url=to_url.rstrip("/") if keep_path else to_url, code=code, keep_path=keep_path)


def drop() -> Action:
    return Action("drop")


def _header_dict(msg) -> Dict[str, str]:
    """Headers as a dict; a header sent several times (Accept) has its values joined with ', '."""
    out: Dict[str, str] = {}
    for k, v in msg.items():
        out[k] = out[k] + ", " + v if k in out else v
    return out


@dataclass
class Record:
    """One request as the proxy saw it, and what it did."""
    method: str
    path: str
    headers: Dict[str, str]
    status: int = 0               # status sent to the client (0: connection dropped before one)
    action: Optional[str] = None  # the fault applied, if any
    body_sent: int = 0            # response body bytes sent to the client
    request_body: int = 0         # request body bytes received from the client
    upstream_status: Optional[int] = None

    @property
    def authorization(self) -> Optional[str]:
        return self.header("Authorization")

    def header(self, name: str) -> Optional[str]:
        return header_value(self.headers, name)


# --------------------------------------------------------------------------------------------------
# the proxy

class _Upstream:
    """A response to relay: status, headers, body iterator (from http.client or the static table)."""

    def __init__(self, code: int, reason: str, headers: List[Tuple[str, str]], body: Iterator[bytes],
                 length: Optional[int], close=lambda: None) -> None:
        self.code, self.reason, self.headers = code, reason, headers
        self.body, self.length, self.close = body, length, close


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.open_conns: set = set()
        self.conns_lock = threading.Lock()

    def get_request(self):
        conn, addr = super().get_request()
        with self.conns_lock:
            self.open_conns.add(conn)
        return conn, addr

    def shutdown_request(self, request) -> None:
        with self.conns_lock:
            self.open_conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        # a client hanging up mid-response is normal in fault tests; keep pytest output clean
        pass


class FaultProxy:
    """Reverse proxy with fault rules; see the module docstring. Starts on construction."""

    def __init__(self, upstream=None, static: Optional[Dict[str, Union[bytes, Path]]] = None,
                 tls: Optional[Tuple[Path, Path]] = None, upstream_ca: Optional[Path] = None,
                 timeout: float = 60.0) -> None:
        if upstream is not None and not isinstance(upstream, str):   # a helpers.registry.Registry
            upstream_ca = upstream_ca or getattr(upstream, "ca_file", None)
            upstream = upstream.url
        self.upstream = urllib.parse.urlsplit(upstream) if upstream else None
        self.static = dict(static or {})
        self.upstream_ctx = None
        if self.upstream and self.upstream.scheme == "https":
            self.upstream_ctx = ssl.create_default_context(cafile=str(upstream_ca) if upstream_ca else None)
        self.rules: List[Rule] = []
        self.records: List[Record] = []
        self._lock = threading.Lock()
        self.timeout = timeout
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = outer.timeout

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
            self.scheme = "https"
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fault-proxy", daemon=True)
        self._thread.start()

    # -- public API
    @property
    def host(self) -> str:
        return "127.0.0.1:%d" % self.port

    @property
    def url(self) -> str:
        return "%s://%s" % (self.scheme, self.host)

    def add(self, action: Action, method: Optional[str] = None, path: Optional[str] = None,
            nth: Union[int, Iterable[int], None] = None, times: Optional[int] = None) -> Rule:
        rule = Rule(action, method, path, nth, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self, records: bool = False) -> None:
        """Remove every rule (and the records, if asked)."""
        with self._lock:
            self.rules = []
            if records:
                self.records = []

    def requests(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Record]:
        """Records filtered by method and path regex."""
        rx = re.compile(path) if path else None
        with self._lock:
            recs = list(self.records)
        return [r for r in recs if (not method or r.method == method.upper()) and (not rx or rx.search(r.path))]

    def stop(self) -> None:
        self._httpd.shutdown()
        with self._httpd.conns_lock:
            conns = list(self._httpd.open_conns)
        for c in conns:   # wake keep-alive handler threads blocked in recv()
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals
    def _pick(self, method: str, path: str) -> Tuple[List[Action], Optional[Action]]:
        """Delays (all that apply) and the first other action that applies; counts matches."""
        with self._lock:
            return pick(self.rules, method, path)

    @staticmethod
    def _request_body(h: BaseHTTPRequestHandler, counter: list) -> Iterator[bytes]:
        """The client's request body, de-chunked, as it arrives."""
        te = (h.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = h.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return
                left = size
                while left:
                    data = h.rfile.read(min(left, CHUNK))
                    if not data:
                        raise ConnectionError("client closed inside a chunk")
                    left -= len(data)
                    counter[0] += len(data)
                    yield data
                h.rfile.readline(3)  # CRLF after the chunk
        else:
            left = int(h.headers.get("Content-Length") or 0)
            while left:
                data = h.rfile.read(min(left, CHUNK))
                if not data:
                    raise ConnectionError("client closed inside the body")
                left -= len(data)
                counter[0] += len(data)
                yield data

    def _forward(self, h: BaseHTTPRequestHandler, body: Iterator[bytes]) -> _Upstream:
        up = self.upstream
        port = up.port or (443 if up.scheme == "https" else 80)
        if up.scheme == "https":
            conn = http.client.HTTPSConnection(up.hostname, port, timeout=self.timeout, context=self.upstream_ctx)
        else:
            conn = http.client.HTTPConnection(up.hostname, port, timeout=self.timeout)
        # a list, not a dict: Go clients send Accept once per media type, and every line counts
        headers = [(k, v) for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP]
        # the registry builds absolute Location URLs from Host and the scheme it sees: keep the
        # client's Host and say which scheme the client used, so uploads keep going through us
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-proto"]
        headers.append(("X-Forwarded-Proto", self.scheme))
        chunked = "chunked" in (h.headers.get("Transfer-Encoding") or "").lower()
        has_body = chunked or int(h.headers.get("Content-Length") or 0) > 0
        conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        if has_body:
            for data in body:
                if chunked:
                    conn.send(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    conn.send(data)
            if chunked:
                conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        length = resp.getheader("Content-Length")
        hdrs = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]

        def it():
            while True:
                data = resp.read(CHUNK)
                if not data:
                    return
                yield data

        no_body = h.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        return _Upstream(resp.status, resp.reason, hdrs, iter(()) if no_body else it(),
                         None if no_body else (int(length) if length is not None else None), conn.close)

    def _serve_static(self, h: BaseHTTPRequestHandler) -> _Upstream:
        path = urllib.parse.urlsplit(h.path).path
        item = self.static.get(path)
        if item is None or h.command not in ("GET", "HEAD"):
            body = b"not found\n"
            return _Upstream(404, "Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                             iter([body] if h.command != "HEAD" else []), len(body) if h.command != "HEAD" else None)
        data = item.read_bytes() if isinstance(item, Path) else item
        total, start, end, code = len(data), 0, len(data) - 1, 200
        m = re.match(r"bytes=(\d*)-(\d*)$", h.headers.get("Range") or "")
        headers = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes")]
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            else:
                start = max(0, total - int(m.group(2)))
            if start >= total:
                return _Upstream(416, "Range Not Satisfiable", [("Content-Range", "bytes */%d" % total),
                                                                ("Content-Length", "0")], iter(()), 0)
            code = 206
            headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end, total)))
        part = data[start:end + 1]
        headers.append(("Content-Length", str(len(part))))
        if h.command == "HEAD":
            return _Upstream(code, "OK", headers, iter(()), None)
        return _Upstream(code, "OK", headers, (part[i:i + CHUNK] for i in range(0, len(part), CHUNK)), len(part))

    @staticmethod
    def _kill(h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        try:
            h.wfile.flush()
        except OSError:
            pass
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        rec = Record(h.command, h.path, _header_dict(h.headers))
        with self._lock:
            self.records.append(rec)
        delays, action = self._pick(h.command, h.path)
        rec.action = str(action) if action else None
        for d in delays:
            time.sleep(d.seconds)
        counter = [0]
        body = self._request_body(h, counter)

        if action and action.kind == "drop":
            self._kill(h)
            return
        if action and action.kind in ("status", "redirect"):
            for _ in body:  # drain, so the connection stays usable
                pass
            rec.request_body = counter[0]
            if action.kind == "status":
                code, hdrs, payload = action.code, list(action.headers), action.body
            else:
                loc = action.url + h.path if action.keep_path else action.url
                code, hdrs, payload = action.code or 302, [("Location", loc)], b""
            h.send_response(code)
            for k, v in hdrs:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
                rec.body_sent = len(payload)
            rec.status = code
            return

        try:
            up = self._forward(h, body) if self.upstream else self._serve_static(h)
        except (OSError, http.client.HTTPException) as e:
            msg = ("proxy: upstream failed: %s\n" % e).encode()
            rec.request_body = counter[0]
            h.send_response(502)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(len(msg)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(msg)
            h.close_connection = True
            rec.status = 502
            return
        if not self.upstream:
            for _ in body:
                pass
        rec.request_body = counter[0]
        rec.upstream_status = up.code
        try:
            self._relay(h, up, action, rec)
        finally:
            up.close()

    def _relay(self, h: BaseHTTPRequestHandler, up: _Upstream, action: Optional[Action], rec: Record) -> None:
        h.send_response(up.code, up.reason)
        rec.status = up.code
        chunked_out = up.length is None and not any(k.lower() == "content-length" for k, _ in up.headers)
        for k, v in up.headers:
            h.send_header(k, v)
        if chunked_out and h.command != "HEAD":
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        limit = action.n if action and action.kind in ("cut", "stall") else None
        flip = action.n if action and action.kind == "corrupt" else None
        sent = 0
        try:
            for data in up.body:
                if flip is not None and sent <= flip < sent + len(data):
                    i = flip - sent
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                if limit is not None and sent + len(data) >= limit:
                    data = data[:limit - sent]
                    self._write(h, data, chunked_out)
                    sent += len(data)
                    rec.body_sent = sent
                    if action.kind == "stall":
                        h.wfile.flush()
                        time.sleep(action.seconds)
                    self._kill(h)
                    return
                self._write(h, data, chunked_out)
                sent += len(data)
                rec.body_sent = sent
            if limit is not None and action.kind == "stall" and sent <= limit:
                time.sleep(action.seconds)   # body shorter than the stall point: stall before finishing
            if chunked_out and h.command != "HEAD":
                h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (OSError, http.client.HTTPException):
            # client or upstream hung up mid-body: nothing sensible left to send on this connection
            self._kill(h)

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, data: bytes, chunked: bool) -> None:
        if not data:
            return
        if chunked:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            h.wfile.write(data)
