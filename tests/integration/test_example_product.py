"""A second product through the whole tool: manifests/notes.yaml (issue 11, the stack as data).

The notes API is not the telemetry stack: its own namespace, ConfigMap and Secret names, dev-TLS services and
file names, compose variables, an image these tests build and serve through a local registry (--mirror), a
config file and a local chart that refuses to render outside its namespace. Built and installed with the real
registry, helm, kubectl and docker-compose, its outputs must carry only its own names; and a bundle without a
`deploy` section (what every bundle built before it was) gets compose and chart outputs only.
"""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from tests.helpers.charts import helm
from tests.helpers.images import make_image, push
from tests.helpers.registry import start_registry

MANIFEST = REPO / "manifests" / "notes.yaml"
IMAGE = "registry.example/acme/notes:1.0"
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
API_KEY = b"notes-api-key-for-the-tests\n"
# The default stack's names: none may show up in another product's outputs.
FOREIGN = ("observability", "stellaops", "telemetry", "TELEMETRY", "otel", "prometheus", "loki", "tempo")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A local registry playing registry.example, holding the notes image the tests build."""
    base = tmp_path_factory.mktemp("notes-source")
    reg = start_registry(base / "reg", kind="plain")
    make_image(base / "layout", "notes", [{"usr/bin/notes": b"#!/bin/sh\necho notes\n"}])
    push(base / "layout", "notes", reg, "acme/notes:1.0")
    yield ["--mirror", "registry.example=%s" % reg.host, "--insecure-registry", reg.host]
    reg.stop()


def build(ob, manifest, key, out, source):
    return ob("build", manifest, "--key", key, "--out", out, "--cache", out / "cache", "--json", *source)


@pytest.fixture(scope="module")
def notes(ob, keydir, source, tmp_path_factory):
    out = tmp_path_factory.mktemp("notes-build")
    r = build(ob, MANIFEST, keydir / "ed" / "bundle.key", out, source)
    assert r.rc == 0, r
    assert r.json["result"]["helm_check"] == {"notes": "ok"}  # rendered in namespace notes, or the chart fails
    return Path(r.json["result"]["archive"])


def kubectl(*args, check=True):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "KUBECONFIG": "/nonexistent/kubeconfig"}
    proc = subprocess.run([str(KUBECTL)] + [str(a) for a in args], capture_output=True, env=env, timeout=120)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def install(ob, archive, kit, pub, site, *extra):
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", site.host + "/acme",
           "--insecure-registry", site.host, "--json", *extra)
    assert r.rc == 0, r
    return r.json["result"]


def test_the_signed_bundle_carries_the_deploy_section(notes, tmp_path, ob, pub, site):
    kit = tmp_path / "kit"
    install(ob, notes, kit, pub, site)
    meta = json.loads((kit / "current" / "notes" / "bundle.json").read_text())
    assert meta["deploy"]["namespace"] == "notes"
    assert meta["deploy"]["compose"] == {"env": {"NOTES_SECRETS_DIR": "token", "NOTES_TLS_DIR": "tls"}}
    assert [o["name"] for o in meta["deploy"]["kubernetes"]["secrets"]] == ["notes-tls", "notes-api-key"]


def test_the_outputs_carry_only_the_products_own_names(notes, tmp_path, ob, pub, site):
    kit = tmp_path / "kit"
    (kit / "secrets" / "token").mkdir(parents=True)
    (kit / "secrets" / "token" / "api-key").write_bytes(API_KEY)
    result = install(ob, notes, kit, pub, site, "--dev-tls")
    outputs = result["outputs"]
    deploy = kit / outputs["folder"]
    secrets = kit / "secrets" / "notes" / "1.0.0" / deploy.name
    assert outputs["tls"] == "generated" and outputs["kubernetes_skipped"] == []
    assert sorted(outputs["files"]) == ["COMMANDS.txt", "compose/docker-compose.notes.yaml",
                                        "kubernetes/00-namespace-notes.json",
                                        "kubernetes/01-configmap-notes-config.json",
                                        "values/notes.yaml"]
    assert sorted(os.listdir(secrets)) == ["02-secret-notes-tls.json", "03-secret-notes-api-key.json"]
    # dev TLS: the product's services, file names and common names, for its namespace
    tls = kit / "secrets" / "tls"
    assert sorted(os.listdir(tls)) == sorted(s + e for s in ("notes-ca", "notes-api", "notes-db", "server", "operator")
                                             for e in (".crt", ".key"))
    sans = subprocess.run(["openssl", "x509", "-in", str(tls / "server.crt"), "-noout", "-subject", "-issuer", "-ext",
                           "subjectAltName"], capture_output=True, text=True, check=True).stdout
    assert "CN = notes-server" in sans and "CN = Notes Dev CA" in sans
    assert "DNS:notes-api.notes.svc.cluster.local" in sans and "DNS:notes-db.notes.svc" in sans
    # the commands: helm into the product's namespace, compose with the product's variables
    commands = (deploy / "COMMANDS.txt").read_text().splitlines()
    helm_line = next(c for c in commands if c.startswith("helm "))
    assert " --namespace notes --create-namespace " in helm_line
    compose_line = next(c for c in commands if "docker compose" in c)
    assert compose_line.startswith("NOTES_SECRETS_DIR=%s NOTES_TLS_DIR=%s docker compose -f "
                                   % (kit / "secrets" / "token", tls))
    # nothing of the default stack anywhere: deploy files, the report, Secret names and keys
    texts = {str(p): p.read_text() for p in deploy.rglob("*") if p.is_file()}
    texts["report"] = json.dumps(result)
    for s in secrets.iterdir():
        doc = json.loads(s.read_text())
        texts[str(s)] = json.dumps({"metadata": doc["metadata"], "keys": sorted(doc["data"])})
    for where, text in texts.items():
        for name in FOREIGN:
            assert name not in text, (name, where)
    # the objects are what kubectl itself makes of the same files
    installed = kit / "current" / "notes" / "config" / "notes.yaml"
    cm = json.loads((deploy / "kubernetes" / "01-configmap-notes-config.json").read_text())
    assert cm == json.loads(kubectl("create", "configmap", "notes-config", "-n", "notes",
                                    "--from-file=notes.yaml=%s" % installed, "--dry-run=client", "-o", "json").stdout)
    secret = json.loads((secrets / "02-secret-notes-tls.json").read_text())
    assert secret == json.loads(kubectl("create", "secret", "generic", "notes-tls", "-n", "notes",
                                        "--from-file=server.crt=%s" % (tls / "server.crt"),
                                        "--from-file=server.key=%s" % (tls / "server.key"),
                                        "--from-file=ca.crt=%s" % (tls / "notes-ca.crt"),
                                        "--dry-run=client", "-o", "json").stdout)
    key = json.loads((secrets / "03-secret-notes-api-key.json").read_text())
    assert base64.b64decode(key["data"]["api-key"]) == API_KEY


def test_kubectl_reads_the_manifests_and_compose_and_helm_accept_the_outputs(notes, tmp_path, ob, pub, site):
    kit = tmp_path / "kit"
    (kit / "secrets" / "token").mkdir(parents=True)
    (kit / "secrets" / "token" / "api-key").write_bytes(API_KEY)
    result = install(ob, notes, kit, pub, site, "--dev-tls")
    deploy = kit / result["outputs"]["folder"]
    secrets = kit / "secrets" / "notes" / "1.0.0" / deploy.name
    written = sorted((deploy / "kubernetes").iterdir()) + sorted(secrets.iterdir())
    # offline, with the real kubectl: kustomize parses every file; label --local reads each one
    root = tmp_path / "kustomize"
    root.mkdir()
    for path in written:
        shutil.copy(path, root)
    (root / "kustomization.yaml").write_text("resources:\n" + "".join("- %s\n" % p.name for p in written))
    rendered = [d for d in yaml.safe_load_all(kubectl("kustomize", root).stdout) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in rendered) == [
        ("ConfigMap", "notes-config"), ("Namespace", "notes"), ("Secret", "notes-api-key"), ("Secret", "notes-tls")]
    assert all(d["metadata"].get("namespace") == "notes" for d in rendered if d["kind"] != "Namespace")
    for path in written:
        got = json.loads(kubectl("label", "--local", "-f", path, "probe=1", "-o", "json").stdout)
        assert got["metadata"].pop("labels") == {"probe": "1"} and got == json.loads(path.read_text())
    # docker-compose reads the rendered file with exactly the environment COMMANDS.txt gives it
    [compose] = [c for c in result["outputs"]["argv"] if c["argv"][:2] == ["docker", "compose"]]
    assert sorted(compose["env"]) == ["NOTES_SECRETS_DIR", "NOTES_TLS_DIR"]
    check = subprocess.run(["docker-compose", "-f", compose["argv"][3], "config"], capture_output=True, text=True,
                           env=dict(os.environ, **compose["env"]))
    assert check.returncode == 0, check.stderr
    service = yaml.safe_load(check.stdout)["services"]["notes-api"]
    assert service["image"].startswith(site.host + "/acme/registry.example/acme/notes@sha256:")
    # helm renders the chart from the site with the rendered values, in the product's namespace only
    home = tmp_path / "helm"
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    helm(["pull", "oci://%s/acme/charts/notes" % site.host, "--version", "1.0.0", "--plain-http", "-d", str(pulled)],
         home)
    args = ["template", "notes", str(pulled / "notes-1.0.0.tgz"), "-f", str(deploy / "values" / "notes.yaml")]
    doc = yaml.safe_load(helm(args + ["--namespace", "notes"], home))
    assert doc["spec"]["template"]["spec"]["containers"][0]["image"] == service["image"]
    env = dict(os.environ, HELM_CONFIG_HOME=str(home), HELM_CACHE_HOME=str(home), HELM_DATA_HOME=str(home))
    other = subprocess.run(["helm"] + args + ["--namespace", "observability"], capture_output=True, text=True, env=env)
    assert other.returncode != 0 and "installs into the notes namespace" in other.stderr


def _copy_product(dest: Path, change) -> Path:
    shutil.copytree(REPO / "manifests" / "notes", dest / "notes")
    doc = yaml.safe_load(MANIFEST.read_text())
    change(doc)
    (dest / "notes.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest / "notes.yaml"


def test_the_build_renders_charts_in_the_deploy_sections_namespace(ob, keydir, source, tmp_path):
    """The chart refuses any namespace but `notes`: a build with another deploy.namespace is refused (exit 3)."""
    manifest = _copy_product(tmp_path / "src", lambda d: d["spec"]["deploy"].update(namespace="elsewhere"))
    r = build(ob, manifest, keydir / "ed" / "bundle.key", tmp_path / "out", source)
    assert r.rc == 3, r
    assert "installs into the notes namespace" in r.json["error"]["message"]


def test_a_bundle_without_a_deploy_section_gets_compose_and_chart_outputs_only(ob, keydir, source, tmp_path, pub, site):
    manifest = _copy_product(tmp_path / "src", lambda d: d["spec"].pop("deploy"))
    r = build(ob, manifest, keydir / "ed" / "bundle.key", tmp_path / "out", source)
    assert r.rc == 0, r  # helm template ran in the namespace named after the bundle: notes
    archive = Path(r.json["result"]["archive"])
    kit = tmp_path / "kit"
    (kit / "secrets" / "token").mkdir(parents=True)
    (kit / "secrets" / "token" / "api-key").write_bytes(API_KEY)
    result = install(ob, archive, kit, pub, site, "--dev-tls")
    assert "deploy" not in json.loads((kit / "current" / "notes" / "bundle.json").read_text())
    outputs = result["outputs"]
    assert sorted(outputs["files"]) == ["COMMANDS.txt", "compose/docker-compose.notes.yaml", "values/notes.yaml"]
    assert not (kit / "secrets" / "notes").exists()  # no Secret manifests: no object was declared
    assert outputs["kubernetes_skipped"] == []
    commands = (kit / outputs["folder"] / "COMMANDS.txt").read_text().splitlines()
    assert [c.split()[0] for c in commands] == ["helm", "docker"]  # no kubectl, and compose without variables
    assert " --namespace notes --create-namespace " in commands[0]
    # --dev-tls makes the default set: a CA, a shared certificate for localhost, a client certificate
    assert sorted(os.listdir(kit / "secrets" / "tls")) == ["ca.crt", "ca.key", "client.crt", "client.key",
                                                          "tls.crt", "tls.key"]
    assert outputs["tls"] == "generated"
