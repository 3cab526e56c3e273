"""Issue 13 points 1, 5 and 6: the real Prometheus server (Debian's `prometheus` package, 2.42) runs with the web
config and scrape config the install put in the kit and the dev TLS set `install --dev-tls` made, as compose
runs it:

- as the image's own user (65534), given only the group `install --secrets-group` granted, with the kit's TLS
  and token folders bind-mounted (a private mount namespace: `unshare -m` + `mount --bind`, as Docker mounts
  them), so it reads its key through exactly that grant; without the group it cannot start;
- it serves HTTPS, accepts the stack's client certificates (tls.crt, client.crt; checked with curl as an
  operator would), and refuses a connection without one, with a certificate of another CA, and plain HTTP;
- it scrapes TLS targets with its client certificate: a stand-in collector exporter that requires a client
  certificate of the stack CA and the site's bearer token (the token file in KIT/secrets/token), stand-ins for
  Tempo's and Loki's /metrics, and itself (server_name prometheus). A job given another token is refused (401),
  so "up" means the token was checked.

Only what the host must differ in changes in the configs: the mount paths (/etc/telemetry/tls and
/etc/telemetry/auth -> the mount points), the targets' addresses (compose service names -> loopback ports) and
the scrape interval (30 s -> 1 s). The Helm values' web.yml is checked equal to the kit's web config, so the same
settings run under Helm. A missing prometheus, curl, unshare or setpriv is a FAILURE, not a skip.
"""

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.helpers.procs import free_port, stop_process, wait_for

GID = 4242                      # the group --secrets-group grants (numeric: it need not exist on the host)
PROMETHEUS_UID = 65534          # prom/prometheus runs as nobody
TOKEN = "site-bearer-token-obs-read"
MOUNTS = {"/etc/telemetry/tls/": "tls/", "/etc/telemetry/auth/": "auth/"}


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, "%s is not installed (scripts/setup.sh installs it)" % tool
    return path


@pytest.fixture(scope="module")
def kit(ob, default_bundle, keydir, tmp_path_factory):
    """The default bundle installed with --dev-tls and --secrets-group, the site's token in place, pushed to a
    site registry so the Helm values are rendered too."""
    from tests.helpers.registry import start_registry

    base = tmp_path_factory.mktemp("prometheus-tls")
    kit = base / "kit"
    (kit / "secrets" / "token").mkdir(parents=True)
    (kit / "secrets" / "token" / "token").write_text(TOKEN + "\n")
    site = start_registry(base / "site", kind="plain")
    try:
        r = ob("install", default_bundle, "--kit", kit, "--trust", keydir / "ed" / "bundle.pub", "--json", "--dev-tls",
               "--secrets-group", str(GID), "--registry", site.host, "--insecure-registry", site.host)
    finally:
        site.stop()
    assert r.rc == 0, r
    result = r.json["result"]
    assert result["secrets"]["group"] == GID
    return kit, result


def _rewrite(node, work: Path, addresses):
    """The config with the mount paths and addresses changed, nothing else."""
    if isinstance(node, dict):
        return {k: _rewrite(v, work, addresses) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, work, addresses) for v in node]
    if isinstance(node, str):
        for old, new in MOUNTS.items():
            if node.startswith(old):
                return str(work / new) + "/" + node[len(old):]
        return addresses.get(node, node)
    return node


class Target:
    """A stand-in /metrics endpoint serving TLS with the stack's certificate, requiring a client certificate of
    the stack CA and (when ``token`` is given) that bearer token; records what each scrape presented."""

    def __init__(self, tls: Path, token=None) -> None:
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                auth = self.headers.get("Authorization")
                peer = self.connection.getpeercert() or {}
                seen.append((auth, dict(x[0] for x in peer.get("subject", ()))))
                if token is not None and auth != "Bearer " + token:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = b"# TYPE stand_in_up gauge\nstand_in_up 1\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls / "tls.crt"), str(tls / "tls.key"))
        ctx.load_verify_locations(str(tls / "ca.crt"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _other_ca(folder: Path) -> Path:
    """A client certificate from a CA the stack does not trust."""
    need("openssl")
    folder.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(folder / "other.key"), "-out", str(folder / "other.crt"), "-days", "1",
                    "-subj", "/CN=stranger", "-addext", "extendedKeyUsage=clientAuth"],
                   check=True, capture_output=True)
    return folder


class Running:
    def __init__(self, proc, port, work, targets):
        self.proc, self.port, self.work, self.targets = proc, port, work, targets


@pytest.fixture(scope="module")
def server(kit):
    """The real Prometheus, as compose runs it; stopped after the module."""
    kit_dir, _result = kit
    tls = kit_dir / "secrets" / "tls"
    collector, tempo, loki = Target(tls, TOKEN), Target(tls), Target(tls)
    # A folder the unprivileged server can enter: configs, its data, and the mount points of the two folders.
    work = Path(tempfile.mkdtemp(prefix="prometheus-tls-"))
    running = None
    try:
        running = _start(kit_dir, work, collector, tempo, loki)
        yield running
    finally:
        if running is not None:
            stop_process(running.proc)
        for t in (collector, tempo, loki):
            t.stop()
        shutil.rmtree(work, ignore_errors=True)


def _configs(kit_dir: Path, work: Path, port: int, collector, tempo, loki) -> None:
    version = kit_dir / "current" / "telemetry-storage"
    addresses = {"otel-collector:9464": collector.address, "tempo:3200": tempo.address, "loki:3100": loki.address,
                 "localhost:9090": "127.0.0.1:%d" % port}
    config = _rewrite(yaml.safe_load((version / "config" / "prometheus.yaml").read_text()), work, addresses)
    config["global"]["scrape_interval"] = config["global"]["scrape_timeout"] = "1s"
    wrong = json.loads(json.dumps(next(j for j in config["scrape_configs"] if j["job_name"] == "otel-collector")))
    wrong["job_name"] = "wrong-token"
    wrong["authorization"]["credentials_file"] = str(work / "wrong-token")
    config["scrape_configs"].append(wrong)
    (work / "wrong-token").write_text("not-the-site-token\n")
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    web = _rewrite(yaml.safe_load((version / "config" / "prometheus-web.yaml").read_text()), work, {})
    (work / "web.yml").write_text(yaml.safe_dump(web))


def _command(kit_dir: Path, work: Path, port: int, groups: str, data: str = "data") -> list:
    """unshare -m: a private mount namespace where KIT/secrets/{tls,token} are bind-mounted (as Docker does), then
    the server as 65534 with ``groups`` (setpriv), in the same process (exec), so its PID is the server's."""
    script = ('mount --bind "$1" "$3/tls" && mount --bind "$2" "$3/auth" && exec setpriv --reuid=%d --regid=%d %s '
              '-- "$4" --config.file="$3/prometheus.yml" --web.config.file="$3/web.yml" '
              '--web.listen-address=127.0.0.1:%d --storage.tsdb.path="$3/%s" --web.enable-lifecycle'
              % (PROMETHEUS_UID, PROMETHEUS_UID, groups, port, data))
    return [need("unshare"), "-m", "sh", "-c", script, "sh", str(kit_dir / "secrets" / "tls"),
            str(kit_dir / "secrets" / "token"), str(work), need("prometheus")]


def _start(kit_dir: Path, work: Path, collector, tempo, loki) -> Running:
    need("setpriv")
    port = free_port()
    _configs(kit_dir, work, port, collector, tempo, loki)
    for name in ("tls", "auth", "data", "data2"):
        (work / name).mkdir()
    for name in ("data", "data2"):
        os.chown(work / name, PROMETHEUS_UID, PROMETHEUS_UID)
    os.chmod(work, 0o755)
    for name in ("prometheus.yml", "web.yml", "wrong-token"):
        os.chmod(work / name, 0o644)
    with open(work / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(_command(kit_dir, work, port, "--groups=%d" % GID), stdout=log,
                                stderr=subprocess.STDOUT)
    if not wait_for(lambda: _curl(kit_dir, port, "client")[1] == "200", proc, timeout=30, step=0.2):
        stop_process(proc)
        raise AssertionError("prometheus did not serve HTTPS: %s" % (work / "prometheus.log").read_text()[-2000:])
    return Running(proc, port, work, {"otel-collector": collector, "tempo": tempo, "loki": loki})


def _curl(kit_dir: Path, port: int, pair=None, cert_dir: Path = None, scheme="https", path="/-/ready"):
    """curl as an operator runs it (docs/TLS.md): the stack CA, and the client pair ``pair`` if given."""
    tls = kit_dir / "secrets" / "tls"
    argv = [need("curl"), "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
            "--cacert", str(tls / "ca.crt")]
    if pair:
        folder = cert_dir or tls
        argv += ["--cert", str(folder / (pair + ".crt")), "--key", str(folder / (pair + ".key"))]
    r = subprocess.run(argv + ["%s://127.0.0.1:%d%s" % (scheme, port, path)], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def _api(kit_dir: Path, port: int, path: str) -> dict:
    tls = kit_dir / "secrets" / "tls"
    ctx = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    ctx.load_cert_chain(str(tls / "client.crt"), str(tls / "client.key"))
    with urllib.request.urlopen("https://127.0.0.1:%d%s" % (port, path), context=ctx, timeout=5) as answer:
        return json.loads(answer.read())


def test_the_grant_is_exactly_what_the_containers_need(kit):
    kit_dir, result = kit
    tls, token = kit_dir / "secrets" / "tls", kit_dir / "secrets" / "token"
    for folder in (tls, token):
        st = folder.stat()
        assert (st.st_mode & 0o777, st.st_gid) == (0o750, GID), folder
    for path in (tls / "tls.key", token / "token"):
        st = path.stat()
        assert (st.st_mode & 0o777, st.st_gid) == (0o640, GID), path
    for key in ("ca.key", "client.key", "prometheus.key"):  # nothing a container mounts for: still owner-only
        assert (tls / key).stat().st_mode & 0o777 == 0o600, key
    assert sorted(result["secrets"]["paths"]) == sorted(
        ["secrets/tls/ca.crt", "secrets/tls/tls.crt", "secrets/tls/tls.key", "secrets/tls/", "secrets/token/token",
         "secrets/token/", "secrets/s3/"])   # s3/ made by the install (empty: the site gave no object store keys)
    # the compose commands carry the group the folders were granted to
    compose = [c for c in result["outputs"]["argv"] if c["argv"][:2] == ["docker", "compose"]]
    assert compose and all(c["env"]["TELEMETRY_SECRETS_GID"] == str(GID) for c in compose)


def test_the_helm_values_serve_the_same_web_config(kit):
    kit_dir, result = kit
    values = json.loads((kit_dir / result["outputs"]["folder"] / "values" / "prometheus.yaml").read_text())
    web = yaml.safe_load((kit_dir / "current" / "telemetry-storage" / "config" / "prometheus-web.yaml").read_text())
    assert values["serverFiles"]["web.yml"] == web
    assert "web.config.file=/etc/config/web.yml" in values["server"]["extraFlags"]


def test_prometheus_serves_https_to_the_stacks_client_certificates(server, kit):
    kit_dir, _ = kit
    for pair in ("client", "tls"):
        rc, code, err = _curl(kit_dir, server.port, pair)
        assert (rc, code) == (0, "200"), (pair, err)


def test_prometheus_refuses_a_connection_without_a_client_certificate(server, kit, tmp_path):
    kit_dir, _ = kit
    rc, code, err = _curl(kit_dir, server.port)
    assert rc != 0 and code == "000", err          # the handshake fails: no HTTP answer at all
    rc, code, err = _curl(kit_dir, server.port, "other", cert_dir=_other_ca(tmp_path / "other"))
    assert rc != 0 and code == "000", err
    rc, code, _ = _curl(kit_dir, server.port, scheme="http")
    assert code != "200"                            # plain HTTP to an HTTPS port is no answer either


def test_prometheus_scrapes_every_tls_target_with_its_certificate_and_the_token(server, kit):
    kit_dir, _ = kit
    deadline = time.monotonic() + 30
    health = {}
    while time.monotonic() < deadline:
        targets = _api(kit_dir, server.port, "/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: (t["health"], t.get("lastError", "")) for t in targets}
        if all(h != "unknown" for h, _ in health.values()) and len(health) == 5 and \
                health["wrong-token"][0] == "down" and all(health[j][0] == "up" for j in
                                                            ("otel-collector", "tempo", "loki", "prometheus")):
            break
        time.sleep(0.5)
    assert {j: h for j, (h, _) in health.items()} == {"otel-collector": "up", "tempo": "up", "loki": "up",
                                                       "prometheus": "up", "wrong-token": "down"}, health
    assert "401" in health["wrong-token"][1]
    presented = [(auth, subject.get("commonName")) for auth, subject in server.targets["otel-collector"].seen]
    assert ("Bearer " + TOKEN, "telemetry-mtls") in presented  # the site's token, with the stack's certificate
    for name in ("tempo", "loki"):
        assert any(subject.get("commonName") == "telemetry-mtls" for _, subject in server.targets[name].seen), name
    up = _api(kit_dir, server.port, "/api/v1/query?query=up")["data"]["result"]
    assert {r["metric"]["job"]: r["value"][1] for r in up}["otel-collector"] == "1"


def test_without_the_group_prometheus_cannot_read_its_key(server, kit):
    """The same server, user and mounts, but no supplementary group: the key is unreadable and it does not start."""
    kit_dir, _ = kit
    port = free_port()
    proc = subprocess.Popen(_command(kit_dir, server.work, port, "--clear-groups", "data2"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        raise AssertionError("prometheus started without the secrets group") from None
    assert proc.returncode != 0
    assert b"permission denied" in out.lower(), out[-2000:]
