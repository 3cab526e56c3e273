"""Charts end to end with the real helm binary: HTTP repository, OCI registry, local folder, site pushes, values."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from tests.helpers.charts import helm, make_chart, package, push_oci, serve_repo
from tests.helpers.craft import read_entries
from tests.helpers.images import make_image, push, skopeo_inspect_digest
from tests.helpers.registry import start_registry


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A source registry with two images, an HTTP chart repository, an OCI chart, a helm home."""
    base = tmp_path_factory.mktemp("charts")
    home = base / "helm-home"
    reg = start_registry(base / "reg", kind="plain")
    lay = base / "layout"
    info = {"app": make_image(lay, "app", [{"bin/app": b"app\n"}]),
            "side": make_image(lay, "side", [{"bin/side": b"sidecar\n"}])}
    push(lay, "app", reg, "team/app:1.0")
    push(lay, "side", reg, "team/sidecar:2.0")
    charts = base / "chart-src"
    make_chart(charts, "web", "0.3.0", {"main": "docker.io/team/app:1.0", "side": "docker.io/team/sidecar:2.0"})
    make_chart(charts, "ocichart", "1.1.0", {"main": "docker.io/team/app:1.0"})
    make_chart(charts, "extra", "0.1.0", {"main": "docker.io/team/app:1.0"}, init_images={"init": "busybox:1.36"})
    served = base / "served"
    info["web_tgz"] = package(charts / "web", served, home)
    package(charts / "extra", served, home)
    repo = serve_repo(served, home)
    oci_tgz = package(charts / "ocichart", base / "oci-out", home)
    push_oci(oci_tgz, reg, "charts", home)
    info["oci_tgz"] = oci_tgz
    yield {"reg": reg, "repo": repo, "home": home, "charts": charts, "base": base, **info}
    repo.stop()
    reg.stop()


def manifest(folder: Path, body: str, name="apps") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "m.yaml"
    p.write_text("apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata:\n  name: %s\n  version: \"1.0.0\"\n"
                 "  created: \"2026-11-26T00:00:00Z\"\nspec:\n  images:\n    - ref: docker.io/team/app:1.0\n"
                 "    - ref: docker.io/team/sidecar:2.0\n%s" % (name, body))
    return p


def build(ob, world, m: Path, key, out: Path, *extra):
    reg, repo = world["reg"], world["repo"]
    return ob("build", m, "--key", key, "--out", out, "--cache", out / "cache", "--json",
              "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host,
              "--insecure-registry", repo.host, *extra)


WEB = """  charts:
    - name: web
      repo: https://charts.example.org/stable
      version: 0.3.0
      values: web-values.yaml
      images:
        - {values: main.image, ref: docker.io/team/app:1.0, style: repository-tag}
        - {values: side.image, ref: docker.io/team/sidecar:2.0, style: repository-tag}
"""


def test_http_repository_chart_through_a_url_mirror(ob, world, key, tmp_path):
    m = manifest(tmp_path / "src", WEB)
    (tmp_path / "src" / "web-values.yaml").write_text("replicas: 2\nmain:\n  image:\n    pullPolicy: IfNotPresent\n")
    r = build(ob, world, m, key, tmp_path / "out", "--mirror",
              "https://charts.example.org/stable=%s" % world["repo"].url)
    assert r.rc == 0, r
    entries = {e.path: e.data for e in read_entries(Path(r.json["result"]["archive"]))}
    # kept exactly as the repository served it
    assert entries["charts/web-0.3.0.tgz"] == world["web_tgz"].read_bytes()
    meta = json.loads(entries["bundle.json"])
    [chart] = meta["charts"]
    assert chart["source"] == "repo" and chart["origin"] == "https://charts.example.org/stable"
    assert chart["index_digest"] == hashlib.sha256(world["web_tgz"].read_bytes()).hexdigest()
    assert json.loads(entries["charts/web-0.3.0.values.json"]) == {"replicas": 2,
                                                                   "main": {"image": {"pullPolicy": "IfNotPresent"}}}
    assert {"source": "https://charts.example.org/stable", "mirror": world["repo"].url,
            "refs": ["chart web 0.3.0"]} in meta["mirrors"]
    # helm template and helm lint accept the bundled archive
    tgz = tmp_path / "web.tgz"
    tgz.write_bytes(entries["charts/web-0.3.0.tgz"])
    helm(["template", "x", str(tgz)], world["home"])
    helm(["lint", str(tgz)], world["home"])


def test_index_digest_mismatch_is_exit_5(ob, world, key, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    tgz = package(world["charts"] / "web", served, world["home"])
    repo = serve_repo(served, world["home"])
    try:
        data = bytearray(tgz.read_bytes())
        data[-5] ^= 0xFF  # the archive changes after the index was made
        tgz.write_bytes(bytes(data))
        m = manifest(tmp_path / "src", WEB.replace("      values: web-values.yaml\n", ""))
        r = build(ob, world, m, key, tmp_path / "out", "--insecure-registry", repo.host,
                  "--mirror", "https://charts.example.org/stable=%s" % repo.url)
        assert r.rc == 5 and "the repository index says" in r.json["error"]["message"]
    finally:
        repo.stop()


def test_oci_chart_is_kept_byte_exact(ob, world, key, tmp_path):
    m = manifest(tmp_path / "src", """  charts:
    - ref: oci://registry.example/charts/ocichart
      version: 1.1.0
      images:
        - {values: main.image, ref: docker.io/team/app:1.0}
""")
    r = build(ob, world, m, key, tmp_path / "out", "--mirror", "registry.example=%s" % world["reg"].host)
    assert r.rc == 0, r
    entries = {e.path: e.data for e in read_entries(Path(r.json["result"]["archive"]))}
    assert entries["charts/ocichart-1.1.0.tgz"] == world["oci_tgz"].read_bytes()
    [chart] = json.loads(entries["bundle.json"])["charts"]
    upstream = skopeo_inspect_digest("charts/ocichart:1.1.0", world["reg"])
    assert chart["oci"]["digest"] == upstream  # the registry's own manifest, byte-exact


def test_local_chart_is_packaged_reproducibly(ob, world, key, tmp_path):
    body = """  charts:
    - path: charts/web
      images:
        - {values: main.image, ref: docker.io/team/app:1.0}
        - {values: side.image, ref: docker.io/team/sidecar:2.0}
"""
    outs = []
    for i in range(2):
        src = tmp_path / ("src%d" % i)
        m = manifest(src, body)
        shutil.copytree(world["charts"] / "web", src / "charts" / "web")
        for p in (src / "charts").rglob("*"):
            os.utime(p, (1_000_000 * (i + 1), 1_000_000 * (i + 1)))
        r = build(ob, world, m, key, tmp_path / ("out%d" % i))
        assert r.rc == 0, r
        outs.append({e.path: e.data for e in read_entries(Path(r.json["result"]["archive"]))}["charts/web-0.3.0.tgz"])
    assert outs[0] == outs[1]
    data = outs[0]
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0" and not data[3] & 0x08  # gzip mtime 0, no name
    tgz = tmp_path / "web.tgz"
    tgz.write_bytes(data)
    helm(["lint", str(tgz)], world["home"])


def test_a_chart_running_an_image_not_in_the_bundle_is_exit_3(ob, world, key, tmp_path):
    m = manifest(tmp_path / "src", """  charts:
    - name: extra
      repo: %s
      version: 0.1.0
      images:
        - {values: main.image, ref: docker.io/team/app:1.0}
""" % world["repo"].url)
    r = build(ob, world, m, key, tmp_path / "out")
    assert r.rc == 3, r
    assert any("initContainers init runs busybox:1.36" in p for p in r.json["error"]["problems"])


def test_charts_reach_the_site_and_the_values_pin_the_site_images(ob, world, key, pub, tmp_path):
    m = manifest(tmp_path / "src", WEB)
    (tmp_path / "src" / "web-values.yaml").write_text("replicas: 2\n")
    r = build(ob, world, m, key, tmp_path / "out",
              "--mirror", "https://charts.example.org/stable=%s" % world["repo"].url)
    assert r.rc == 0, r
    site = start_registry(tmp_path / "site", kind="plain")
    try:
        kit = tmp_path / "kit"
        i = ob("install", r.json["result"]["archive"], "--kit", kit, "--trust", pub, "--registry", site.host + "/corp",
               "--insecure-registry", site.host, "--json")
        assert i.rc == 0, i
        # helm pull from the air-gapped site gives back the bundled archive byte for byte
        pulled = tmp_path / "pulled"
        pulled.mkdir()
        helm(["pull", "oci://%s/corp/charts/web" % site.host, "--version", "0.3.0", "--plain-http", "-d", str(pulled)],
             world["home"])
        assert (pulled / "web-0.3.0.tgz").read_bytes() == world["web_tgz"].read_bytes()
        # the values file pins the site's images; helm template renders only those
        out = kit / i.json["result"]["outputs"]["folder"]
        values = out / "values" / "web.yaml"
        assert json.loads(values.read_text())["replicas"] == 2
        rendered = helm(["template", "x", str(pulled / "web-0.3.0.tgz"), "-f", str(values)], world["home"])
        images = [c["image"] for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "Deployment"
                  for c in d["spec"]["template"]["spec"]["containers"]]
        meta = json.loads((kit / "current" / "apps" / "bundle.json").read_text())
        digests = {i["ref"]: i["digest"] for i in meta["images"]}
        assert sorted(images) == sorted([
            "%s/corp/docker.io/team/app:1.0@%s" % (site.host, digests["docker.io/team/app:1.0"]),
            "%s/corp/docker.io/team/sidecar:2.0@%s" % (site.host, digests["docker.io/team/sidecar:2.0"])])
        for image in images:  # each exists on the site at that digest
            repo_tag, digest = image.split("@")
            assert skopeo_inspect_digest(repo_tag.split("/", 1)[1], site) == digest
        commands = (out / "COMMANDS.txt").read_text()
        chart_digest = next(c["oci"]["digest"] for c in meta["charts"] if c["name"] == "web")
        assert "helm upgrade --install web oci://%s/corp/charts/web@%s " % (site.host, chart_digest) in commands
        status = ob("status", "--kit", kit, "--json").json["result"]["bundles"][0]
        assert status["outputs"][0]["site"] == "%s_corp" % site.host.replace(":", "_")
    finally:
        site.stop()
