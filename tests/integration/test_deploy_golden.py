"""The default bundle's deploy outputs, byte for byte, against golden files (issue 11: the stack as data).

The golden files under tests/data/golden/telemetry-storage/ were captured from the installer as it was
BEFORE the telemetry stack's names moved out of the code into the manifest's `spec.deploy` section
(scenario folders, one per way of installing). Every later version must render exactly the same bytes:
the deploy folder (compose files, chart values, Kubernetes manifests, COMMANDS.txt), the Secret
manifests under secrets/, and the commands of the JSON report.

Only what differs from run to run is normalised: the kit's absolute path, the loopback ports of the
site registry and of the stand-in sources, and generated TLS material (a dev-TLS key is random; its
base64 in a Secret becomes a placeholder naming the file, and its certificates are compared by their
subjects, SANs and usages). Everything else is compared byte-exact.

Run with OFFLINE_BUNDLE_WRITE_GOLDEN=1 to (re)write the golden files instead of comparing; that is
how they were made, and it should never be needed again: a difference is a regression.
"""

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO


GOLDEN = REPO / "tests" / "data" / "golden" / "telemetry-storage"
WRITE = os.environ.get("OFFLINE_BUNDLE_WRITE_GOLDEN") == "1"
NAME, VERSION = "telemetry-storage", "2026.11.0"

# An operator's own PKI and token: fixed bytes, so the Secrets built from them are byte-exact too.
PKI = {
    "ca.crt": b"-----BEGIN CERTIFICATE-----\nMIIBrTCCAVOgAwIBAgIUGoldenCA\n-----END CERTIFICATE-----\n",
    "tls.crt": b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUGoldenServer\n-----END CERTIFICATE-----\n",
    "tls.key": b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49GoldenKey\n-----END PRIVATE KEY-----\n",
}
TOKEN = b"golden-bearer-token\n"
S3 = {"access_key_id": b"GOLDENACCESSKEY", "secret_access_key": b"golden-secret-access-key"}  # Tempo's object store


@pytest.fixture
def default_build(default_bundle, standin):
    """The shared default bundle (tests/conftest.py), and the build arguments it was fetched with."""
    return default_bundle, standin


class Normaliser:
    """Turns one run's outputs into text that is equal across runs: the kit path and loopback ports out."""

    def __init__(self, kit: Path, hosts) -> None:
        self.kit = str(kit)
        # PORT0 is the first host given (the site); the longest host is replaced first, so that one
        # port that is a prefix of another is never half-replaced.
        named = [(host, "PORT%d" % i) for i, host in enumerate(hosts)]
        self.hosts = sorted(named, key=lambda pair: len(pair[0]), reverse=True)

    def text(self, text: str) -> str:
        text = text.replace(self.kit, "/KIT")
        for host, name in self.hosts:
            port = host.rsplit(":", 1)[1]
            text = text.replace(host, "127.0.0.1:" + name).replace("127.0.0.1_" + port, "127.0.0.1_" + name)
        return text


def _host_order(site_host, standin_args):
    """The site first, then the stand-in sources, so PORT0 is always the site."""
    sources = [a.split("=", 1)[1] for a in standin_args if "=" in a]
    hosts = [site_host] if site_host else []
    for s in sources:
        host = re.sub(r"^https?://", "", s).split("/", 1)[0]
        if host not in hosts:
            hosts.append(host)
    return hosts


def _tls_placeholders(kit: Path) -> dict:
    """base64 of each generated TLS file -> a placeholder naming it (dev-TLS keys are random)."""
    folder = kit / "secrets" / "tls"
    if not folder.is_dir():
        return {}
    return {base64.b64encode(p.read_bytes()).decode(): "<base64 of secrets/tls/%s>" % p.name
            for p in sorted(folder.iterdir()) if p.is_file() and p.read_bytes() not in PKI.values()}


def _certificates(folder: Path) -> str:
    """What the dev-TLS certificates say (subject, issuer, SANs, usages): everything but keys, serials, dates."""
    lines = []
    for crt in sorted(folder.glob("*.crt")):
        proc = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-subject", "-issuer", "-ext",
                               "subjectAltName,extendedKeyUsage,basicConstraints,keyUsage"],
                              capture_output=True, text=True, check=True)
        lines.append("== %s\n%s" % (crt.name, proc.stdout))
    return "".join(lines)


def snapshot(kit: Path, result: dict, norm: Normaliser) -> dict:
    """{relative path: text} of everything the golden files hold for one install."""
    outputs = result["outputs"]
    files = {}
    deploy = kit / outputs["folder"]
    site_folder = os.path.basename(outputs["folder"])
    secrets = kit / "secrets" / NAME / VERSION / site_folder
    placeholders = _tls_placeholders(kit)
    for base, label in ((deploy, "deploy"), (secrets, "secrets")):
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            text = path.read_bytes().decode("utf-8")
            for b64, name in placeholders.items():
                text = text.replace(b64, name)
            rel = "%s/%s" % (label, path.relative_to(base).as_posix())
            files[norm.text(rel)] = norm.text(text)
    report = {k: outputs[k] for k in ("site", "folder", "files", "commands", "argv")}
    files["report.json"] = norm.text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    tls = kit / "secrets" / "tls"
    if placeholders:
        files["devtls.txt"] = "files: %s\n%s" % (" ".join(sorted(p.name for p in tls.iterdir())), _certificates(tls))
    return files


def check(scenario: str, files: dict) -> None:
    folder = GOLDEN / scenario
    if WRITE:
        for rel, text in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
        return
    expected = {p.relative_to(folder).as_posix(): p.read_bytes().decode("utf-8")
                for p in sorted(folder.rglob("*")) if p.is_file()}
    assert sorted(files) == sorted(expected), "the set of output files changed"
    for rel in sorted(expected):
        assert files[rel] == expected[rel], "%s/%s differs from its golden file" % (scenario, rel)


def _install(ob, archive, kit, pub, *args, env=None):
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--json", *args, env=env)
    assert r.rc == 0, r
    return r.json["result"]


def _site_args(site):
    return ["--registry", site.host + "/corp", "--insecure-registry", site.host]


def test_registry_site_with_an_operator_pki_and_token(ob, default_build, pub, tmp_path, site):
    archive, standin = default_build
    kit = tmp_path / "kit"
    for folder, files in (("tls", PKI), ("token", {"token": TOKEN}), ("s3", S3)):
        (kit / "secrets" / folder).mkdir(parents=True)
        for name, data in files.items():
            (kit / "secrets" / folder / name).write_bytes(data)
    result = _install(ob, archive, kit, pub, *_site_args(site))
    assert result["outputs"]["tls"] == "existing" and result["outputs"]["kubernetes_skipped"] == []
    check("registry-pki", snapshot(kit, result, Normaliser(kit, _host_order(site.host, standin))))


def test_registry_site_with_dev_tls_and_no_token(ob, default_build, pub, tmp_path, site):
    archive, standin = default_build
    kit = tmp_path / "kit"
    result = _install(ob, archive, kit, pub, *_site_args(site), "--dev-tls")
    assert result["outputs"]["tls"] == "generated"
    skipped = result["outputs"]["kubernetes_skipped"]
    assert len(skipped) == 2 and skipped[0].startswith("secret stellaops-prometheus-token: ")
    assert skipped[1].startswith("secret stellaops-tempo-s3: missing or empty: ")
    assert "/secrets/s3/access_key_id" in skipped[1]
    check("registry-devtls", snapshot(kit, result, Normaliser(kit, _host_order(site.host, standin))))


def test_docker_sites_with_dev_tls(ob, default_build, pub, tmp_path, site):
    from tests.helpers.dockerd import start_dockerd

    archive, standin = default_build
    with start_dockerd() as d:
        kit = tmp_path / "kit-docker"
        result = _install(ob, archive, kit, pub, "--docker", "--dev-tls", env=d.env)
        check("docker-devtls", snapshot(kit, result, Normaliser(kit, _host_order(None, standin))))
        kit = tmp_path / "kit-both"
        (kit / "secrets" / "token").mkdir(parents=True)
        (kit / "secrets" / "token" / "token").write_bytes(TOKEN)
        result = _install(ob, archive, kit, pub, *_site_args(site), "--docker", "--dev-tls", env=d.env)
        check("registry-docker-devtls", snapshot(kit, result, Normaliser(kit, _host_order(site.host, standin))))


def test_the_archive_differs_only_by_the_signed_deploy_section(ob, default_build, pub, tmp_path):
    archive, standin = default_build
    kit = tmp_path / "kit"
    _install(ob, archive, kit, pub)
    tree = kit / "current" / NAME
    norm = Normaliser(kit, _host_order(None, standin))
    meta = json.loads((tree / "bundle.json").read_text())
    deploy = meta.pop("deploy", None)
    # The provenance statement names the mirrors used, and the stand-ins listen on random ports: its bytes (and
    # so its sha256 and size) vary from run to run; test_provenance.py checks what it says.
    envelope = "attestations/provenance.dsse.json"
    for m in meta["members"]:
        if m["path"] == envelope:
            meta["total_size"] -= m["size"]
            m["size"] = "varies with the stand-in registry's port"
    sums = [line for line in (tree / "SHA256SUMS").read_text().splitlines(keepends=True)
            if not line.endswith(("  bundle.json\n", "  %s\n" % envelope))]
    files = {"bundle.json-without-deploy": norm.text(json.dumps(meta, indent=2, sort_keys=True) + "\n"),
             "SHA256SUMS-without-bundle.json": "".join(sums)}
    # the one difference: the manifest's spec.deploy, signed in bundle.json (the golden files predate it)
    from bundler.plan.manifest import load_manifest

    assert deploy == load_manifest(str(REPO / "manifests" / "telemetry-storage.yaml")).deploy.to_dict()
    assert deploy["namespace"] == "observability"
    check("archive", files)
