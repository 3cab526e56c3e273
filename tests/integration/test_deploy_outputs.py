"""Phase 4 on the default bundle: compose files, chart values, Kubernetes objects, dev TLS, secrets, status."""

import base64
import json
import os
import stat
import subprocess

import yaml
from tests.helpers.charts import helm
from tests.helpers.images import skopeo_inspect_digest


def install(ob, archive, kit, pub, site, *extra):
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", site.host + "/corp",
           "--insecure-registry", site.host, "--json", *extra)
    assert r.rc == 0, r
    return r


def test_compose_files_point_at_the_site_by_digest_and_parse(ob, default_bundle, pub, tmp_path, site):
    kit = tmp_path / "kit"
    r = install(ob, default_bundle, kit, pub, site, "--dev-tls", "--secrets-group", "4244")
    out = kit / r.json["result"]["outputs"]["folder"]
    # the environment COMMANDS.txt gives compose: the kit's folders and the group they were granted to
    (compose_env,) = {json.dumps(c["env"], sort_keys=True) for c in r.json["result"]["outputs"]["argv"]
                      if c["argv"][:2] == ["docker", "compose"]}
    assert json.loads(compose_env)["TELEMETRY_SECRETS_GID"] == "4244"
    meta = json.loads((kit / "current" / "telemetry-storage" / "bundle.json").read_text())
    digests = {i["repository"]: i["digest"] for i in meta["images"]}
    version_dir = os.path.realpath(kit / "current" / "telemetry-storage")
    seen = set()
    for compose in sorted((out / "compose").iterdir()):
        doc = yaml.safe_load(compose.read_text())
        for service in doc["services"].values():
            image = service["image"]
            repo, digest = image.split("@")
            assert repo.startswith(site.host + "/corp/docker.io/") and digest.startswith("sha256:")
            source = "docker.io/" + repo.split("/docker.io/", 1)[1]
            assert digests[source] == digest
            assert skopeo_inspect_digest("%s@%s" % (repo.split("/", 1)[1], digest), site) == digest  # on the site
            seen.add(source)
            for volume in service.get("volumes", []):
                if isinstance(volume, str) and volume.startswith("/"):
                    host_path = volume.split(":", 1)[0]
                    if host_path.startswith(version_dir):
                        assert os.path.exists(host_path), volume  # mounts point into the installed version
        # Debian's docker-compose accepts the rendered file
        env = dict(os.environ, **json.loads(compose_env))
        check = subprocess.run(["docker-compose", "-f", str(compose), "config", "-q"],
                               capture_output=True, text=True, env=env)
        assert check.returncode == 0, check.stderr
    assert len(seen) == 4
    # the bundle's own compose files are untouched
    original = (kit / "current" / "telemetry-storage" / "compose" / "docker-compose.telemetry-storage.yaml").read_text()
    assert "docker.io/prom/prometheus:v3.5.0" in original


def test_values_render_with_helm_against_the_site(ob, default_bundle, pub, tmp_path, site):
    kit = tmp_path / "kit"
    r = install(ob, default_bundle, kit, pub, site)
    out = kit / r.json["result"]["outputs"]["folder"]
    home = tmp_path / "helm"
    for chart, version in (("prometheus", "27.19.0"), ("loki", "6.29.0"), ("tempo", "1.23.3")):
        pulled = tmp_path / ("pull-" + chart)
        pulled.mkdir()
        helm(["pull", "oci://%s/corp/charts/%s" % (site.host, chart), "--version", version, "--plain-http", "-d",
              str(pulled)], home)
        values = out / "values" / ("%s.yaml" % chart)
        base = json.loads(values.read_text())
        assert base  # the seed's settings are there
        rendered = helm(["template", chart, str(pulled / ("%s-%s.tgz" % (chart, version))), "-f", str(values)], home)
        images = [c["image"] for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "Deployment"
                  for c in d["spec"]["template"]["spec"]["containers"]]
        assert images and all(i.startswith(site.host + "/corp/docker.io/") and "@sha256:" in i for i in images)
    prom = json.loads((out / "values" / "prometheus.yaml").read_text())
    # the seed's Prometheus settings, and HTTPS with client certificates (issue 13 point 1)
    assert prom["server"]["extraFlags"] == ["web.enable-lifecycle", "web.config.file=/etc/config/web.yml"]
    assert prom["server"]["persistentVolume"] == {"enabled": True, "size": "200Gi"}
    assert json.loads((out / "values" / "loki.yaml").read_text())["loki"]["auth_enabled"] is True
    assert json.loads((out / "values" / "tempo.yaml").read_text())["tempo"]["multitenancyEnabled"] is True


def test_kubernetes_objects_carry_the_tenant_files_byte_for_byte_and_secrets_stay_secret(ob, default_bundle, pub,
                                                                                          tmp_path, site):
    kit = tmp_path / "kit"
    (kit / "secrets" / "token").mkdir(parents=True)
    (kit / "secrets" / "token" / "token").write_text("very-secret-bearer-token-42\n")
    r = install(ob, default_bundle, kit, pub, site, "--dev-tls")
    result = r.json["result"]
    out = kit / result["outputs"]["folder"]
    tree = kit / "current" / "telemetry-storage"
    cms = {json.loads(p.read_text())["metadata"]["name"]: json.loads(p.read_text())
           for p in (out / "kubernetes").glob("*-configmap-*.json")}
    assert (cms["stellaops-loki-tenant-overrides"]["data"]["overrides.yaml"]
            == (tree / "tenants" / "loki.yaml").read_text())
    assert (cms["tempo-tenant-overrides"]["data"]["tempo-overrides.yaml"]
            == (tree / "tenants" / "tempo.yaml").read_text())
    secrets_dir = kit / "secrets" / "telemetry-storage" / "2026.11.0" / os.path.basename(out)
    secrets = {json.loads(p.read_text())["metadata"]["name"]: json.loads(p.read_text())
               for p in secrets_dir.glob("*.json")}
    assert set(secrets) == {"stellaops-otel-tls-stage", "stellaops-prometheus-token", "stellaops-prometheus-scrape"}
    assert base64.b64decode(secrets["stellaops-prometheus-token"]["data"]["token"]) == b"very-secret-bearer-token-42\n"
    assert (base64.b64decode(secrets["stellaops-otel-tls-stage"]["data"]["tls.key"])
            == (kit / "secrets" / "tls" / "tls.key").read_bytes())
    for folder in [kit / "secrets"] + [p for p in (kit / "secrets").rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # the operator's 0644 token (and 0755 folder) are brought to 0600 (0700): no group grant was asked for
    for f in list(secrets_dir.iterdir()) + [kit / "secrets" / "tls" / "tls.key", kit / "secrets" / "token" / "token"]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    # never in bundles/ or deploy/, never printed, never in a receipt
    public = [p for base in (kit / "bundles", kit / "deploy", kit / ".state") for p in base.rglob("*") if p.is_file()]
    key_b64 = secrets["stellaops-otel-tls-stage"]["data"]["tls.key"]
    for p in public:
        data = p.read_bytes()
        assert b"very-secret-bearer-token" not in data and key_b64.encode() not in data, p
        assert b"PRIVATE KEY" not in data, p
    assert "very-secret" not in r.out + r.err and "PRIVATE KEY" not in r.out + r.err
    # the equivalent kubectl create, for the same inputs, gives the same object
    kubectl = subprocess.run(["kubectl", "create", "configmap", "stellaops-loki-tenant-overrides",
                              "-n", "observability", "--from-file=overrides.yaml=%s" % (tree / "tenants" / "loki.yaml"),
                              "--dry-run=client", "-o", "json"], capture_output=True, text=True, check=True)
    assert json.loads(kubectl.stdout) == cms["stellaops-loki-tenant-overrides"]


def test_dev_tls_is_kept_across_installs_and_an_operator_pki_is_used_as_is(ob, default_bundle, pub, tmp_path, site):
    kit = tmp_path / "kit"
    install(ob, default_bundle, kit, pub, site, "--dev-tls")
    first = (kit / "secrets" / "tls" / "tls.crt").read_bytes()
    install(ob, default_bundle, kit, pub, site, "--dev-tls")
    assert (kit / "secrets" / "tls" / "tls.crt").read_bytes() == first
    # an operator's own PKI: only ca.crt, tls.crt and tls.key
    kit2 = tmp_path / "kit2"
    assert ob("tls", "--out", tmp_path / "pki").rc == 0
    (kit2 / "secrets" / "tls").mkdir(parents=True)
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (kit2 / "secrets" / "tls" / name).write_bytes((tmp_path / "pki" / name).read_bytes())
    r = install(ob, default_bundle, kit2, pub, site, "--dev-tls")
    assert r.json["result"]["outputs"]["tls"] == "existing"
    assert sorted(os.listdir(kit2 / "secrets" / "tls")) == ["ca.crt", "tls.crt", "tls.key"]


def test_status_lists_the_outputs_and_their_sites(ob, default_bundle, pub, tmp_path, site):
    kit = tmp_path / "kit"
    install(ob, default_bundle, kit, pub, site)
    text = ob("status", "--kit", kit).out
    assert "outputs for 2026.11.0, site %s_corp" % site.host.replace(":", "_") in text


def test_apply_without_a_kubeconfig_prints_the_commands(ob, default_bundle, pub, tmp_path, site):
    kit = tmp_path / "kit"
    r = ob("install", default_bundle, "--kit", kit, "--trust", pub, "--registry", site.host, "--insecure-registry",
           site.host, "--apply", "--json", env={"KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)})
    assert r.rc == 0, r
    applied = r.json["result"]["deploy"]["apply"]
    assert applied["kubernetes"].startswith("no kubeconfig")
    assert any(c.startswith("kubectl apply -f ") for c in applied["commands"])
    assert any(c.startswith("helm upgrade --install prometheus oci://%s/charts/prometheus" % site.host)
               for c in applied["commands"])


def test_apply_against_an_unreachable_cluster_is_exit_10_and_a_rerun_can_finish(ob, default_bundle, pub, tmp_path,
                                                                                 site):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "x"}}]}))
    kit = tmp_path / "kit"
    args = ["install", default_bundle, "--kit", kit, "--trust", pub, "--registry", site.host, "--insecure-registry",
            site.host, "--json"]
    r = ob(*args, "--apply", env={"KUBECONFIG": str(kubeconfig)})
    assert r.rc == 10, r
    assert r.json["error"]["message"].startswith("kubectl apply -f failed")
    assert os.readlink(kit / "current" / "telemetry-storage") == "../bundles/telemetry-storage/2026.11.0"
    assert ob("status", "--kit", kit, "--json").json["result"]["bundles"][0]["last"]["outcome"] == "deploy-incomplete"
    assert ob(*args).rc == 0  # without --apply the rerun completes the deploy


def test_apply_with_missing_tools_is_exit_10(ob, default_bundle, pub, tmp_path, site):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    r = ob("install", default_bundle, "--kit", tmp_path / "kit", "--trust", pub, "--registry", site.host,
           "--insecure-registry", site.host, "--apply", "--json",
           env={"KUBECONFIG": str(kubeconfig), "PATH": str(empty)})
    assert r.rc == 10 and "needs kubectl on PATH" in r.json["error"]["message"]
    r = ob("install", default_bundle, "--kit", tmp_path / "kit2", "--trust", pub, "--docker", "--apply", "--json",
           env={"PATH": str(empty), "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert r.rc == 10  # no engine to load into, and no compose tool either


def test_docker_only_compose_uses_the_loaded_image_ids_and_apply_runs_compose(ob, default_bundle, pub, tmp_path):
    from tests.helpers.dockerd import start_dockerd

    kit = tmp_path / "kit"
    with start_dockerd() as d:
        r = ob("install", default_bundle, "--kit", kit, "--trust", pub, "--docker", "--dev-tls", "--json", env=d.env)
        assert r.rc == 0, r
        out = kit / r.json["result"]["outputs"]["folder"]
        assert out.name == "docker"
        images = {s["image"] for f in (out / "compose").iterdir()
                  for s in yaml.safe_load(f.read_text())["services"].values()}
        # by image ID (the config digest Docker was proved to hold), never by a tag another load could move
        ids = {i["ref"]: i["id"] for i in r.json["result"]["docker"]["images"]}
        assert images == {ids[ref] for ref in ("docker.io/prom/prometheus:v3.5.0", "docker.io/grafana/tempo:2.8.2",
                                               "docker.io/grafana/loki:3.5.3",
                                               "docker.io/otel/opentelemetry-collector-contrib:0.130.0")}
        assert {i.id for i in d.client.images.list()} >= images
        # Debian's docker-compose accepts image IDs as images
        check = subprocess.run(["docker-compose", "-f", str(next((out / "compose").iterdir())), "config", "-q"],
                               capture_output=True, text=True, env=dict(os.environ, **d.env,
                                                                        TELEMETRY_TLS_DIR=str(kit / "secrets" / "tls"),
                                                                        TELEMETRY_TOKEN_DIR=str(tmp_path),
                                                                        TELEMETRY_S3_DIR=str(tmp_path),
                                                                        TELEMETRY_SECRETS_GID="4245"))
        assert check.returncode == 0, check.stderr
        # --apply runs the compose tool for real; the stand-in images have no program to start, so it fails: exit 10
        r = ob("install", default_bundle, "--kit", kit, "--trust", pub, "--docker", "--apply", "--json",
               env=dict(d.env, PATH=os.environ["PATH"]))
        assert r.rc == 10, r
        assert "compose" in r.json["error"]["message"] and "failed" in r.json["error"]["message"]
