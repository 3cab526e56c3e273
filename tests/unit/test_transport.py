"""HTTPTransport (installer/site/transport.py), the real transport, against small servers on loopback: keep-alive
connections reused, a connection whose answer was cut or left unread never reused, and the failures below HTTP
sorted into what the retry policy needs (TransportError, CertificateError, NotTLS)."""

import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.helpers.ca import default_ca

from installer.errors import ContentMismatch
from installer.site.transport import CertificateError, HTTPTransport, NotTLS, Request, TransportError


class Server:
    """Answers GET /ok (10 bytes), /big (1 MiB), /cut (declares 1000 bytes, sends 10, hangs up); PUT echoes its
    body length. Records the client port of every request: one port, one connection."""

    def __init__(self, tls: bool = False) -> None:
        self.ports = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.ports.append(self.client_address[1])
                body = {"/ok": b"0123456789", "/big": b"x" * (1 << 20), "/cut": b"0123456789"}[self.path]
                self.send_response(200)
                self.send_header("Content-Length", "1000" if self.path == "/cut" else str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if self.path == "/cut":
                    self.wfile.flush()
                    self.close_connection = True

            def do_PUT(self):
                outer.ports.append(self.client_address[1])
                data = self.rfile.read(int(self.headers["Content-Length"]))
                reply = str(len(data)).encode()
                self.send_response(201)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.ca_file = None
        if tls:
            crt, key = default_ca().server_pem()
            folder = Path(tempfile.mkdtemp())
            (folder / "s.crt").write_bytes(crt)
            (folder / "s.key").write_bytes(key)
            (folder / "ca.crt").write_bytes(default_ca().cert_pem)
            self.ca_file = str(folder / "ca.crt")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(folder / "s.crt"), str(folder / "s.key"))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plain():
    server = Server()
    yield server
    server.stop()


@pytest.fixture
def tls():
    server = Server(tls=True)
    yield server
    server.stop()


def get(transport, scheme, host, path="/ok"):
    resp = transport.send(Request("GET", scheme, host, path))
    try:
        return resp.status, resp.read()
    finally:
        resp.close()


def test_a_connection_is_kept_alive_and_reused(plain):
    t = HTTPTransport()
    assert get(t, "http", plain.host) == (200, b"0123456789")
    assert get(t, "http", plain.host) == (200, b"0123456789")
    resp = t.send(Request("PUT", "http", plain.host, "/up", {"Content-Length": "5"}, b"hello"))
    assert (resp.status, resp.read(), resp.getheader("content-length")) == (201, b"5", "1")
    resp.close()
    assert len(set(plain.ports)) == 1


def test_an_answer_closed_before_its_end_drops_the_connection(plain):
    t = HTTPTransport()
    resp = t.send(Request("GET", "http", plain.host, "/big"))
    assert resp.read(10) == b"x" * 10
    resp.close()
    assert get(t, "http", plain.host) == (200, b"0123456789")
    assert len(set(plain.ports)) == 2


def test_a_body_cut_short_reads_as_its_end_and_the_connection_is_not_reused(plain):
    t = HTTPTransport()
    resp = t.send(Request("GET", "http", plain.host, "/cut"))
    got = b""
    while True:
        chunk = resp.read(100)
        if not chunk:
            break
        got += chunk
    resp.close()
    assert got == b"0123456789"  # 10 of the 1000 declared: the caller sees it is short
    assert get(t, "http", plain.host) == (200, b"0123456789")
    assert len(set(plain.ports)) == 2


def test_a_request_body_that_raises_goes_through_unchanged_and_drops_the_connection(plain):
    t = HTTPTransport()
    get(t, "http", plain.host)

    class Refusing:
        def read(self, n=-1):
            raise ContentMismatch("the kit's copy of blob sha256:... no longer has that sha256")

    with pytest.raises(ContentMismatch):
        t.send(Request("PUT", "http", plain.host, "/up", {"Content-Length": "5"}, Refusing()))
    assert get(t, "http", plain.host) == (200, b"0123456789")
    assert len(set(plain.ports)) == 2


def test_a_refused_connection_is_a_transport_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError, match="GET 127.0.0.1:%d: .*[Rr]efused" % port) as caught:
        get(HTTPTransport(timeout=5), "http", "127.0.0.1:%d" % port)
    assert not isinstance(caught.value, (CertificateError, NotTLS))


def test_https_to_a_plain_server_is_not_tls(plain):
    with pytest.raises(NotTLS) as caught:
        get(HTTPTransport(), "https", plain.host)
    assert caught.value.netloc == plain.host


def test_tls_is_verified_unless_the_host_is_named_insecure(tls):
    with pytest.raises(CertificateError) as caught:
        get(HTTPTransport(), "https", tls.host)
    assert caught.value.netloc == tls.host and "certificate" in caught.value.reason
    assert get(HTTPTransport(ca_file=tls.ca_file), "https", tls.host) == (200, b"0123456789")
    assert get(HTTPTransport(insecure_hosts=[tls.host]), "https", tls.host) == (200, b"0123456789")
    assert get(HTTPTransport(insecure_hosts=["127.0.0.1"]), "https", tls.host) == (200, b"0123456789")


def test_each_thread_has_its_own_connection(plain):
    t = HTTPTransport()
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(t, "http", plain.host))) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [(200, b"0123456789")] * 3 and len(set(plain.ports)) == 3  # no connection shared
