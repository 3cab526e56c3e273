"""Images on the build side, against the real registry: media types, platforms, layout, cache, auth, faults."""

import contextlib
import json
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from tests.helpers.craft import read_entries
from tests.helpers.faults import FaultProxy, corrupt, cut_after, redirect, status
from tests.helpers.images import (ImageInfo, RandomLayer, make_image, make_index, make_shared_pair, push, put_schema1,
                                  skopeo_inspect_digest, umoci_stat)
from tests.helpers.registry import Registry, start_registry

PLATS3 = (("linux", "amd64"), ("linux", "arm64"), ("linux", "arm", "v7"))


def manifest_text(images, name="imgs", version="1.0.0"):
    lines = ["apiVersion: offline-bundle/v1", "kind: Bundle", "metadata:", "  name: %s" % name,
             '  version: "%s"' % version, '  created: "2026-11-26T00:00:00Z"', "spec:", "  images:"]
    for img in images:
        if isinstance(img, str):
            img = {"ref": img}
        lines.append("    - ref: %s" % img["ref"])
        if img.get("platforms"):
            lines.append("      platforms: [%s]" % ", ".join(img["platforms"]))
        if img.get("source"):
            lines.append("      source: %s" % img["source"])
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """A plain source registry standing in for docker.io, seeded with every kind of image."""
    base = tmp_path_factory.mktemp("src")
    reg = start_registry(base / "reg", kind="plain", accesslog=True)
    lay = base / "layout"
    info = {}
    info["single"] = make_image(lay, "single", [{"etc/prometheus": b"stand-in\n"}])
    push(lay, "single", reg, "prom/prometheus:v3.5.0")
    info["index"] = make_index(lay, "multi", platforms=PLATS3, shared_base=RandomLayer.mb(1, seed=7))
    push(lay, "multi", reg, "grafana/loki:3.5.3")
    info["v2s2"] = make_image(lay, "dock", [{"bin/busybox": b"v2s2\n"}])
    info["v2s2_digest"] = push(lay, "dock", reg, "library/busybox:1.36", fmt="v2s2")
    info["pair"] = make_shared_pair(lay, tags=("app-a", "app-b"))
    push(lay, "app-a", reg, "team/app-a:1")
    push(lay, "app-b", reg, "team/app-b:1")
    yield reg, info
    reg.stop()


def build(ob, tmp_path, key, images, *extra, name="imgs", version="1.0.0", cache=None, env=None):
    m = tmp_path / ("m-%s-%s.yaml" % (name, version))
    m.parent.mkdir(parents=True, exist_ok=True)
    m.write_text(manifest_text(images, name, version))
    args = ["build", m, "--key", key, "--out", tmp_path / "out", "--cache", cache or tmp_path / "cache", "--json"]
    return ob(*args, *extra, env=env)


def mirror(reg):
    return ["--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host]


def meta_of(archive):
    entries = read_entries(Path(archive))
    return json.loads(entries[2].data), {e.path: e.data for e in entries}


def extract_layout(archive, dest: Path) -> Path:
    for e in read_entries(Path(archive)):
        if e.path.startswith("images/"):
            p = dest / e.path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(e.data)
    return dest / "images"


def test_single_manifest_index_and_v2s2_keep_their_digests(ob, key, tmp_path, src):
    reg, info = src
    r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0", "grafana/loki:3.5.3", "busybox:1.36"], *mirror(reg))
    assert r.rc == 0, r
    meta, files = meta_of(r.json["result"]["archive"])
    by_ref = {i["ref"]: i for i in meta["images"]}
    assert set(by_ref) == {"docker.io/prom/prometheus:v3.5.0", "docker.io/grafana/loki:3.5.3",
                           "docker.io/library/busybox:1.36"}
    assert by_ref["docker.io/prom/prometheus:v3.5.0"]["digest"] == info["single"].digest
    loki = by_ref["docker.io/grafana/loki:3.5.3"]
    assert loki["digest"] == info["index"].digest and loki["platforms"] == "all" and not loki["derived"]
    assert {m["platform"] for m in loki["manifests"]} == {"linux/amd64", "linux/arm64", "linux/arm/v7"}
    busy = by_ref["docker.io/library/busybox:1.36"]
    assert busy["digest"] == info["v2s2_digest"]
    assert busy["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert all(i["fetched_from"].startswith(reg.host + "/") for i in meta["images"])
    assert meta["mirrors"] == [{"source": "docker.io", "mirror": reg.host, "refs": sorted(by_ref)}]
    # the layout: byte-exact blobs, ref.name annotations, every blob once
    index = json.loads(files["images/index.json"])
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names == sorted(by_ref)
    for path, data in files.items():
        if path.startswith("images/blobs/sha256/"):
            import hashlib
            assert hashlib.sha256(data).hexdigest() == path.rsplit("/", 1)[1]


def test_skopeo_and_umoci_read_the_layout_and_copy_out_the_source_digests(ob, key, tmp_path, src, tmp_path_factory):
    reg, info = src
    r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0", "grafana/loki:3.5.3"], *mirror(reg))
    assert r.rc == 0, r
    layout = extract_layout(r.json["result"]["archive"], tmp_path / "x")
    stat = umoci_stat(layout, "docker.io/prom/prometheus:v3.5.0")
    assert stat  # umoci parsed the manifest and config of the single-platform tag
    dest = start_registry(tmp_path_factory.mktemp("dest"), kind="plain")
    try:
        for ref, expected in (("docker.io/prom/prometheus:v3.5.0", info["single"].digest),
                              ("docker.io/grafana/loki:3.5.3", info["index"].digest)):
            out = "copy/" + ref.split("/", 1)[1]
            from tests.helpers.images import run_skopeo
            run_skopeo(["copy", "--all", "oci:%s:%s" % (layout, ref), "docker://%s/%s" % (dest.host, out),
                        "--dest-tls-verify=false"])
            assert skopeo_inspect_digest(out, dest) == expected
    finally:
        dest.stop()


@pytest.mark.parametrize("platforms,expect", [
    (["linux/arm64"], "one"),
    (["linux/amd64", "linux/arm64"], "derived"),
    (["linux/amd64", "linux/arm64", "linux/arm/v7"], "whole"),
    (["linux/arm64/v8"], "one"),          # containerd's name for an arm64 entry without a variant (issue 12)
    (["linux/arm/v6"], "missing"),        # arm without a variant is v7
    (["linux/s390x"], "missing"),
])
def test_platform_selection_never_changes_a_digest_silently(ob, key, tmp_path, src, platforms, expect):
    reg, info = src
    r = build(ob, tmp_path, key, [{"ref": "grafana/loki:3.5.3", "platforms": platforms}], *mirror(reg))
    if expect == "missing":
        assert r.rc == 3 and "offers" in r.json["error"]["message"], r
        return
    assert r.rc == 0, r
    meta, files = meta_of(r.json["result"]["archive"])
    [image] = meta["images"]
    index = info["index"]
    assert image["index_digest"] == index.digest
    if expect == "one":
        assert image["digest"] == index.images["linux/arm64"].digest and not image["derived"]
        assert [m["digest"] for m in image["manifests"]] == [index.images["linux/arm64"].digest]
    elif expect == "derived":
        assert image["derived"] and image["digest"] != index.digest
        derived = json.loads(files["images/blobs/sha256/" + image["digest"].split(":")[1]])
        kept = [m["digest"] for m in derived["manifests"]]
        assert kept == [index.images["linux/amd64"].digest, index.images["linux/arm64"].digest]
        assert "images/blobs/sha256/" + index.images["linux/arm/v7"].digest.split(":")[1] not in files
    else:
        assert image["digest"] == index.digest and not image["derived"]


def test_a_pinned_index_with_a_subset_is_exit_3_and_with_all_platforms_is_fine(ob, key, tmp_path, src):
    reg, info = src
    pinned = "grafana/loki@%s" % info["index"].digest
    r = build(ob, tmp_path, key, [{"ref": pinned, "platforms": ["linux/amd64"]}], *mirror(reg))
    assert r.rc == 3 and "pins an index by digest" in r.json["error"]["message"]
    r = build(ob, tmp_path, key, [pinned], *mirror(reg))
    assert r.rc == 0, r
    image = meta_of(r.json["result"]["archive"])[0]["images"][0]
    assert image["ref"] == "docker.io/grafana/loki@" + info["index"].digest


def test_tag_and_digest_must_agree(ob, key, tmp_path, src):
    reg, info = src
    good = "prom/prometheus:v3.5.0@%s" % info["single"].digest
    assert build(ob, tmp_path, key, [good], *mirror(reg)).rc == 0
    bad = "prom/prometheus:v3.5.0@%s" % info["index"].digest
    r = build(ob, tmp_path, key, [bad], *mirror(reg))
    assert r.rc == 5 and "points at" in r.json["error"]["message"]


def test_schema1_is_exit_3(ob, key, tmp_path_factory, tmp_path):
    reg = start_registry(tmp_path_factory.mktemp("s1"), kind="plain", schema1=True)
    try:
        put_schema1(reg, "old/thing", "v1")
        r = build(ob, tmp_path, key, ["old/thing:v1"], *mirror(reg))
        assert r.rc == 3 and "schema 1" in r.json["error"]["message"]
    finally:
        reg.stop()


def test_shared_layers_are_stored_once(ob, key, tmp_path, src):
    reg, info = src
    a, b = info["pair"]
    r = build(ob, tmp_path, key, ["team/app-a:1", "team/app-b:1"], *mirror(reg))
    assert r.rc == 0, r
    _, files = meta_of(r.json["result"]["archive"])
    blobs = [p for p in files if p.startswith("images/blobs/")]
    expected = set(a.blob_digests) | set(b.blob_digests) | {a.digest, b.digest}
    assert sorted(blobs) == sorted("images/blobs/sha256/" + d.split(":")[1] for d in expected)
    assert a.layer_digests[0] == b.layer_digests[0]


def test_warm_rebuild_fetches_no_blob_and_gives_the_same_bytes(ob, key, tmp_path, src):
    reg, info = src
    cache = tmp_path / "shared-cache"
    refs = ["prom/prometheus:v3.5.0", "grafana/loki:3.5.3"]
    mark = reg.mark()
    cold = build(ob, tmp_path / "a", key, refs, *mirror(reg), cache=cache)
    assert cold.rc == 0, cold
    assert Registry.blob_fetches(reg.requests_since(mark)), "the cold build fetched no blob?"
    mark = reg.mark()
    warm = build(ob, tmp_path / "b", key, refs, *mirror(reg), cache=cache)
    assert warm.rc == 0, warm
    assert Registry.blob_fetches(reg.requests_since(mark)) == []
    assert Path(cold.json["result"]["archive"]).read_bytes() == Path(warm.json["result"]["archive"]).read_bytes()
    # adding one image fetches only that image's blobs
    mark = reg.mark()
    more = build(ob, tmp_path / "c", key, refs + ["team/app-a:1"], *mirror(reg), cache=cache)
    assert more.rc == 0, more
    fetched = {r.path.rsplit("/", 1)[1] for r in Registry.blob_fetches(reg.requests_since(mark))}
    a = info["pair"][0]
    assert fetched <= set(a.blob_digests) and fetched


def test_a_corrupt_cache_entry_is_caught_and_dropped(ob, key, tmp_path, src):
    reg, info = src
    cache = tmp_path / "cache"
    assert build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], *mirror(reg), cache=cache).rc == 0
    layer = cache / "blobs" / "sha256" / info["single"].layer_digests[0].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[10] ^= 0xFF
    layer.write_bytes(bytes(data))
    r = build(ob, tmp_path / "2", key, ["prom/prometheus:v3.5.0"], *mirror(reg), cache=cache)
    assert r.rc == 5 and "corrupt" in r.json["error"]["message"]
    assert not layer.exists()
    assert build(ob, tmp_path / "3", key, ["prom/prometheus:v3.5.0"], *mirror(reg), cache=cache).rc == 0


@contextlib.contextmanager
def registry_holding_one_image(folder: Path, kind: str, lay: Path,
                               content: bytes) -> Iterator[Tuple[Registry, ImageInfo]]:
    """A registry of ``kind`` (tls, basic, token, ...) serving one small image as prom/prometheus:v3.5.0; stopped
    on the way out."""
    reg = start_registry(folder, kind=kind)
    try:
        img = make_image(lay, "t", [{"x": content}])
        push(lay, "t", reg, "prom/prometheus:v3.5.0")
        yield reg, img
    finally:
        reg.stop()


def test_tls_registry_needs_its_ca(ob, key, tmp_path, tmp_path_factory, src):
    with registry_holding_one_image(tmp_path_factory.mktemp("tls"), "tls", tmp_path / "lay", b"tls\n") as (reg, _):
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], "--mirror", "docker.io=%s" % reg.host)
        assert r.rc == 7
        assert "certificate" in r.json["error"]["message"] and "--registry-ca" in r.json["error"]["message"]
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], "--mirror", "docker.io=%s" % reg.host,
                  "--registry-ca", reg.ca_file)
        assert r.rc == 0, r
        r = build(ob, tmp_path / "i", key, ["prom/prometheus:v3.5.0"], *mirror(reg))
        assert r.rc == 0, r  # named insecure: TLS without verification


def test_basic_auth_credentials_from_docker_config_and_scoped_env(ob, key, tmp_path, tmp_path_factory):
    with registry_holding_one_image(tmp_path_factory.mktemp("basic"), "basic", tmp_path / "lay",
                                    b"basic\n") as (reg, _):
        args = ["--mirror", "docker.io=%s" % reg.host, "--registry-ca", reg.ca_file]
        clean = {"DOCKER_CONFIG": str(tmp_path / "empty"), "BUNDLE_REGISTRY_USER": "", "BUNDLE_REGISTRY_PASSWORD": ""}
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], *args, env=clean)
        assert r.rc == 7 and "credentials" in r.json["error"]["message"]
        wrong = reg.docker_config(tmp_path / "wrong", password="not-the-password-xyz")
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], *args, env={"DOCKER_CONFIG": str(wrong.parent)})
        assert r.rc == 7 and "not-the-password-xyz" not in r.out + r.err
        good = reg.docker_config(tmp_path / "good")
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], *args, env={"DOCKER_CONFIG": str(good.parent)})
        assert r.rc == 0, r
        env = dict(clean, BUNDLE_REGISTRY_USER=reg.username, BUNDLE_REGISTRY_PASSWORD=reg.password)
        assert build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], *args, env=env).rc == 7  # host not listed
        env["BUNDLE_REGISTRY_HOSTS"] = reg.host
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], *args, env=env)
        assert r.rc == 0, r
        archive = Path(r.json["result"]["archive"])
        assert reg.password.encode() not in archive.read_bytes()
        assert reg.password not in r.out + r.err


def test_token_auth_anonymous_pull(ob, key, tmp_path, tmp_path_factory):
    with registry_holding_one_image(tmp_path_factory.mktemp("token"), "token", tmp_path / "lay",
                                    b"token\n") as (reg, _):
        before = len(reg.token_requests)
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], "--mirror", "docker.io=%s" % reg.host,
                  "--registry-ca", reg.ca_file, env={"DOCKER_CONFIG": str(tmp_path / "none")})
        assert r.rc == 0, r
        asked = reg.token_requests[before:]
        assert asked and all(user is None and ":pull" in scope for user, scope in asked)


def test_a_cut_connection_resumes_and_5xx_and_429_are_retried(ob, key, tmp_path, src):
    reg, info = src
    with FaultProxy(reg) as proxy:
        big = info["index"].images["linux/amd64"].layer_digests[0]  # the 1 MiB shared base
        proxy.add(cut_after(300_000), method="GET", path=r"/blobs/%s" % big, nth=1)
        proxy.add(status(500), method="GET", path=r"/manifests/", nth=1)
        proxy.add(status(429, retry_after=1), method="GET", path=r"/blobs/", nth=2)
        r = build(ob, tmp_path, key, ["grafana/loki:3.5.3"], "--mirror", "docker.io=%s" % proxy.host,
                  "--insecure-registry", proxy.host)
        assert r.rc == 0, r
        ranges = [rec.header("Range") for rec in proxy.records if big.split(":")[1] in rec.path and rec.header("Range")]
        assert ranges and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
    meta, _ = meta_of(r.json["result"]["archive"])
    assert meta["images"][0]["digest"] == info["index"].digest


def test_bytes_that_do_not_match_their_digest_are_exit_5(ob, key, tmp_path, src):
    reg, info = src
    with FaultProxy(reg) as proxy:
        proxy.add(corrupt(5), method="GET", path=r"/blobs/%s" % info["single"].layer_digests[0])
        r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], "--mirror", "docker.io=%s" % proxy.host,
                  "--insecure-registry", proxy.host)
    assert r.rc == 5 and "other bytes" in r.json["error"]["message"]
    assert not list((tmp_path / "out").glob("*.zst")) if (tmp_path / "out").exists() else True


def test_credentials_never_follow_a_redirect_to_another_host(ob, key, tmp_path, tmp_path_factory):
    with registry_holding_one_image(tmp_path_factory.mktemp("basicplain"), "basic-plain", tmp_path / "lay",
                                    b"redirect\n") as (reg, img):
        layer = img.layer_digests[0]
        with FaultProxy(reg) as front, FaultProxy(reg) as elsewhere:
            front.add(redirect("%s/v2/prom/prometheus/blobs/%s" % (elsewhere.url, layer)), method="GET",
                      path=r"/blobs/%s" % layer)
            conf = reg.docker_config(tmp_path / "dc")
            env = {"DOCKER_CONFIG": str(conf.parent)}
            # the credentials are stored for the front host (the one contacted)
            doc = json.loads((Path(env["DOCKER_CONFIG"]) / "config.json").read_text())
            doc["auths"] = {front.host: list(doc["auths"].values())[0]}
            (Path(env["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps(doc))
            r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0"], "--mirror", "docker.io=%s" % front.host,
                      "--insecure-registry", front.host, "--insecure-registry", elsewhere.host, env=env)
            assert any(rec.authorization for rec in front.records), "the front host never got credentials"
            assert [rec for rec in elsewhere.records if rec.authorization] == []
            # the other host answers 401 to a request without credentials: exit 7, and no secret leaks
            assert r.rc == 7, r
            assert reg.password not in r.out + r.err


def test_docker_daemon_source(ob, key, tmp_path):
    from tests.helpers.dockerd import start_dockerd
    from tests.helpers.images import make_docker_archive

    with start_dockerd() as d:
        archive = tmp_path / "tool.tar"
        image_id = make_docker_archive(archive, ["registry.example/team/tool:dev"], [{"bin/tool": b"local only\n"}])
        with open(archive, "rb") as fh:
            d.client.images.load(fh.read())
        r = build(ob, tmp_path, key, [{"ref": "registry.example/team/tool:dev", "source": "docker-daemon"}],
                  env=d.env)
        assert r.rc == 0, r
        meta, files = meta_of(r.json["result"]["archive"])
        [image] = meta["images"]
        assert image["source"] == "docker-daemon" and image["fetched_from"] == "docker-daemon"
        manifest = json.loads(files["images/blobs/sha256/" + image["digest"].split(":")[1]])
        assert manifest["config"]["digest"] == image_id
        missing = build(ob, tmp_path, key, [{"ref": "registry.example/none:1", "source": "docker-daemon"}], env=d.env)
        assert missing.rc == 3 and "not in the local Docker engine" in missing.json["error"]["message"]


def test_inspect_lists_every_image_with_its_digest(ob, key, tmp_path, src):
    reg, info = src
    r = build(ob, tmp_path, key, ["prom/prometheus:v3.5.0", {"ref": "grafana/loki:3.5.3",
                                                               "platforms": ["linux/amd64", "linux/arm64"]}],
              *mirror(reg))
    assert r.rc == 0, r
    out = ob("inspect", r.json["result"]["archive"]).out
    assert "image docker.io/prom/prometheus:v3.5.0\n  %s  OCI manifest (all platforms;" % info["single"].digest in out
    assert "image docker.io/grafana/loki:3.5.3\n" in out
    assert "OCI index (linux/amd64, linux/arm64, derived index;" in out
