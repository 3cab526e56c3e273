"""Docker loading against a fake engine on a unix socket: fault injection only (the real engine is tested
in tests/integration/test_images_install.py). Errors inside the load stream, and an image ID that is not
the config digest, are exit 10."""

import http.server
import json
import socketserver
import threading

import pytest

from installer.site.dockerload import Docker
from installer.errors import DeployError


class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def fake_engine(path, load_lines, image_id):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def address_string(self):
            return "unix"

        def _send(self, code, body):
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_ping":
                return self._send(200, b"OK")
            self._send(200, json.dumps({"Id": image_id, "RepoTags": []}).encode())

        def do_POST(self):
            # drain the chunked tar stream
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
            self._send(200, b"\n".join(json.dumps(x).encode() for x in load_lines))

    server = _Engine(str(path), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_an_error_inside_the_load_stream_is_exit_10(tmp_path):
    server = fake_engine(tmp_path / "d.sock", [{"stream": "Loading layer"}, {"errorDetail": {"message": "no space"},
                                                                          "error": "write /var/lib/docker: no space"}], "x")
    try:
        with pytest.raises(DeployError) as info:
            Docker(str(tmp_path / "d.sock")).load(iter([b"\0" * 1024]))
        assert info.value.exit_code == 10 and "no space" in info.value.message
    finally:
        server.shutdown()


def test_a_missing_engine_is_exit_10(tmp_path):
    with pytest.raises(DeployError) as info:
        Docker(str(tmp_path / "none.sock")).ping()
    assert info.value.exit_code == 10 and "Docker engine" in info.value.message
