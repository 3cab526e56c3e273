"""Shared fixtures: the real CLI as a subprocess, keys, small manifests, archive crafting."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent


class Run:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def json(self) -> dict:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return "Run(rc=%d, out=%r, err=%r)" % (self.rc, self.out[-2000:], self.err[-2000:])


def _cli_base() -> list:
    exe = BIN / "offline-bundle"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bundler"]


def run_cmd(argv, env=None, cwd=None, user=None, timeout=300) -> Run:
    full_env = dict(os.environ)
    full_env.pop("SOURCE_DATE_EPOCH", None)
    full_env.update(env or {})
    if user:
        argv = ["runuser", "-u", user, "--"] + list(argv)
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(proc)


@pytest.fixture(scope="session")
def ob():
    """offline-bundle (the click front door, as installed)."""
    def call(*args, **kw) -> Run:
        return run_cmd(_cli_base() + list(args), **kw)
    return call


@pytest.fixture(scope="session")
def obi():
    """The standalone installer's argparse front door: python -I -m installer."""
    def call(*args, **kw) -> Run:
        return run_cmd([sys.executable, "-m", "installer"] + list(args), **kw)
    return call


@pytest.fixture(scope="session")
def keydir(tmp_path_factory, ob):
    d = tmp_path_factory.mktemp("keys")
    r = ob("keygen", "--out", d / "ed")
    assert r.rc == 0, r
    r = ob("keygen", "--out", d / "ec", "--algorithm", "ecdsa-p256")
    assert r.rc == 0, r
    r = ob("keygen", "--out", d / "other")
    assert r.rc == 0, r
    return d


@pytest.fixture
def key(keydir):
    return keydir / "ed" / "bundle.key"


@pytest.fixture
def pub(keydir):
    return keydir / "ed" / "bundle.pub"


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """No registry credentials reach the code under test: an empty Docker config folder and none of the
    BUNDLE_REGISTRY_* variables. A module opts in with ``pytestmark = pytest.mark.usefixtures("no_credentials")``."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    for name in ("BUNDLE_REGISTRY_USER", "BUNDLE_REGISTRY_PASSWORD", "BUNDLE_REGISTRY_HOSTS"):
        monkeypatch.delenv(name, raising=False)


def write_manifest(folder: Path, name="demo", version="1.0.0", files=None, tenants=True, extra="") -> Path:
    """A small manifest with two config files and the shipped tenant override files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg").mkdir(exist_ok=True)
    files = files if files is not None else {"cfg/app.yaml": b"listen: 9090\n", "cfg/run.sh": b"#!/bin/sh\necho hi\n"}
    lines = ["apiVersion: offline-bundle/v1", "kind: Bundle", "metadata:", "  name: %s" % name,
             '  version: "%s"' % version, '  created: "2026-11-26T00:00:00Z"', "spec:", "  files:"]
    for src, data in files.items():
        p = folder / src
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        target = "config/" + src.split("/", 1)[-1]
        lines.append("    - source: %s" % src)
        lines.append("      target: %s" % target)
        if src.endswith(".sh"):
            lines.append("      executable: true")
    if tenants:
        tdir = folder / "tenants"
        tdir.mkdir(exist_ok=True)
        for comp in ("loki", "tempo"):
            shutil.copy(REPO / "manifests" / "telemetry-storage" / "tenants" / ("%s-overrides.yaml" % comp),
                        tdir / ("%s.yaml" % comp))
        lines += ["  tenants:", "    loki: tenants/loki.yaml", "    tempo: tenants/tempo.yaml"]
    text = "\n".join(lines) + "\n" + extra
    (folder / "bundle.yaml").write_text(text)
    return folder / "bundle.yaml"


@pytest.fixture
def manifest(tmp_path):
    return write_manifest(tmp_path / "src")


@pytest.fixture
def built(ob, manifest, key, tmp_path):
    """A freshly built bundle: (archive path, build result)."""
    r = ob("build", manifest, "--key", key, "--out", tmp_path / "out", "--json")
    assert r.rc == 0, r
    res = r.json["result"]
    return Path(res["archive"]), res


@pytest.fixture
def world_tmp():
    """A folder every user can enter (pytest's tmp_path is 0700 root-only)."""
    d = tempfile.mkdtemp(prefix="ob-world-")
    os.chmod(d, 0o755)
    yield Path(d)
    subprocess.run(["chmod", "-R", "u+w", d])
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    """A local registry serving stand-ins for the default manifest's docker.io images.

    Returns the extra build arguments that fetch docker.io through it.
    """
    from tests.helpers.procs import stop_process
    from tests.helpers.registry import start_registry
    from tests.helpers.standin import manifest_charts, manifest_refs, seed, serve_charts

    base = tmp_path_factory.mktemp("standin")
    default = REPO / "manifests" / "telemetry-storage.yaml"
    reg = start_registry(base / "reg", kind="plain")
    seed(reg, base / "layout", manifest_refs(default))
    charts, chart_args = serve_charts(base / "charts", manifest_charts(default), base / "helm-home")
    yield ["--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host] + chart_args
    stop_process(charts)
    reg.stop()


@pytest.fixture
def site(tmp_path):
    """A plain docker-registry to install into (the air-gapped site), stopped after the test."""
    from tests.helpers.registry import start_registry

    reg = start_registry(tmp_path / "site", kind="plain")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def default_bundle(ob, keydir, standin, tmp_path_factory):
    """The shipped default manifest built once per run through the stand-in registry and chart repository, signed
    with keydir's ed25519 key; every chart renders with helm against the bundle's images."""
    out = tmp_path_factory.mktemp("default-bundle")
    r = ob("build", REPO / "manifests" / "telemetry-storage.yaml", "--key", keydir / "ed" / "bundle.key",
           "--out", out, "--cache", out / "cache", "--json", *standin)
    assert r.rc == 0, r
    assert all(v == "ok" for v in r.json["result"]["helm_check"].values()), r.json["result"]["helm_check"]
    return Path(r.json["result"]["archive"])
