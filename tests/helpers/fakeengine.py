"""A fake Docker engine on a Unix socket, for faults a real engine will not produce (a load stream that
errors, an engine claiming an image under an ID that is not its config digest). The real engine
(tests/helpers/dockerd.py) is used for everything else."""

import http.server
import json
import socketserver
import threading


class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def fake_engine(path, load_lines, image_id, version=None):
    """``version``: what GET /version answers as "Version" (None: an engine that does not say)."""
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
            if self.path == "/version" and version is not None:
                return self._send(200, json.dumps({"Version": version, "ApiVersion": "1.43"}).encode())
            self._send(200, json.dumps({"Id": image_id, "RepoTags": []}).encode())

        def do_POST(self):
            if "/tag?" in self.path:  # POST /images/<id>/tag?repo=..&tag=..: no body
                return self._send(201, b"")
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return self._send(200, b"")
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
