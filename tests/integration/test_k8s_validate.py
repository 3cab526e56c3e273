"""Every Kubernetes object we render, checked against the API schemas of the Kubernetes we target (1.35, the
kubectl the tests ship: docs/KUBERNETES.md) with kubernetes-validate in strict mode (issue 13, point 6).

kubectl --dry-run=client (tests/integration/test_k8s_manifests.py) compares our objects with kubectl's, but
without an API server nothing checks field names and types: a misspelt or misplaced field is dropped or
refused only at `kubectl apply` on the site. Strict mode refuses any field the schema does not name, at
every depth. An object whose kind has no schema (a CRD) is a failure here, not the CLI's warning.

1. The installer's objects for the default bundle's deploy section (namespace, ConfigMaps, Secrets), built
   with k8s.build_objects from the bundle's files and dummy site bytes and written by k8s.write_manifests,
   plus the golden install outputs; checked through the Python API and the CLI. Always runs: a missing
   kubernetes-validate is a FAILURE, not a skip. Negative controls show the validator does refuse.
2. `helm template` of each upstream chart with the values the install renders for it (the golden
   values/<chart>.yaml), release name = chart name, in the deploy namespace: every object validated, and
   the TLS settings of issue 13 point 1 asserted on the rendered output. The charts cannot be fetched
   offline, so these tests need OFFLINE_BUNDLE_UPSTREAM_CHARTS (scripts/upstream-charts.sh) and skip
   without it.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import yaml
from tests.helpers.charts import helm

from bundler.plan.manifest import load_manifest
from installer.deploy import k8s
from installer.format.deployspec import DataEntry

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = "1.35.0"  # the Kubernetes we target: the kubectl the tests ship is v1.35
MANIFEST = load_manifest(str(REPO / "manifests" / "telemetry-storage.yaml"))
DEPLOY = MANIFEST.deploy
assert DEPLOY is not None and DEPLOY.namespace
NS = DEPLOY.namespace
KUBE = DEPLOY.kubernetes
GOLDEN = REPO / "tests" / "data" / "golden" / "telemetry-storage"
VALUES = GOLDEN / "registry-devtls" / "deploy" / "values"
CHARTS = {c["name"]: c for c in MANIFEST.charts}
UPSTREAM = "OFFLINE_BUNDLE_UPSTREAM_CHARTS"
NO_UPSTREAM = ("the upstream charts (%s) cannot be fetched offline: on a connected host run "
               "scripts/upstream-charts.sh DIR, then set %s=DIR to run these tests"
               % (", ".join("%s %s" % (c["name"], c["version"]) for c in MANIFEST.charts), UPSTREAM))
Obj = Dict[str, Any]


# --- the validator -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kv():
    """kubernetes_validate, carrying the target's schemas; missing, the test fails (it is in the test extra)."""
    try:
        import kubernetes_validate
        from kubernetes_validate import utils
    except ImportError:
        pytest.fail("kubernetes-validate is missing: install the test extra (pip install '.[test]', "
                    "scripts/setup.sh does)")
    assert KUBERNETES in utils.all_versions(), (kubernetes_validate.__version__, utils.all_versions())
    return kubernetes_validate


def problems(kv, objects: List[Obj]) -> List[str]:
    """Why each object fails strict validation against KUBERNETES; [] when all pass. All are collected."""
    found = []
    for obj in objects:
        what = "%s %s/%s" % (obj.get("apiVersion"), obj.get("kind"), obj.get("metadata", {}).get("name"))
        try:
            version = kv.validate(obj, KUBERNETES, strict=True)
        except kv.ValidationError as e:
            found.append("%s: %s: %s" % (what, ".".join(map(str, e.path)) or "(top)", e.message))
        except kv.SchemaNotFoundError as e:  # the CLI only warns: an object nothing checked is no pass here
            found.append("%s: %s" % (what, e.message))
        else:
            assert version == "1.35", (what, version)  # the schemas used are the target's, not an older set
    return found


def validate_cli(files: List[Path]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES]
                          + [str(f) for f in files], capture_output=True, text=True, timeout=120)


# --- 1. the installer's objects ------------------------------------------------------------------
def site_bytes(entry: DataEntry) -> bytes:
    """Dummy bytes for a file the site supplies (TLS, token, object store keys): only the shape matters."""
    return b"dummy \x00\xff " + entry.ref.encode()


def written_manifests(folder: Path) -> List[Path]:
    """What install writes for the default bundle's deploy section, from the bundle's own files."""
    files = {f.target: Path(f.source_path).read_bytes() for f in MANIFEST.files}
    tenants = {t.component: Path(t.source_path).read_bytes() for t in MANIFEST.tenants}

    def bundle_file(entry: DataEntry) -> bytes:
        return tenants[entry.ref] if entry.source == "tenant" else files[entry.ref]
    configmaps, secrets, skipped = k8s.build_objects(KUBE, NS, bundle_file, site_bytes)
    assert skipped == []
    written = k8s.write_manifests(str(folder / "deploy"), str(folder / "secrets"), configmaps, secrets,
                                  k8s.namespace(NS))
    assert len(written) == 1 + len(KUBE.configmaps) + len(KUBE.secrets)
    return [Path(p) for p in written]


def test_the_installers_objects_validate_strict(kv, tmp_path):
    paths = written_manifests(tmp_path)
    objects = [json.loads(p.read_bytes()) for p in paths]
    kinds = ["Namespace"] + ["ConfigMap"] * len(KUBE.configmaps) + ["Secret"] * len(KUBE.secrets)
    assert [o["kind"] for o in objects] == kinds
    assert problems(kv, objects) == []
    # the CLI, as a reviewer runs it on the written files: every object passes against 1.35, no warning
    proc = validate_cli(paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(paths) and all(line.startswith("INFO ") for line in lines), proc.stdout
    assert all(line.endswith(" passed for resource %s/%s against version 1.35" % (o["kind"].lower(),
                                                                                   o["metadata"]["name"]))
               for line, o in zip(lines, objects)), proc.stdout


def test_the_golden_install_outputs_validate_strict(kv):
    paths = sorted(GOLDEN.glob("*/deploy/kubernetes/*.json"))
    assert len(paths) >= 4 * 3, paths  # every install scenario wrote the namespace and both ConfigMaps
    assert problems(kv, [json.loads(p.read_bytes()) for p in paths]) == []


def deployment() -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.site/web:1",
                                         "readinessProbe": {"tcpSocket": {"port": 8080}}}]}}}}


def broken(change: Callable[[Obj], None], obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    change(obj)
    return obj


def test_the_validator_refuses_broken_objects(kv, tmp_path):
    """Negative controls: each one passes unchanged and fails broken, so the checks above can fail."""
    secret = k8s.secret_from_files("s", NS, {"token": b"t"})
    configmap = k8s.configmap_from_files("c", NS, {"a.yaml": b"a: 1\n"})
    assert problems(kv, [secret, configmap, deployment()]) == []
    cases = [
        (broken(lambda o: o.update(stringdata={"token": "t"}), secret), "Additional properties"),  # stringData misspelt
        (broken(lambda o: o["data"].update({"n": 1}), configmap), "is not of type"),
        (broken(lambda o: o["metadata"].update(namespaces=NS), configmap), "Additional properties"),
        (broken(lambda o: o["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].update(
            tcpSocket={"port": 8080, "hosts": "x"}), deployment()), "Additional properties"),
        ({"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}, "Couldn't find schema"),
    ]
    for obj, why in cases:
        found = problems(kv, [obj])
        assert len(found) == 1 and why in found[0], (obj, found)
    # strict is what catches the unknown field deep inside the Deployment: the lax schemas let it through
    deep = cases[3][0]
    assert kv.validate(deep, KUBERNETES, strict=False) == "1.35"
    # and the CLI exits non-zero on a broken file
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cases[0][0]))
    proc = validate_cli([path])
    assert proc.returncode == 1 and proc.stdout.startswith("ERROR ") and "stringdata" in proc.stdout, proc


# --- 2. the upstream charts, rendered with the install's values -----------------------------------
@pytest.fixture(scope="module")
def upstream() -> Path:
    folder = os.environ.get(UPSTREAM)
    if not folder:
        pytest.skip(NO_UPSTREAM)
    return Path(folder)


@pytest.fixture(scope="module")
def rendered(upstream, tmp_path_factory) -> Callable[[str], List[Obj]]:
    """`helm template` of a chart, as the install runs it, parsed; each chart rendered once."""
    home = tmp_path_factory.mktemp("helm-home")  # HELM_{CONFIG,CACHE,DATA}_HOME: nothing of this host
    cache: Dict[str, List[Obj]] = {}

    def render(name: str) -> List[Obj]:
        if name not in cache:
            chart = chart_path(upstream, name, home)
            out = helm(["template", name, str(chart), "--namespace", NS, "--kube-version", KUBERNETES,
                        "--values", str(VALUES / ("%s.yaml" % name))], home)
            cache[name] = [o for o in yaml.safe_load_all(out) if o]
        return cache[name]
    return render


def chart_path(upstream: Path, name: str, home: Path) -> Path:
    """NAME/ or NAME-VERSION.tgz (or NAME.tgz) in the folder, at the manifest's version."""
    version = CHARTS[name]["version"]
    found: Optional[Path] = next((p for p in (upstream / name, upstream / ("%s-%s.tgz" % (name, version)),
                                              upstream / ("%s.tgz" % name)) if p.exists()), None)
    if found is None:
        pytest.fail("%s=%s holds no %s/ nor %s-%s.tgz (scripts/upstream-charts.sh fetches them)"
                    % (UPSTREAM, upstream, name, name, version))
    meta = yaml.safe_load(helm(["show", "chart", str(found)], home))
    assert (meta["name"], meta["version"]) == (name, version), found
    return found


def one(objects: List[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name, sorted((o["kind"], o["metadata"]["name"]) for o in objects))
    return matches[0]


def config(objects: List[Obj], configmap: str, key: str) -> Obj:
    parsed = yaml.safe_load(one(objects, "ConfigMap", configmap)["data"][key])
    assert isinstance(parsed, dict), (configmap, key)
    return parsed


def assert_tcp_probes(workload: Obj) -> None:
    """mTLS (RequireAndVerifyClientCert) would fail the kubelet's httpGet probes: it has no client cert."""
    containers = workload["spec"]["template"]["spec"]["containers"]
    probes = [c[p] for c in containers for p in ("livenessProbe", "readinessProbe", "startupProbe") if p in c]
    assert probes, workload["metadata"]["name"]
    for probe in probes:
        assert "tcpSocket" in probe and not {"httpGet", "grpc", "exec"} & set(probe), probe


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_every_rendered_chart_object_validates_strict(kv, rendered, name):
    objects = rendered(name)
    assert objects and all(o["metadata"].get("namespace", NS) == NS for o in objects), name
    assert problems(kv, objects) == []


def test_loki_renders_mtls_and_no_phone_home(rendered):
    objects = rendered("loki")
    loki = config(objects, "loki", "config.yaml")
    assert loki["server"]["http_tls_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
    assert loki["server"]["grpc_listen_address"] == "127.0.0.1"  # gRPC has no TLS: loopback only
    assert loki["common"]["instance_addr"] == "127.0.0.1" and loki["common"]["ring"]["kvstore"]["store"] == "inmemory"
    assert loki["memberlist"] == {"bind_addr": ["127.0.0.1"]}   # the chart's join_members gone: nothing to join
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["analytics"]["reporting_enabled"] is False
    assert_tcp_probes(one(objects, "StatefulSet", "loki"))


def test_tempo_renders_mtls_otlp_only_and_site_s3_credentials(rendered):
    objects = rendered("tempo")
    tempo = config(objects, "tempo", "tempo.yaml")
    assert tempo["server"]["http_tls_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
    assert tempo["server"]["grpc_listen_address"] == "127.0.0.1"
    assert tempo["ingester"]["lifecycler"]["address"] == "127.0.0.1"
    assert tempo["memberlist"]["bind_addr"] == ["127.0.0.1"]
    assert tempo["compactor"]["compaction"]["block_retention"] == "168h"
    receivers = tempo["distributor"]["receivers"]
    assert list(receivers) == ["otlp"]
    protocols = receivers["otlp"]["protocols"]
    assert sorted(protocols) == ["grpc", "http"]
    for protocol in protocols.values():
        assert protocol["tls"]["client_ca_file"], protocol
    assert tempo["usage_report"]["reporting_enabled"] is False
    assert tempo["storage"]["trace"]["s3"]["forcepathstyle"] is True
    statefulset = one(objects, "StatefulSet", "tempo")
    assert_tcp_probes(statefulset)
    # the credentials come from the Secret the installer writes from the site's s3 folder
    env_from = [e for c in statefulset["spec"]["template"]["spec"]["containers"] for e in c.get("envFrom", [])]
    assert {"secretRef": {"name": "stellaops-tempo-s3"}} in env_from, env_from


def test_prometheus_renders_its_web_config_with_mtls(rendered):
    objects = rendered("prometheus")
    server = one(objects, "Deployment", "prometheus-server")
    args = [a for c in server["spec"]["template"]["spec"]["containers"] for a in c.get("args", [])]
    assert "--web.config.file=/etc/config/web.yml" in args, args
    assert_tcp_probes(server)
    web = config(objects, "prometheus-server", "web.yml")
    assert web["tls_server_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
