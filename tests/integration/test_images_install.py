"""Images on the install side: push to a site registry, load into Docker, and step 5 of verification."""

import json
import os
from pathlib import Path

import pytest
from tests.helpers.craft import edit_meta, get, read_entries, resign, write_archive
from tests.helpers.faults import FaultProxy, status
from tests.helpers.images import RandomLayer, make_big_image, make_image, make_index, push, skopeo_inspect_digest
from tests.helpers.registry import Registry, start_registry

PLATS3 = (("linux", "amd64"), ("linux", "arm64"), ("linux", "arm", "v7"))


def manifest_text(images, name="imgs", version="1.0.0"):
    lines = ["apiVersion: offline-bundle/v1", "kind: Bundle", "metadata:", "  name: %s" % name,
             '  version: "%s"' % version, '  created: "2026-11-26T00:00:00Z"', "spec:", "  images:"]
    for img in images:
        img = {"ref": img} if isinstance(img, str) else img
        lines.append("    - ref: %s" % img["ref"])
        if img.get("platforms"):
            lines.append("      platforms: [%s]" % ", ".join(img["platforms"]))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    base = tmp_path_factory.mktemp("isrc")
    reg = start_registry(base / "reg", kind="plain")
    lay = base / "layout"
    info = {"single": make_image(lay, "single", [{"etc/prometheus": b"stand-in\n"}]),
            "index": make_index(lay, "multi", platforms=PLATS3, shared_base=RandomLayer.mb(1, seed=3))}
    push(lay, "single", reg, "prom/prometheus:v3.5.0")
    push(lay, "multi", reg, "grafana/loki:3.5.3")
    push(lay, "multi", reg, "grafana/tempo:2.8.2")
    info["v2s2"] = push(lay, "single", reg, "otel/collector:0.130.0", fmt="v2s2")
    # the same repository path under another source host, for --strip-source-host collisions
    push(lay, "single", reg, "ghcr/prom/prometheus:v3.5.0")
    yield reg, info
    reg.stop()


@pytest.fixture(scope="module")
def bundle(src, tmp_path_factory, ob, keydir):
    """One bundle with a single manifest, a whole index, a derived index and a Docker v2s2 image."""
    reg, _ = src
    d = tmp_path_factory.mktemp("ibundle")
    (d / "m.yaml").write_text(manifest_text([
        "prom/prometheus:v3.5.0", "grafana/loki:3.5.3",
        {"ref": "grafana/tempo:2.8.2", "platforms": ["linux/amd64", "linux/arm64"]}, "otel/collector:0.130.0"]))
    r = ob("build", d / "m.yaml", "--key", keydir / "ed" / "bundle.key", "--out", d / "out", "--cache", d / "cache",
           "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host, "--json")
    assert r.rc == 0, r
    archive = Path(r.json["result"]["archive"])
    return archive, json.loads(read_entries(archive)[2].data)


@pytest.fixture
def site(tmp_path):
    reg = start_registry(tmp_path / "site", kind="plain", accesslog=True)
    yield reg
    reg.stop()


def install(ob, archive, kit, pub, *extra, env=None):
    return ob("install", archive, "--kit", kit, "--trust", pub, "--json", *extra, env=env)


def test_push_keeps_every_digest_and_a_second_install_writes_nothing(ob, bundle, pub, tmp_path, site):
    archive, meta = bundle
    kit = tmp_path / "kit"
    r = install(ob, archive, kit, pub, "--registry", site.host + "/airgap", "--insecure-registry", site.host)
    assert r.rc == 0, r
    deploy = r.json["result"]["deploy"]
    assert deploy["blobs_pushed"] > 0 and deploy["tags_moved"] == len(meta["images"])
    for image in meta["images"]:
        repo = "airgap/" + image["repository"]
        assert skopeo_inspect_digest("%s:%s" % (repo, image["tag"]), site) == image["digest"], image["ref"]
    derived = next(i for i in meta["images"] if i["derived"])
    assert derived["ref"] == "docker.io/grafana/tempo:2.8.2"
    mark = site.mark()
    again = install(ob, archive, kit, pub, "--registry", site.host + "/airgap", "--insecure-registry", site.host)
    assert again.rc == 0 and again.json["result"]["outcome"] == "already-installed"
    assert Registry.writes(site.requests_since(mark)) == []
    d = again.json["result"]["deploy"]
    assert d["blobs_pushed"] == d["manifests_pushed"] == d["tags_moved"] == 0
    receipt = json.loads((kit / again.json["result"]["receipt"]).read_text())
    assert [p["status"] for p in receipt["phases"]] == ["done", "skipped", "done", "skipped", "done", "done"]


def test_repository_naming_and_strip_source_host(ob, bundle, pub, tmp_path, site, src, keydir):
    archive, meta = bundle
    r = install(ob, archive, tmp_path / "kit", pub, "--registry", site.host, "--insecure-registry", site.host,
                "--strip-source-host")
    assert r.rc == 0, r
    prom = next(i for i in meta["images"] if i["ref"] == "docker.io/prom/prometheus:v3.5.0")
    assert skopeo_inspect_digest("prom/prometheus:v3.5.0", site) == prom["digest"]
    images = r.json["result"]["deploy"]["images"]
    assert "%s/prom/prometheus:v3.5.0@" % site.host in " ".join(images)
    # two sources with the same path collide without their hosts
    reg, _ = src
    (tmp_path / "m.yaml").write_text(manifest_text(["prom/prometheus:v3.5.0", "ghcr.io/prom/prometheus:v3.5.0"], "two"))
    b = ob("build", tmp_path / "m.yaml", "--key", keydir / "ed" / "bundle.key", "--out", tmp_path / "o",
           "--mirror", "docker.io=%s" % reg.host, "--mirror", "ghcr.io=%s/ghcr" % reg.host,
           "--insecure-registry", reg.host, "--json")
    assert b.rc == 0, b
    kit = tmp_path / "kit2"
    c = install(ob, b.json["result"]["archive"], kit, pub, "--registry", site.host, "--insecure-registry", site.host,
                "--strip-source-host")
    assert c.rc == 3 and "same repository" in c.json["error"]["message"]
    assert not (kit / "current" / "two").exists()
    ok = install(ob, b.json["result"]["archive"], kit, pub, "--registry", site.host, "--insecure-registry", site.host)
    assert ok.rc == 0, ok  # with hosts kept, they cannot collide


def test_token_site_with_environment_credentials(ob, bundle, pub, tmp_path):
    archive, meta = bundle
    reg = start_registry(tmp_path / "tok", kind="token")
    try:
        env = {"BUNDLE_REGISTRY_USER": reg.username, "BUNDLE_REGISTRY_PASSWORD": reg.password,
               "DOCKER_CONFIG": str(tmp_path / "none")}
        r = install(ob, archive, tmp_path / "kit", pub, "--registry", reg.host, "--registry-ca", reg.ca_file, env=env)
        assert r.rc == 0, r
        scopes = [scope for user, scope in reg.token_requests if user == reg.username]
        assert any("push" in s for s in scopes)
        kit_text = "".join(p.read_text(errors="replace") for p in (tmp_path / "kit").rglob("*.json"))
        assert reg.password not in r.out + r.err + kit_text
        bad = dict(env, BUNDLE_REGISTRY_PASSWORD="wrong-pw-123")
        r = install(ob, archive, tmp_path / "kit2", pub, "--registry", reg.host, "--registry-ca", reg.ca_file, env=bad)
        assert r.rc == 7 and "wrong-pw-123" not in r.out + r.err
        assert not (tmp_path / "kit2" / "current" / "imgs").exists()  # phase 3 failed: current untouched
    finally:
        reg.stop()


def test_unknown_ca_is_exit_7(ob, bundle, pub, tmp_path):
    archive, _ = bundle
    reg = start_registry(tmp_path / "tls", kind="tls")
    try:
        r = install(ob, archive, tmp_path / "kit", pub, "--registry", reg.host)
        assert r.rc == 7 and "certificate" in r.json["error"]["message"]
        r = install(ob, archive, tmp_path / "kit", pub, "--registry", reg.host, "--registry-ca", reg.ca_file)
        assert r.rc == 0, r
    finally:
        reg.stop()


def test_push_survives_500_and_429(ob, bundle, pub, tmp_path, site):
    archive, meta = bundle
    with FaultProxy(site) as proxy:
        proxy.add(status(500), method="PUT", path=r"/blobs/uploads/", nth=1)
        proxy.add(status(429, retry_after=1), method="HEAD", path=r"/blobs/", nth=2)
        proxy.add(status(503), method="PUT", path=r"/manifests/", nth=1)
        r = install(ob, archive, tmp_path / "kit", pub, "--registry", proxy.host, "--insecure-registry", proxy.host)
        assert r.rc == 0, r
    for image in meta["images"]:
        assert skopeo_inspect_digest("%s:%s" % (image["repository"], image["tag"]), site) == image["digest"]


def test_a_failure_moving_tags_is_deploy_incomplete_and_a_rerun_finishes(ob, bundle, pub, tmp_path, site):
    archive, meta = bundle
    kit = tmp_path / "kit"
    with FaultProxy(site) as proxy:
        proxy.add(status(500), method="PUT", path=r"/manifests/[^s][^h]")  # tags, not digests (sha256:...)
        r = install(ob, archive, kit, pub, "--registry", proxy.host, "--insecure-registry", proxy.host)
        assert r.rc == 7, r
        assert "run the same install again" in r.json["error"]["message"]
        assert os.readlink(kit / "current" / "imgs") == "../bundles/imgs/1.0.0"
        last = ob("status", "--kit", kit, "--json").json["result"]["bundles"][0]["last"]
        assert last["outcome"] == "deploy-incomplete"
        proxy.clear()
        r = install(ob, archive, kit, pub, "--registry", proxy.host, "--insecure-registry", proxy.host)
        assert r.rc == 0, r
        assert r.json["result"]["deploy"]["tags_moved"] == len(meta["images"])


def test_docker_load_for_the_host_platform_and_another(ob, bundle, pub, tmp_path, site):
    from tests.helpers.dockerd import start_dockerd

    archive, meta = bundle
    with start_dockerd() as d:
        r = install(ob, archive, tmp_path / "kit", pub, "--docker", "--registry", site.host,
                    "--insecure-registry", site.host, env=d.env)
        assert r.rc == 0, r
        loaded = r.json["result"]["docker"]
        assert loaded["platform"] == "linux/amd64"
        for item in loaded["images"]:
            image = d.client.images.get(item["id"])
            assert image.id == item["id"]
            tags = set(image.tags)
            ref = item["ref"].replace("docker.io/", "", 1)
            assert ref in tags and "%s/%s" % (site.host, item["ref"]) in tags
            assert image.attrs["Architecture"] == "amd64"
        r = install(ob, archive, tmp_path / "kit", pub, "--docker", "--platform", "linux/arm64", env=d.env)
        # prometheus and the collector are amd64-only: there is nothing to load for arm64
        assert r.rc == 10 and "has no linux/arm64 image" in r.json["error"]["message"]
    r = install(ob, archive, tmp_path / "kit", pub, "--docker", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert r.rc == 10 and "Docker engine" in r.json["error"]["message"]


def test_docker_loads_arm64_from_an_index(ob, pub, key, tmp_path, src):
    from tests.helpers.dockerd import start_dockerd

    reg, info = src
    (tmp_path / "m.yaml").write_text(manifest_text(["grafana/loki:3.5.3"], "loki"))
    b = ob("build", tmp_path / "m.yaml", "--key", key, "--out", tmp_path / "o", "--mirror", "docker.io=%s" % reg.host,
           "--insecure-registry", reg.host, "--json")
    assert b.rc == 0, b
    with start_dockerd() as d:
        r = install(ob, b.json["result"]["archive"], tmp_path / "kit", pub, "--docker", "--platform", "linux/arm64",
                    env=d.env)
        assert r.rc == 0, r
        [item] = r.json["result"]["docker"]["images"]
        assert item["id"] == info["index"].images["linux/arm64"].config_digest
        assert d.client.images.get(item["id"]).attrs["Architecture"] == "arm64"


@pytest.mark.slow
def test_a_100_mb_image_end_to_end(ob, pub, key, tmp_path, site):
    from tests.helpers.dockerd import start_dockerd

    srcreg = start_registry(tmp_path / "bigsrc", kind="plain")
    try:
        big = make_big_image(tmp_path / "lay", "big", size_mb=110, seed=5)
        push(tmp_path / "lay", "big", srcreg, "big/image:1")
        (tmp_path / "m.yaml").write_text(manifest_text(["big/image:1"], "big"))
        b = ob("build", tmp_path / "m.yaml", "--key", key, "--out", tmp_path / "o", "--mirror",
               "docker.io=%s" % srcreg.host, "--insecure-registry", srcreg.host, "--json")
        assert b.rc == 0, b
        assert b.json["result"]["total_size"] > 110 * 1024 * 1024
        with start_dockerd() as d:
            r = install(ob, b.json["result"]["archive"], tmp_path / "kit", pub, "--registry", site.host,
                        "--insecure-registry", site.host, "--docker", env=d.env)
            assert r.rc == 0, r
            assert skopeo_inspect_digest("docker.io/big/image:1", site) == big.digest
            assert d.client.images.get(big.config_digest).id == big.config_digest
    finally:
        srcreg.stop()


def test_step5_refuses_a_signed_bundle_missing_a_layer(ob, bundle, key, pub, tmp_path):
    archive, meta = bundle
    entries = read_entries(archive)
    manifest_digest = next(i for i in meta["images"] if i["ref"] == "docker.io/prom/prometheus:v3.5.0")["digest"]
    manifest = json.loads(get(entries, "images/blobs/sha256/" + manifest_digest.split(":")[1]).data)
    layer = "images/blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]
    entries = [e for e in entries if e.path != layer]

    def drop(doc):
        doc["members"] = [m for m in doc["members"] if m["path"] != layer]
        doc["total_size"] = sum(m["size"] for m in doc["members"])
    entries = resign(edit_meta(entries, drop), key)
    bad = write_archive(entries, tmp_path / "bad.bundle.tar.zst")
    r = install(ob, bad, tmp_path / "kit", pub)
    assert r.rc == 5 and "image layout disagree" in r.json["error"]["message"]
    assert any("is missing" in p for p in r.json["error"]["problems"])
    assert not (tmp_path / "kit" / "bundles" / "imgs").exists()


def test_step5_refuses_index_json_disagreeing_with_bundle_json(ob, bundle, key, pub, tmp_path):
    archive, meta = bundle
    entries = read_entries(archive)
    index = json.loads(get(entries, "images/index.json").data)
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "docker.io/evil/image:1"
    get(entries, "images/index.json").data = json.dumps(index).encode()

    def fix_size(doc):
        for m in doc["members"]:
            if m["path"] == "images/index.json":
                m["size"] = len(get(entries, "images/index.json").data)
        doc["total_size"] = sum(m["size"] for m in doc["members"])
    entries = resign(edit_meta(entries, fix_size), key)
    bad = write_archive(entries, tmp_path / "bad.bundle.tar.zst")
    r = ob("verify", bad, "--trust", pub, "--json")
    assert r.rc == 5, r
    assert any("docker.io/evil/image:1" in p for p in r.json["error"]["problems"])


def test_an_engine_holding_another_id_is_exit_10(ob, bundle, pub, tmp_path):
    """Fault injection: an engine that claims the image under an ID that is not its config digest."""
    from tests.helpers.fakeengine import fake_engine

    archive, _ = bundle
    sock = tmp_path / "fake.sock"
    server = fake_engine(sock, [{"stream": "Loaded image"}], "sha256:" + "0" * 64)
    try:
        r = install(ob, archive, tmp_path / "kit", pub, "--docker", env={"DOCKER_HOST": "unix://%s" % sock})
        assert r.rc == 10 and "not its config digest" in r.json["error"]["message"]
        assert not (tmp_path / "kit" / "current" / "imgs").exists()
    finally:
        server.shutdown()
