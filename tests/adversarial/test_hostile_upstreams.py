"""Hostile upstreams on the build side (issue 10, items 10 and 11), written from the attacker's side.

The attacker runs a registry or a chart repository the build reads from. They answer a digest that is a
path (to make the build read, then delete, the publisher's signing key), a lock file or an inventory
whose digests are not digests, a body that never ends, a chart that unpacks to gigabytes, a redirect
from https to http. Every case must stop with its documented exit code and one sentence, touch nothing
outside the cache, and stay within bounded memory (the child's peak RSS is measured).

The servers are written here (http.server on 127.0.0.1): a real registry cannot be made hostile.
"""

import gzip
import hashlib
import io
import json
import os
import re
import resource
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import _cli_base, write_manifest
from tests.helpers.craft import read_entries
from tests.helpers.offline import seal_provenance
from tests.helpers.ca import default_ca

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
RSS_BOUND = 400 * MiB  # a normal build peaks near 100 MB; an unbounded read of an endless body does not stop
KEY_TEXT = (b"-----BEGIN PRIVATE KEY-----\n"
            b"MC4CAQAwBQYDK2VwBCIEIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE\n"
            b"-----END PRIVATE KEY-----\n")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# the attacker's server

class Hostile:
    """An HTTP(S) server on 127.0.0.1 that answers what the test tells it; records every request.

    ``route(method, regex, fn)``: ``fn(handler)`` writes the whole answer. Unrouted paths get 404.
    """

    def __init__(self, tls: bool = False) -> None:
        self.routes = []
        self.seen = []  # (method, path, headers)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                outer.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                for method, pattern, fn in outer.routes:
                    if method in (None, self.command) and re.fullmatch(pattern, self.path.split("?")[0]):
                        return fn(self)
                reply(self, 404, b"not here\n")

            do_GET = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            self.ca_file = tempfile.NamedTemporaryFile(suffix=".crt", delete=False)
            crt, key = default_ca().server_pem()
            self.ca_file.write(default_ca().cert_pem)
            self.ca_file.close()
            with tempfile.TemporaryDirectory() as d:
                Path(d, "s.crt").write_bytes(crt)
                Path(d, "s.key").write_bytes(key)
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(os.path.join(d, "s.crt"), os.path.join(d, "s.key"))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        self.url = "%s://%s" % (self.scheme, self.host)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, method, pattern, fn) -> "Hostile":
        self.routes.insert(0, (method, pattern, fn))
        return self

    def static(self, path: str, body: bytes, headers=None) -> "Hostile":
        return self.route(None, re.escape(path), lambda h: reply(h, 200, body, headers))

    def requests(self, pattern: str):
        return [s for s in self.seen if re.search(pattern, s[1])]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(h, status: int, body: bytes, headers=None) -> None:
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def endless(h, declared=None, chunked=False) -> None:
    """A body that never ends (or declares 10 GiB): until the client hangs up."""
    h.send_response(200)
    if declared is not None:
        h.send_header("Content-Length", str(declared))
    elif chunked:
        h.send_header("Transfer-Encoding", "chunked")
    h.send_header("Connection", "close")
    h.end_headers()
    block = b"# padding padding padding padding padding padding padding padding\n" * (MiB // 64)
    try:
        while True:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
    except OSError:
        pass
    h.close_connection = True


def raw_header_reply(h, lines: bytes, body: bytes = b"") -> None:
    """Send the status line and headers as given, byte for byte (folded headers, odd values)."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: %d\r\n\r\n" % len(body))
    if h.command != "HEAD":
        h.wfile.write(body)
    h.close_connection = True


@pytest.fixture
def hostile():
    made = []

    def make(tls=False) -> Hostile:
        made.append(Hostile(tls))
        return made[-1]
    yield make
    for server in made:
        server.stop()


# --------------------------------------------------------------------------------------------------
# running the real CLI with its peak memory measured

class Measured:
    def __init__(self, rc, out, err, rss, seconds) -> None:
        self.rc, self.out, self.err, self.rss, self.seconds = rc, out, err, rss, seconds

    @property
    def json(self) -> dict:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return "Measured(rc=%d, rss=%d MB, %.1fs, out=%r, err=%r)" % (
            self.rc, self.rss // MiB, self.seconds, self.out[-1500:], self.err[-1500:])


def _address_space_cap():
    # Only a safety net for the machine: unfixed code reading an endless body would otherwise eat it.
    # The assertion is on the measured peak RSS, far below this.
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def run_measured(*args, env=None, timeout=120) -> Measured:
    """The offline-bundle CLI as a child; its peak RSS from wait4 (this child only, not the test's others)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(_cli_base() + [str(a) for a in args], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=full_env, preexec_fn=_address_space_cap)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss * 1024, seconds)


def one_sentence(r) -> bool:
    lines = r.err.strip().splitlines()
    return len(lines) == 1 and "Traceback" not in r.err and lines[0].startswith("offline-bundle: ")


# --------------------------------------------------------------------------------------------------
# a registry that lies about digests (item 10)

def tar_of(files) -> bytes:
    """An uncompressed tar (PAX, tarfile's default) of regular files, each (name, bytes), tarfile's defaults else."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def tiny_image():
    """(manifest bytes, {digest: blob}) of a valid one-layer linux/amd64 image."""
    raw = tar_of([("hello.txt", b"hello\n")])
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(raw)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": "sha256:" + sha(layer), "size": len(layer)}]}).encode()
    return manifest, {"sha256:" + sha(config): config, "sha256:" + sha(layer): layer}


def fake_registry(server: Hostile, manifest: bytes, blobs: dict, repo: str = "team/app") -> Hostile:
    """Serve one image honestly: /v2/, its manifest by tag and digest, its blobs."""
    headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": "sha256:" + sha(manifest)}
    server.static("/v2/", b"{}", {"Content-Type": "application/json"})
    server.route(None, r"/v2/%s/manifests/[^/]+" % re.escape(repo), lambda h: reply(h, 200, manifest, headers))
    for digest, data in blobs.items():
        server.static("/v2/%s/blobs/%s" % (repo, digest), data)
    return server


def image_manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "m", tenants=False, extra="  images:\n    - ref: docker.io/team/app:1.0\n")


def build_args(m: Path, key, tmp_path: Path, server: Hostile, *extra):
    return ["build", m, "--key", key, "--out", tmp_path / "out", "--cache", tmp_path / "x" / "cache",
            "--mirror", "docker.io=%s" % server.host, "--insecure-registry", server.host, *extra]


@pytest.mark.parametrize("kind", ["absolute path", "relative path", "trailing newline", "upper-case hex",
                                  "too short", "get header is a path"])
def test_a_registry_digest_that_is_not_a_digest_reads_and_deletes_nothing(ob, key, tmp_path, hostile, kind):
    """The reproduction of item 10: the tag's digest header names the publisher's signing key."""
    manifest, blobs = tiny_image()
    good = sha(manifest)
    # The fake signing key, and the files a relative digest reaches from the cache's two folders
    # (blobs/sha256 and manifest-types are one level apart, so one '../' path lands on both).
    victim = tmp_path / "signing" / "bundle.key"
    victim.parent.mkdir()
    victim.write_bytes(KEY_TEXT)
    near = [tmp_path / "x" / "victim.key", tmp_path / "victim.key"]
    near[0].parent.mkdir()
    for path in near:
        path.write_bytes(KEY_TEXT)
    header = {
        "absolute path": b"Docker-Content-Digest: sha256:%s\r\n" % str(victim).encode(),
        "relative path": b"Docker-Content-Digest: sha256:../../../victim.key\r\n",
        # A folded header: http.client hands the value over with its line break still in it.
        "trailing newline": b"Docker-Content-Digest: sha256:%s\r\n\t\r\n" % good.encode(),
        "upper-case hex": b"Docker-Content-Digest: sha256:%s\r\n" % good.upper().encode(),
        "too short": b"Docker-Content-Digest: sha256:%s\r\n" % good[:12].encode(),
        "get header is a path": b"",
    }[kind]
    server = fake_registry(hostile(), manifest, blobs)
    server.route("HEAD", r"/v2/team/app/manifests/1\.0",
                 lambda h: raw_header_reply(h, b"Content-Type: %s\r\n" % OCI_MANIFEST.encode() + header, manifest))
    if kind == "get header is a path":
        get_header = (b"Content-Type: %s\r\nDocker-Content-Digest: sha256:%s\r\n"
                      % (OCI_MANIFEST.encode(), str(victim).encode()))
        server.route("GET", r"/v2/team/app/manifests/.*", lambda h: raw_header_reply(h, get_header, manifest))
    r = ob(*build_args(image_manifest(tmp_path), key, tmp_path, server), "--json")
    assert r.rc == 7, r
    assert "not a sha256 digest" in r.json["error"]["message"], r
    for path in [victim] + near:
        assert path.read_bytes() == KEY_TEXT, "%s was touched" % path
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    r = ob(*build_args(image_manifest(tmp_path), key, tmp_path, server))
    assert r.rc == 7 and one_sentence(r), r
    assert victim.read_bytes() == KEY_TEXT


def test_an_image_config_larger_than_a_config_may_be_is_refused_before_download(ob, key, tmp_path, hostile):
    manifest, blobs = tiny_image()
    doc = json.loads(manifest)
    doc["config"]["size"] = 4 * MiB + 1  # the registry declares a config no client reads whole
    manifest = json.dumps(doc).encode()
    server = fake_registry(hostile(), manifest, {})
    server.route("GET", r"/v2/team/app/blobs/.*", endless)
    r = run_measured(*build_args(image_manifest(tmp_path), key, tmp_path, server))
    assert r.rc == 7 and one_sentence(r), r
    assert "4 MiB" in r.err, r
    assert not server.requests("/blobs/"), server.seen


# --------------------------------------------------------------------------------------------------
# lock files and delta inventories whose digests are not digests (item 10)

@pytest.mark.parametrize("kind", ["image digest with a trailing newline", "image digest that is a path",
                                  "chart digest with a trailing newline", "upper-case hex",
                                  "file sha256 with a trailing newline"])
def test_a_lock_file_digest_that_is_not_a_digest_is_exit_3(ob, key, tmp_path, hostile, kind):
    manifest, blobs = tiny_image()
    server = fake_registry(hostile(), manifest, blobs)
    m = image_manifest(tmp_path)
    good = "sha256:" + sha(manifest)
    lock = {"manifest_sha256": sha(m.read_bytes()),
            "images": {"docker.io/team/app:1.0": {"digest": good, "platforms": "all"}}, "charts": {}, "files": {}}
    if kind == "image digest with a trailing newline":
        lock["images"]["docker.io/team/app:1.0"]["digest"] = good + "\n"
    elif kind == "image digest that is a path":
        lock["images"]["docker.io/team/app:1.0"]["digest"] = "sha256:/etc/passwd"
    elif kind == "chart digest with a trailing newline":
        lock["charts"]["web"] = {"version": "1.0.0", "digest": good + "\n"}
    elif kind == "upper-case hex":
        lock["images"]["docker.io/team/app:1.0"]["digest"] = good.upper().replace("SHA256", "sha256")
    else:
        lock["files"]["config/app.yaml"] = sha(b"listen: 9090\n") + "\n"
    (m.parent / "bundle.lock.json").write_text(json.dumps(lock))
    r = ob(*build_args(m, key, tmp_path, server))
    assert r.rc == 3 and "Traceback" not in r.err, r
    assert "lock file" in r.err
    assert not server.requests("/manifests/"), "the build went on after reading a bad lock file"


@pytest.mark.parametrize("kind", ["a path in sha256", "upper-case hex", "a trailing newline", "bundle_id a path"])
def test_a_delta_inventory_whose_digests_are_not_hex_is_exit_3(ob, key, tmp_path, kind):
    good = sha(b"listen: 9090\n")
    inv = {"kind": "offline-bundle-inventory", "format": 1,
           "bundles": [{"name": "demo", "version": "0.9.0", "bundle_id": sha(b"x")}], "sha256": [good]}
    if kind == "a path in sha256":
        inv["sha256"].append("../../../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    elif kind == "upper-case hex":
        inv["sha256"].append(good.upper())
    elif kind == "a trailing newline":
        inv["sha256"].append(good[:63] + "\n")
    else:
        inv["bundles"][0]["bundle_id"] = "../../etc/passwd"
    (tmp_path / "inv.json").write_text(json.dumps(inv))
    m = write_manifest(tmp_path / "m", tenants=False)
    r = ob("build", m, "--key", key, "--out", tmp_path / "out", "--delta-from", tmp_path / "inv.json")
    assert r.rc == 3 and one_sentence(r), r
    assert "inventory" in r.err


# --------------------------------------------------------------------------------------------------
# chart repositories (item 11)

CHART_YAML = b"apiVersion: v2\nname: web\nversion: 1.0.0\n"
CONFIGMAP_TEMPLATE = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"


def chart_tgz(template: bytes = CONFIGMAP_TEMPLATE) -> bytes:
    """A small valid chart archive, web 1.0.0, whose one template is ``template``."""
    return gzip.compress(tar_of([("web/Chart.yaml", CHART_YAML), ("web/values.yaml", b"{}\n"),
                                 ("web/templates/cm.yaml", template)]), mtime=0)


def bomb_tgz(gib: int) -> bytes:
    """A chart whose first member is ``gib`` GiB of zeros: a few MB compressed (gzip members of 64 MiB each)."""
    head = tarfile.TarInfo("web/zeros")
    head.size = gib << 30
    zeros = gzip.compress(b"\0" * (64 * MiB), mtime=0)
    tail = tar_of([("web/Chart.yaml", CHART_YAML)])
    return (gzip.compress(head.tobuf(format=tarfile.USTAR_FORMAT), mtime=0) + zeros * (gib * 16)
            + gzip.compress(tail, mtime=0))


def index_yaml(base_url: str, tgz: bytes, digest=None, urls=None) -> bytes:
    entry = {"apiVersion": "v2", "name": "web", "version": "1.0.0",
             "urls": urls if urls is not None else ["%s/web-1.0.0.tgz" % base_url],
             "digest": sha(tgz) if digest is None else digest}
    return json.dumps({"apiVersion": "v1", "entries": {"web": [entry]}}).encode()  # JSON is YAML


def chart_manifest(tmp_path: Path, repo: str) -> Path:
    return write_manifest(tmp_path / "m", tenants=False,
                          extra="  charts:\n    - name: web\n      repo: %s\n      version: 1.0.0\n" % repo)


def chart_build(m: Path, key, tmp_path: Path, *extra):
    return ["build", m, "--key", key, "--out", tmp_path / "out", "--cache", tmp_path / "cache", *extra]


def serve_chart(server: "Hostile", tgz: bytes, **index) -> "Hostile":
    """The chart web 1.0.0 at ``server``: its index (``index`` as for index_yaml) and its archive."""
    server.static("/index.yaml", index_yaml(server.url, tgz, **index))
    return server.static("/web-1.0.0.tgz", tgz)


def build_from(server: "Hostile", key, tmp_path: Path, *extra):
    """The build arguments for a manifest whose chart comes from ``server`` (named insecure: plain HTTP)."""
    return chart_build(chart_manifest(tmp_path, server.url), key, tmp_path, "--insecure-registry", server.host, *extra)


def cache_leftovers(tmp_path: Path):
    blobs = tmp_path / "cache" / "blobs" / "sha256"
    return [p.name for p in blobs.iterdir() if p.name.startswith(".")] if blobs.exists() else []


@pytest.mark.parametrize("how", ["close-delimited", "chunked", "declared 10 GiB"])
def test_an_endless_index_is_exit_7_quickly_with_bounded_memory(key, tmp_path, hostile, how):
    server = hostile()
    server.route("GET", r"/index\.yaml", lambda h: endless(h, declared=10 << 30 if how == "declared 10 GiB" else None,
                                                            chunked=how == "chunked"))
    r = run_measured(*build_from(server, key, tmp_path), timeout=90)
    assert r.rc == 7 and one_sentence(r), r
    assert "index.yaml" in r.err and "64 MiB" in r.err, r
    assert r.rss < RSS_BOUND, r
    assert r.seconds < 60, r


@pytest.mark.parametrize("how", ["close-delimited", "declared 10 GiB"])
def test_an_endless_chart_archive_is_exit_7_quickly_with_bounded_memory(key, tmp_path, hostile, how):
    server = hostile()
    server.static("/index.yaml", index_yaml(server.url, b"whatever"))
    declared = 10 << 30 if how != "close-delimited" else None
    server.route("GET", r"/web-1\.0\.0\.tgz", lambda h: endless(h, declared=declared))
    r = run_measured(*build_from(server, key, tmp_path), timeout=90)
    assert r.rc == 7 and one_sentence(r), r
    assert "web-1.0.0.tgz" in r.err and "100 MiB" in r.err, r
    assert r.rss < RSS_BOUND, r
    assert r.seconds < 60, r
    assert cache_leftovers(tmp_path) == []


def test_a_gzip_bomb_chart_stops_at_the_unpacked_cap(key, tmp_path, hostile):
    bomb = bomb_tgz(6)  # 6 GiB unpacked, about 6 MB on the wire, Chart.yaml last
    server = hostile()
    serve_chart(server, bomb)
    r = run_measured(*build_from(server, key, tmp_path), timeout=120)
    assert r.rc == 3 and one_sentence(r), r
    assert "256 MiB" in r.err, r
    assert r.rss < RSS_BOUND, r
    assert r.seconds < 60, r


def test_a_chart_that_renders_without_end_is_stopped_at_the_rendered_cap(key, tmp_path, hostile):
    """A small chart whose template prints 70 MB: helm's output is read under a cap, never whole into memory."""
    tgz = chart_tgz(b'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n'
                         b'  k: "{{ repeat 70000000 "x" }}"\n')
    server = hostile()
    serve_chart(server, tgz)
    r = run_measured(*build_from(server, key, tmp_path), timeout=150)
    assert r.rc == 3 and one_sentence(r), r
    assert "renders more than 64 MiB" in r.err, r


@pytest.mark.parametrize("kind", ["a path", "upper-case hex", "prefixed sha256:", "a number"])
def test_an_index_digest_that_is_not_hex_is_exit_7(ob, key, tmp_path, hostile, kind):
    tgz = chart_tgz()
    digest = {"a path": "../../../signing/bundle.key", "upper-case hex": sha(tgz).upper(),
              "prefixed sha256:": "sha256:" + sha(tgz), "a number": 12345}[kind]
    server = hostile()
    serve_chart(server, tgz, digest=digest)
    r = ob(*build_from(server, key, tmp_path))
    assert r.rc == 7 and one_sentence(r), r
    assert "not 64 lower-case hex digits" in r.err


@pytest.mark.parametrize("kind", ["urls holds a number", "versions is a mapping", "entries is a list"])
def test_a_malformed_index_is_exit_7(ob, key, tmp_path, hostile, kind):
    tgz = chart_tgz()
    server = hostile()
    doc = json.loads(index_yaml(server.url, tgz))
    if kind == "urls holds a number":
        doc["entries"]["web"][0]["urls"] = [123]
    elif kind == "versions is a mapping":
        doc["entries"]["web"] = {"version": "1.0.0"}
    else:
        doc["entries"] = ["web"]
    server.static("/index.yaml", json.dumps(doc).encode())
    r = ob(*build_from(server, key, tmp_path))
    assert r.rc == 7 and one_sentence(r), r


def creds_everywhere(tmp_path: Path, hosts) -> dict:
    """Every place a careless client could find a password for ``hosts``: docker config, env, ~/.netrc."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    auth = {"auth": "dXNlcjpzM2NyZXQ="}  # user:s3cret
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {h: auth for h in hosts}}))
    (home / ".netrc").write_text("".join("machine 127.0.0.1 login user password s3cret\n" for _ in hosts))
    os.chmod(home / ".netrc", 0o600)
    return {"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker"), "BUNDLE_REGISTRY_USER": "user",
            "BUNDLE_REGISTRY_PASSWORD": "s3cret", "BUNDLE_REGISTRY_HOSTS": ",".join(hosts)}


def test_an_https_repository_redirecting_to_http_is_refused_and_no_credentials_travel(ob, key, tmp_path, hostile):
    tgz = chart_tgz()
    plain = hostile()
    serve_chart(plain, tgz)
    tls = hostile(tls=True)
    tls.route("GET", r"/.*", lambda h: reply(h, 302, b"", {"Location": plain.url + h.path}))
    env = creds_everywhere(tmp_path, [tls.host, plain.host])
    m = chart_manifest(tmp_path, tls.url)
    r = ob(*chart_build(m, key, tmp_path, "--registry-ca", tls.ca_file.name), env=env)
    assert r.rc == 7 and one_sentence(r), r
    assert "plain HTTP" in r.err and plain.host in r.err, r
    assert plain.seen == [], "the build followed an https -> http redirect"
    # Named insecure, the same redirect is followed, and still no credentials go anywhere.
    del tls.seen[:]
    r = ob(*chart_build(m, key, tmp_path, "--registry-ca", tls.ca_file.name, "--insecure-registry", plain.host,
                        "--json"), env=env)
    assert r.rc == 0, r
    assert len(plain.seen) == 2 and len(tls.seen) == 1
    for method, path, headers in tls.seen + plain.seen:
        assert "authorization" not in headers and "cookie" not in headers, (method, path, headers)
    assert "s3cret" not in r.out


def test_endless_redirects_stop_after_five_hops(ob, key, tmp_path, hostile):
    server = hostile()
    server.route("GET", r"/.*", lambda h: reply(h, 302, b"", {"Location": "/hop%d/index.yaml" % len(server.seen)}))
    r = ob(*build_from(server, key, tmp_path))
    assert r.rc == 7 and one_sentence(r), r
    assert "redirect" in r.err
    assert len(server.seen) <= 6


@pytest.mark.parametrize("where", ["the manifest's repo URL", "the index's chart URL"])
def test_credentials_in_a_chart_url_are_refused(ob, key, tmp_path, hostile, where):
    tgz = chart_tgz()
    server = hostile()
    with_creds = "http://user:s3cret@%s" % server.host
    server.static("/index.yaml", index_yaml(with_creds if where != "the manifest's repo URL" else server.url, tgz))
    server.static("/web-1.0.0.tgz", tgz)
    repo = with_creds if where == "the manifest's repo URL" else server.url
    r = ob(*chart_build(chart_manifest(tmp_path, repo), key, tmp_path, "--insecure-registry", server.host))
    assert r.rc == (3 if where == "the manifest's repo URL" else 7) and one_sentence(r), r
    assert "s3cret" not in r.err
    assert all("authorization" not in headers for _, _, headers in server.seen)
    assert not server.requests(r"\.tgz")


def test_an_oci_chart_layer_larger_than_the_cap_is_refused_before_download(ob, key, tmp_path, hostile):
    config = json.dumps({"apiVersion": "v2", "name": "web", "version": "1.0.0"}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": HELM_CONFIG, "digest": "sha256:" + sha(config), "size": len(config)},
                           "layers": [{"mediaType": HELM_CHART, "digest": "sha256:" + sha(b"x"), "size": 200 * MiB}]
                           }).encode()
    server = fake_registry(hostile(), manifest, {"sha256:" + sha(config): config}, repo="charts/web")
    server.route("GET", r"/v2/charts/web/blobs/sha256:%s" % sha(b"x"), endless)
    m = write_manifest(tmp_path / "m", tenants=False,
                       extra="  charts:\n    - ref: oci://registry.example/charts/web\n      version: 1.0.0\n")
    r = run_measured(*chart_build(m, key, tmp_path, "--mirror", "registry.example=%s" % server.host,
                                  "--insecure-registry", server.host))
    assert r.rc == 7 and one_sentence(r), r
    assert "100 MiB" in r.err, r
    assert not server.requests(sha(b"x")), "the oversized layer was downloaded"


def test_a_hostile_repository_chart_that_is_honest_still_builds(ob, key, tmp_path, hostile):
    """The control: the same small server, answering honestly, gives a bundle with the chart byte-exact."""
    tgz = chart_tgz()
    server = hostile()
    serve_chart(server, tgz)
    r = ob(*build_from(server, key, tmp_path, "--json"))
    assert r.rc == 0, r
    entries = {e.path: e.data for e in read_entries(Path(r.json["result"]["archive"]))}
    assert entries["charts/web-1.0.0.tgz"] == tgz


def test_a_tampered_staged_plan_cannot_make_seal_delete_a_file(ob, keydir, tmp_path, hostile):
    """staged.json travels with SHA256SUMS to the signing host and back, unsigned: a blob's source pointed at
    the signing key must not be 'removed as a corrupt cache entry' when its hash does not match."""
    manifest, blobs = tiny_image()
    server = fake_registry(hostile(), manifest, blobs)
    m = image_manifest(tmp_path)
    staged = ob("build", m, "--out", tmp_path / "out", "--cache", tmp_path / "x" / "cache", "--unsigned", "--json",
                "--mirror", "docker.io=%s" % server.host, "--insecure-registry", server.host)
    assert staged.rc == 0, staged
    folder = Path(staged.json["result"]["staged"])
    seal_provenance(ob, folder, keydir / "ed" / "bundle.key")
    victim = tmp_path / "signing" / "bundle.key"
    victim.parent.mkdir()
    victim.write_bytes(KEY_TEXT)
    plan = json.loads((folder / "staged.json").read_text())
    blob = next(p for p in plan["members"] if p["path"].startswith("images/blobs/") and "source" in p)
    blob["source"], blob["size"] = str(victim), len(KEY_TEXT)  # the plan's sizes are not signed either
    (folder / "staged.json").write_text(json.dumps(plan))
    sig = tmp_path / "SHA256SUMS.sig"
    subprocess.run([str(c) for c in ["openssl", "pkeyutl", "-sign", "-inkey", keydir / "ed" / "bundle.key", "-rawin",
                                     "-in", folder / "SHA256SUMS", "-out", sig]], check=True)
    r = ob("seal", folder, "--sig", sig, "--trust", keydir / "ed" / "bundle.pub")
    assert r.rc == 5 and one_sentence(r), r
    assert victim.read_bytes() == KEY_TEXT
    assert not list((tmp_path / "out").glob("*.zst"))


def test_a_site_registry_answering_a_path_as_digest_changes_nothing_in_the_kit(ob, key, pub, tmp_path, hostile):
    """The site registry is hostile too: it claims to hold every blob, then answers a manifest HEAD with a digest
    that is a path (and an error text with ANSI codes). The install stops (exit 7, one escaped sentence) before
    any tag moves: nothing is switched, no ownership recorded, nothing rendered."""
    from tests.helpers.charts import make_chart

    chart = make_chart(tmp_path / "src" / "charts", "web", "1.0.0", {})
    m = write_manifest(tmp_path / "src", tenants=False, extra="  charts:\n    - path: charts/web\n")
    assert chart.is_dir()
    built = ob("build", m, "--key", key, "--out", tmp_path / "out", "--json")
    assert built.rc == 0, built
    site = hostile()
    site.static("/v2/", b"{}")
    site.route("HEAD", r"/v2/.*/blobs/sha256:[0-9a-f]{64}", lambda h: reply(h, 200, b""))
    site.route("HEAD", r"/v2/.*/manifests/.*", lambda h: raw_header_reply(
        h, b"Docker-Content-Digest: sha256:../../../etc/passwd\x1b[2K\r\n"))
    kit = tmp_path / "kit"
    r = ob("install", built.json["result"]["archive"], "--kit", kit, "--trust", pub, "--registry", site.host,
           "--insecure-registry", site.host)
    assert r.rc == 7 and one_sentence(r) and "\x1b" not in r.out + r.err, r
    assert not (kit / "current" / "demo").exists()
    assert not (kit / ".state" / "owners.json").exists()
    assert not (kit / "deploy" / "demo").exists()
