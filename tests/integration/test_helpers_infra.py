"""The test infrastructure itself, against the real components: registries of every kind, skopeo,
umoci, the fault proxy and a private dockerd. If one of these fails, image-feature tests can't be trusted.
"""

import gzip
import hashlib
import json
import os
import subprocess
import time

import pytest
import requests
import urllib3
from tests.helpers.dockerd import start_dockerd
from tests.helpers.faults import FaultProxy, corrupt, cut_after, delay, drop, redirect, status
from tests.helpers.images import (MT_DOCKER_CONFIG, MT_DOCKER_LAYER_GZIP, MT_DOCKER_LIST, MT_DOCKER_MANIFEST,
                            MT_OCI_INDEX, MT_OCI_MANIFEST, MT_SCHEMA1_SIGNED, Layout, RandomLayer, ToolError,
                            make_big_image, make_docker_archive, make_image, make_index, make_shared_pair, push,
                            push_docker_manifest_list, put_schema1, run_skopeo, sha256_digest, skopeo_copy_out,
                            skopeo_inspect_raw, umoci_stat)
from tests.helpers.ca import TestCA
from tests.helpers.client import RegistryError
from tests.helpers.registry import KINDS, Registry, start_registry


def _session():
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE / proxies from the environment must not interfere
    return s


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """One OCI layout with: v1 (two small layers), multi (linux/amd64 + linux/arm64/v8 index), app-a/app-b."""
    d = tmp_path_factory.mktemp("layout") / "oci"
    images = {
        "v1": make_image(d, "v1", [{"etc/hello": b"hello\n"}, {"usr/bin/tool": (b"#!/bin/sh\necho tool\n", 0o755)}]),
        "multi": make_index(d, "multi", platforms=[("linux", "amd64"), ("linux", "arm64", "v8")],
                            shared_base=RandomLayer.mb(1, seed=7)),
    }
    images["app-a"], images["app-b"] = make_shared_pair(d, base=RandomLayer.mb(2, seed=8))
    return d, images


# ---------------------------------------------------------------------------------------------- images

def test_make_image_is_a_correct_deterministic_layout(layout, tmp_path):
    d, images = layout
    img = images["v1"]
    lay = Layout(d)
    manifest = json.loads(lay.read_blob(img.manifest_digest))
    config = json.loads(lay.read_blob(img.config_digest))
    assert manifest["mediaType"] == MT_OCI_MANIFEST and manifest["config"]["digest"] == img.config_digest
    # diff_ids are the digests of the uncompressed layer tars
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        blob = lay.read_blob(layer["digest"])
        assert sha256_digest(blob) == layer["digest"] and len(blob) == layer["size"]
        assert sha256_digest(gzip.decompress(blob)) == diff_id
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert len(config["history"]) == 2
    assert lay.tags()["v1"]["digest"] == img.manifest_digest
    # same inputs, another folder: same digests
    again = make_image(tmp_path / "again", "v1", [{"etc/hello": b"hello\n"},
                                                   {"usr/bin/tool": (b"#!/bin/sh\necho tool\n", 0o755)}])
    assert again.manifest_digest == img.manifest_digest
    # umoci reads it; and fails loudly on a tag that is not there
    stat = umoci_stat(d, "v1")
    assert [h["layer"]["digest"] for h in stat["history"]] == img.layer_digests
    with pytest.raises(ToolError):
        umoci_stat(d, "no-such-tag")


def test_index_and_shared_base(layout):
    d, images = layout
    idx = images["multi"]
    index = json.loads(Layout(d).read_blob(idx.digest))
    assert index["mediaType"] == MT_OCI_INDEX
    assert [m["platform"] for m in index["manifests"]] == [
        {"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"}]
    amd, arm = idx.images["linux/amd64"], idx.images["linux/arm64/v8"]
    assert amd.layer_digests[0] == arm.layer_digests[0] and amd.layer_digests[1] != arm.layer_digests[1]
    a, b = images["app-a"], images["app-b"]
    assert a.layer_digests[0] == b.layer_digests[0] and a.manifest_digest != b.manifest_digest


# ---------------------------------------------------------------------------------------------- registries

@pytest.mark.parametrize("kind", KINDS)
def test_every_registry_kind_takes_a_skopeo_push_and_serves_it(kind, layout, tmp_path):
    d, images = layout
    img = images["v1"]
    with start_registry(tmp_path, kind=kind) as reg:
        assert reg.url.startswith(("https://" if kind in ("tls", "basic", "token") else "http://") + "127.0.0.1:")
        assert (reg.ca_file is not None) == (reg.scheme == "https") == (reg.cert_dir is not None)
        assert (reg.username is not None) == (kind not in ("plain", "tls"))
        assert push(d, "v1", reg) == img.manifest_digest
        assert sha256_digest(skopeo_inspect_raw("test/image:v1", reg)) == img.manifest_digest
        raw, media_type, digest = reg.client().manifest("test/image", "v1")
        assert (digest, media_type) == (img.manifest_digest, MT_OCI_MANIFEST)
        assert reg.client().blob("test/image", img.layer_digests[0]) == Layout(d).read_blob(img.layer_digests[0])
        pid = reg.pid
    assert reg.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_token_registry_policy(layout, tmp_path):
    d, images = layout
    with start_registry(tmp_path, kind="token", accesslog=True) as reg:
        assert push(d, "v1", reg) == images["v1"].manifest_digest                      # the user may push
        assert ("tester", "repository:test/image:pull,push") in reg.token_requests
        n = len(reg.token_requests)
        # anonymous pull works
        assert sha256_digest(skopeo_inspect_raw("test/image:v1", reg, creds=False)) == images["v1"].manifest_digest
        assert any(t.user is None for t in reg.token_requests[n:])
        # anonymous push is refused (only pull is granted)
        with pytest.raises(ToolError, match="denied|unauthorized"):
            push(d, "v1", reg, dest_ref="test/anon:v1", creds=False)
        anon = [g for g in reg.token_server.granted if g["user"] is None]
        assert anon and all(a["actions"] == ["pull"] for g in anon for a in g["access"])
        # the token endpoint itself: wrong password 401, right one 200 with token/access_token/expires_in
        s = _session()
        realm = reg.token_server.realm
        q = {"service": reg.service, "scope": "repository:test/image:pull,push"}
        assert s.get(realm, params=q, auth=("tester", "wrong"), verify=reg.verify()).status_code == 401
        body = s.get(realm, params=q, auth=(reg.username, reg.password), verify=reg.verify()).json()
        assert body["token"] == body["access_token"] and body["expires_in"] == 300
        header = json.loads(_b64d(body["token"].split(".")[0]))
        claims = json.loads(_b64d(body["token"].split(".")[1]))
        assert header["alg"] == "RS256" and header["x5c"]
        assert claims["access"] == [{"type": "repository", "name": "test/image", "actions": ["pull", "push"]}]
        assert {"iss", "aud", "exp", "nbf", "iat", "jti", "sub"} <= set(claims)
        # the OAuth2 form of the same request
        form = dict(q, grant_type="password", username=reg.username, password=reg.password)
        assert s.post(realm, data=form, verify=reg.verify()).json()["expires_in"] == 300
        assert s.post(realm, data=dict(form, password="wrong"), verify=reg.verify()).status_code == 401
        # the registry accepts that token; the access log saw the 401 challenge first
        r = s.get(reg.url + "/v2/test/image/tags/list", headers={"Authorization": "Bearer " + body["token"]},
                  verify=reg.verify())
        assert r.status_code == 200 and r.json()["tags"] == ["v1"]
        assert ("GET", "/v2/", 401) in reg.requests()


def _b64d(s: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_token_lifetime_knobs(tmp_path):
    with start_registry(tmp_path, kind="token-plain", token_ttl=2) as reg:
        s = _session()
        q = {"service": reg.service, "scope": "repository:x/y:pull"}
        body = s.get(reg.token_server.realm, params=q).json()
        assert body["expires_in"] == 2
        ok = s.get(reg.url + "/v2/x/y/tags/list", headers={"Authorization": "Bearer " + body["token"]})
        assert ok.status_code == 404  # authorised (the repository just doesn't exist)
        # distribution allows 60 s of leeway past exp: exp_skew makes tokens the registry refuses
        reg.token_server.exp_skew = -120
        stale = s.get(reg.token_server.realm, params=q).json()["token"]
        assert s.get(reg.url + "/v2/x/y/tags/list", headers={"Authorization": "Bearer " + stale}).status_code == 401


def test_basic_auth_refuses_a_wrong_password(layout, tmp_path):
    d, _ = layout
    for kind in ("basic", "basic-plain"):
        with start_registry(tmp_path, kind=kind) as reg:
            s = _session()
            assert s.get(reg.url + "/v2/", auth=("tester", "wrong"), verify=reg.verify()).status_code == 401
            assert s.get(reg.url + "/v2/", auth=(reg.username, reg.password), verify=reg.verify()).status_code == 200
            with pytest.raises(ToolError, match="unauthorized|authentication required"):
                push(d, "v1", reg, creds="tester:wrong")
            with pytest.raises(RegistryError) as e:
                reg.client("tester", "wrong").tags("test/image")
            assert e.value.status == 401
            # a DOCKER_CONFIG-style config.json with the credentials works as skopeo's --authfile
            push(d, "v1", reg)
            cfg = reg.docker_config(tmp_path / ("docker-" + kind))
            tls = ["--tls-verify=true", "--cert-dir", str(reg.cert_dir)] if reg.cert_dir else ["--tls-verify=false"]
            run_skopeo(["inspect", "--raw", "--authfile", str(cfg)] + tls + ["docker://%s/test/image:v1" % reg.host])


def test_tls_registry_needs_the_test_ca(layout, tmp_path):
    d, images = layout
    with start_registry(tmp_path, kind="tls") as reg:
        assert sorted(os.listdir(reg.cert_dir)) == ["ca.crt"]
        with pytest.raises(ToolError, match="x509|certificate"):
            run_skopeo(["inspect", "--raw", "--tls-verify=true", "docker://%s/test/image:v1" % reg.host])
        assert push(d, "v1", reg) == images["v1"].manifest_digest
        assert _session().get(reg.url + "/v2/", verify=str(reg.ca_file)).status_code == 200
        other = tmp_path / "other-ca.crt"
        other.write_bytes(TestCA("another CA").cert_pem)
        with pytest.raises(requests.exceptions.SSLError):
            _session().get(reg.url + "/v2/", verify=str(other))


def test_multiarch_index_round_trip(layout, tmp_path):
    d, images = layout
    idx = images["multi"]
    with start_registry(tmp_path, kind="plain") as reg:
        assert push(d, "multi", reg, dest_ref="test/multi") == idx.digest
        raw, media_type, digest = reg.client().manifest("test/multi", "multi")
        assert (digest, media_type) == (idx.digest, MT_OCI_INDEX)
        out = tmp_path / "out"
        assert skopeo_copy_out("test/multi:multi", out, "back", registry=reg) == idx.digest
        lay = Layout(out)
        assert lay.tags()["back"]["digest"] == idx.digest
        for img in idx.images.values():
            assert lay.blob_path(img.manifest_digest).exists()
            assert all(lay.blob_path(b).exists() for b in img.blob_digests)
        # a per-platform manifest by digest, as a client picking one platform would fetch it
        arm = idx.images["linux/arm64/v8"]
        assert reg.client().manifest("test/multi", arm.manifest_digest)[2] == arm.manifest_digest


def test_v2s2_push_serves_docker_media_types(layout, tmp_path):
    d, images = layout
    with start_registry(tmp_path, kind="plain") as reg:
        api = reg.client()
        digest = push(d, "v1", reg, dest_ref="test/docker:v1", fmt="v2s2")
        raw, media_type, got = api.manifest("test/docker", "v1")
        doc = json.loads(raw)
        assert media_type == MT_DOCKER_MANIFEST and got == digest != images["v1"].manifest_digest
        assert doc["config"]["mediaType"] == MT_DOCKER_CONFIG
        assert {layer["mediaType"] for layer in doc["layers"]} == {MT_DOCKER_LAYER_GZIP}
        # --all --format v2s2 on an OCI index gives a Docker manifest list of v2s2 manifests
        digest = push(d, "multi", reg, dest_ref="test/dockerlist:multi", fmt="v2s2")
        raw, media_type, got = api.manifest("test/dockerlist", "multi")
        assert media_type == MT_DOCKER_LIST and got == digest
        assert {m["mediaType"] for m in json.loads(raw)["manifests"]} == {MT_DOCKER_MANIFEST}
        # hand-made Docker manifest list, uploaded byte-exact
        info = push_docker_manifest_list(tmp_path / "dl", "list", reg, repo="test/handlist")
        raw, media_type, got = api.manifest("test/handlist", "list")
        assert (media_type, got, raw) == (MT_DOCKER_LIST, info.digest, info.index)
        # a registry client that sends no Accept header gets schema 1 back for a v2s2 tag (distribution 2.8)
        r = api.request("GET", "/v2/test/docker/manifests/v1", headers={"Accept": ""})
        assert r.headers["Content-Type"] == MT_SCHEMA1_SIGNED


def test_schema1_manifests(layout, tmp_path):
    d, _ = layout
    with start_registry(tmp_path, kind="plain", schema1=True) as reg:
        digest = put_schema1(reg, "test/old", "s1")
        raw, media_type, _ = reg.client().manifest("test/old", "s1")
        assert media_type == MT_SCHEMA1_SIGNED and json.loads(raw)["schemaVersion"] == 1
        assert digest.startswith("sha256:")
        push(d, "v1", reg, dest_ref="test/old:skopeo", fmt="v2s1")
        assert reg.client().manifest("test/old", "skopeo")[1] == MT_SCHEMA1_SIGNED
    with start_registry(tmp_path, kind="plain") as reg:   # the default refuses schema-1 PUTs (HTTP 500)
        with pytest.raises(RegistryError):
            put_schema1(reg, "test/old", "s1")


def test_access_log_and_blob_cache_isolation(layout, tmp_path):
    d, images = layout
    with start_registry(tmp_path, kind="plain", accesslog=True) as reg:
        assert reg.requests() == []                     # start-up probes are left out
        push(d, "v1", reg)
        mark = reg.mark()
        push(d, "v1", reg)                              # second push: only the manifest is written again
        assert [(r.method, r.status) for r in Registry.writes(reg.requests_since(mark))] == [("PUT", 201)]
        out = tmp_path / "out"
        skopeo_copy_out("test/image:v1", out, "v1", registry=reg)
        mark = reg.mark()
        skopeo_copy_out("test/image:v1", out, "v1", registry=reg)  # warm: every layer already in the layout
        fetched = [r.path.rsplit("/", 1)[1] for r in Registry.blob_fetches(reg.requests_since(mark))]
        assert fetched == [images["v1"].config_digest]   # skopeo always re-reads the config, never a layer
        # a test-owned blob cache makes skopeo mount across repositories; "fresh" (default) never does
        cache = tmp_path / "skopeo-cache"
        push(d, "app-a", reg, dest_ref="test/a", blob_cache=cache)
        mark = reg.mark()
        push(d, "app-b", reg, dest_ref="test/b", blob_cache=cache)
        assert any("mount=" in r.path for r in reg.requests_since(mark))
        mark = reg.mark()
        push(d, "app-b", reg, dest_ref="test/c")
        assert not any("mount=" in r.path for r in reg.requests_since(mark))


def test_big_image_streams(tmp_path):
    t = time.monotonic()
    big = make_big_image(tmp_path / "oci", "big", size_mb=100)
    made = time.monotonic() - t
    layer = big.layers[0]
    assert layer.size > 100 << 20
    h = hashlib.sha256()
    with open(Layout(tmp_path / "oci").blob_path(layer.digest), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    assert "sha256:" + h.hexdigest() == layer.digest
    assert made < 10, made
    with start_registry(tmp_path, kind="plain") as reg:
        assert push(tmp_path / "oci", "big", reg) == big.manifest_digest


# ---------------------------------------------------------------------------------------------- faults

@pytest.fixture(scope="module")
def proxied(layout, tmp_path_factory):
    """A plain registry holding v1 plus a 3 MiB layer image, and a FaultProxy in front of it."""
    d, images = layout
    tmp = tmp_path_factory.mktemp("proxied")
    blobimg = make_image(tmp / "oci", "blob", [RandomLayer.mb(3, seed=11)])
    with start_registry(tmp, kind="plain") as reg:
        push(d, "v1", reg)
        push(tmp / "oci", "blob", reg, dest_ref="test/blob")
        with FaultProxy(reg) as proxy:
            yield reg, proxy, blobimg, Layout(tmp / "oci").read_blob(blobimg.layer_digests[0])


@pytest.fixture
def proxy(proxied):
    reg, proxy, img, data = proxied
    proxy.clear(records=True)
    return proxy


def test_cut_after_then_range_resume(proxied, proxy):
    _, _, img, data = proxied
    url = proxy.url + "/v2/test/blob/blobs/" + img.layer_digests[0]
    proxy.add(cut_after(300_000), method="GET", path=r"/blobs/sha256:", nth=1)
    s = _session()
    got = bytearray()
    with pytest.raises((requests.exceptions.RequestException, urllib3.exceptions.HTTPError)):
        with s.get(url, stream=True) as r:
            assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
            for chunk in r.raw.stream(32768, decode_content=False):
                got += chunk
    assert 0 < len(got) <= 300_000
    r = s.get(url, headers={"Range": "bytes=%d-" % len(got)})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (len(got), len(data) - 1, len(data))
    assert bytes(got) + r.content == data
    assert [rec.status for rec in proxy.records] == [200, 206]
    assert proxy.records[0].action == "cut_after(300000)" and proxy.records[0].body_sent == 300_000
    assert proxy.records[1].header("Range") == "bytes=%d-" % len(got)


def test_status_faults_and_recorded_authorization(proxied, proxy):
    _, _, img, data = proxied
    proxy.add(status(429, retry_after=1), path=r"/manifests/", times=1)
    proxy.add(status(503), path=r"/tags/list", nth=[1, 2])
    s = _session()
    murl = proxy.url + "/v2/test/image/manifests/v1"
    r = s.get(murl, headers={"Accept": MT_OCI_MANIFEST, "Authorization": "Bearer abc"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    r = s.get(murl, headers={"Accept": MT_OCI_MANIFEST})
    assert r.status_code == 200
    assert [s.get(proxy.url + "/v2/test/image/tags/list").status_code for _ in range(3)] == [503, 503, 200]
    assert [rec.authorization for rec in proxy.records[:2]] == ["Bearer abc", None]
    # corrupt flips one byte, same length
    proxy.add(corrupt(5), path=r"/blobs/", times=1)
    bad = s.get(proxy.url + "/v2/test/blob/blobs/" + img.layer_digests[0]).content
    assert len(bad) == len(data) and bad != data and bad[5] == data[5] ^ 0xFF
    # delay + drop
    proxy.add(delay(0.3), path=r"^/v2/$", times=1)
    t = time.monotonic()
    assert s.get(proxy.url + "/v2/").status_code == 200 and time.monotonic() - t >= 0.3
    proxy.add(drop(), path=r"^/v2/$", times=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        s.get(proxy.url + "/v2/")


def test_redirect_to_a_recording_file_server(proxied, proxy):
    _, _, img, data = proxied
    path = "/v2/test/blob/blobs/" + img.layer_digests[0]
    with FaultProxy(None, static={path: data}) as target:
        proxy.add(redirect(target.url), path=r"/blobs/", times=1)
        s = _session()
        r = s.get(proxy.url + path, headers={"Authorization": "Basic dGVzdGVyOnMzY3JldA=="}, allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"] == target.url + path
        # follow by hand without the credentials, as a careful client does; Range works there too
        r = s.get(r.headers["Location"], headers={"Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20]
        assert proxy.records[0].authorization == "Basic dGVzdGVyOnMzY3JldA=="
        assert [(rec.path, rec.authorization) for rec in target.records] == [(path, None)]


def test_skopeo_push_and_pull_through_the_proxy(proxied, proxy, layout, tmp_path):
    d, images = layout
    proxy.add(status(500), method="PUT", path=r"/manifests/", nth=1)   # skopeo does not retry a 500

    class ViaProxy:   # the attributes helpers.images needs from a registry
        host, scheme, creds, cert_dir = proxy.host, "http", None, None

    with pytest.raises(ToolError, match="500"):
        push(d, "app-a", ViaProxy, dest_ref="test/via:a")
    assert push(d, "app-a", ViaProxy, dest_ref="test/via:a") == images["app-a"].manifest_digest
    uploads = proxy.requests("PATCH") + proxy.requests("PUT", r"/blobs/uploads/")
    assert uploads and all(rec.status in (201, 202) for rec in uploads)
    out = tmp_path / "out"
    assert skopeo_copy_out("test/via:a", out, "a", registry=ViaProxy) == images["app-a"].manifest_digest


# ---------------------------------------------------------------------------------------------- dockerd

def test_private_dockerd_loads_a_hand_made_archive(tmp_path):
    archive = tmp_path / "tiny.tar"
    image_id = make_docker_archive(archive, ["test/tiny:1"], [{"etc/hello": b"hi\n"}])
    with start_dockerd() as dk:
        assert len(dk.host) < 108 and dk.pid
        loaded = dk.client.images.load(archive.read_bytes())
        assert [(i.id, i.tags) for i in loaded] == [(image_id, ["test/tiny:1"])]
        out = subprocess.run(["docker", "-H", dk.host, "image", "inspect", "test/tiny:1"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and json.loads(out.stdout)[0]["Id"] == image_id
        pid, folder = dk.pid, dk.dir
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not folder.exists()
