"""Registry faults on build and push: slow answers, oversized manifests, dropped uploads — complete correctly
or stop with exit 7/5, and never record a wrong digest."""

import json
import time
from pathlib import Path

import pytest
from conftest import write_manifest
from tests.helpers.craft import read_entries
from tests.helpers.faults import FaultProxy, delay, drop
from tests.helpers.images import make_image, push, skopeo_inspect_digest
from tests.helpers.registry import start_registry


@pytest.fixture
def source(tmp_path):
    reg = start_registry(tmp_path / "src", kind="plain")
    img = make_image(tmp_path / "lay", "a", [{"bin/app": b"app\n" * 1000}])
    push(tmp_path / "lay", "a", reg, "team/app:1.0")
    yield reg, img
    reg.stop()


def manifest(tmp_path):
    return write_manifest(tmp_path / "m", tenants=False, extra="  images:\n    - ref: docker.io/team/app:1.0\n")


def test_slow_answers_are_waited_for(ob, key, tmp_path, source):
    reg, img = source
    with FaultProxy(reg) as proxy:
        proxy.add(delay(1.5), method="GET", path=r"/blobs/", nth=1)
        started = time.time()
        r = ob("build", manifest(tmp_path), "--key", key, "--out", tmp_path / "o", "--json", "--cache", tmp_path / "c",
               "--mirror", "docker.io=%s" % proxy.host, "--insecure-registry", proxy.host)
        assert r.rc == 0, r
        assert time.time() - started >= 1.5
    meta = json.loads(read_entries(Path(r.json["result"]["archive"]))[2].data)
    assert meta["images"][0]["digest"] == img.digest


def test_an_oversized_manifest_is_exit_7_and_nothing_is_written(ob, key, tmp_path):
    huge = b'{"schemaVersion": 2, "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    with FaultProxy(None, static={"/v2/": b"{}", "/v2/team/app/manifests/1.0": huge}) as fake:
        r = ob("build", manifest(tmp_path), "--key", key, "--out", tmp_path / "o", "--json", "--cache", tmp_path / "c",
               "--mirror", "docker.io=%s" % fake.host, "--insecure-registry", fake.host)
    assert r.rc == 7 and "more than a manifest may be" in r.json["error"]["message"]
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_a_dropped_upload_is_retried_and_the_site_gets_the_right_digests(ob, key, pub, tmp_path, source):
    reg, img = source
    b = ob("build", manifest(tmp_path), "--key", key, "--out", tmp_path / "o", "--json", "--cache", tmp_path / "c",
           "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host)
    assert b.rc == 0, b
    site = start_registry(tmp_path / "site", kind="plain")
    try:
        with FaultProxy(site) as proxy:
            proxy.add(drop(), method="PUT", path=r"/blobs/uploads/", nth=1)
            proxy.add(drop(), method="HEAD", path=r"/manifests/", nth=2)
            r = ob("install", b.json["result"]["archive"], "--kit", tmp_path / "kit", "--trust", pub,
                   "--registry", proxy.host, "--insecure-registry", proxy.host, "--json")
            assert r.rc == 0, r
            assert len(proxy.requests("PUT")) >= 2
        assert skopeo_inspect_digest("docker.io/team/app:1.0", site) == img.digest
    finally:
        site.stop()


def test_a_site_that_keeps_failing_is_exit_7_and_current_is_untouched(ob, key, pub, tmp_path, source):
    reg, _ = source
    b = ob("build", manifest(tmp_path), "--key", key, "--out", tmp_path / "o", "--json", "--cache", tmp_path / "c",
           "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host)
    site = start_registry(tmp_path / "site", kind="plain")
    try:
        with FaultProxy(site) as proxy:
            proxy.add(drop(), method="PUT", path=r"/blobs/uploads/")  # every time
            r = ob("install", b.json["result"]["archive"], "--kit", tmp_path / "kit", "--trust", pub,
                   "--registry", proxy.host, "--insecure-registry", proxy.host)
        assert r.rc == 7 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
        assert not (tmp_path / "kit" / "current" / "demo").exists()
    finally:
        site.stop()
