"""Blob-level deltas: inventory, build --delta-from, install onto the kit that produced the inventory."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import write_manifest
from tests.helpers.images import RandomLayer, make_image, push
from tests.helpers.registry import start_registry


def build(ob, key, m, out, *extra):
    r = ob("build", m, "--key", key, "--out", out, "--json", *extra)
    assert r.rc == 0, r
    return Path(r.json["result"]["archive"]), r.json["result"]


@pytest.fixture
def versions(ob, key, tmp_path):
    """1.0.0 with a big file; 1.1.0 with the big file unchanged and a small file changed."""
    big = os.urandom(3_000_000)
    v1 = write_manifest(tmp_path / "v1", version="1.0.0", files={"cfg/big.bin": big, "cfg/app.yaml": b"a: 1\n"})
    v2 = write_manifest(tmp_path / "v2", version="1.1.0", files={"cfg/big.bin": big, "cfg/app.yaml": b"a: 2\n"})
    return v1, v2


@pytest.fixture
def delta_onto_v1(ob, key, pub, tmp_path, versions):
    """(a kit with 1.0.0 installed, the 1.1.0 delta built against the 1.0.0 archive)."""
    v1, v2 = versions
    full1, _ = build(ob, key, v1, tmp_path / "out")
    kit = tmp_path / "kit"
    assert ob("install", full1, "--kit", kit, "--trust", pub).rc == 0
    delta, _ = build(ob, key, v2, tmp_path / "out", "--delta-from", full1)
    return kit, delta


def test_delta_against_an_inventory_installs_onto_its_kit(ob, key, pub, tmp_path, versions):
    v1, v2 = versions
    full1, _ = build(ob, key, v1, tmp_path / "out")
    kit = tmp_path / "kit"
    assert ob("install", full1, "--kit", kit, "--trust", pub).rc == 0
    inv = ob("inventory", "--kit", kit, "--json")
    assert inv.rc == 0
    doc = inv.json["result"]
    assert set(doc) == {"kind", "format", "bundles", "sha256"}
    text = json.dumps(doc)
    assert "/" not in text.replace("offline-bundle-inventory", "")  # no paths, hosts or registries
    (tmp_path / "inv.json").write_text(json.dumps(doc))
    delta, res = build(ob, key, v2, tmp_path / "out", "--delta-from", tmp_path / "inv.json")
    assert delta.name == "demo-1.1.0.delta.bundle.tar.zst"
    assert res["delta"]["omitted_bytes"] >= 3_000_000 and delta.stat().st_size < 100_000
    _, full2 = build(ob, key, v2, tmp_path / "full")
    assert res["bundle_id"] == full2["bundle_id"]  # a version and its delta share one identity
    r = ob("install", delta, "--kit", kit, "--trust", pub, "--json")
    assert r.rc == 0, r
    tree = kit / "current" / "demo"
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=tree, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    a = os.stat(kit / "bundles" / "demo" / "1.0.0" / "config" / "big.bin")
    b = os.stat(kit / "bundles" / "demo" / "1.1.0" / "config" / "big.bin")
    assert (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)  # hard-linked, not copied
    # the full archive of the same version is now a no-op: same bundle_id
    again = ob("install", full2["archive"], "--kit", kit, "--trust", pub, "--json")
    assert again.json["result"]["outcome"] == "already-installed"


def test_delta_onto_an_empty_kit_is_exit_5(ob, key, pub, tmp_path, versions):
    v1, v2 = versions
    full1, _ = build(ob, key, v1, tmp_path / "out")
    delta, _ = build(ob, key, v2, tmp_path / "out", "--delta-from", full1)  # against the old bundle itself
    r = ob("install", delta, "--kit", tmp_path / "empty", "--trust", pub)
    assert r.rc == 5 and "config/big.bin" in r.err and "sha256" in r.err
    assert not (tmp_path / "empty" / "current" / "demo").exists()


def test_verify_reports_complete_false_without_the_kit(ob, pub, delta_onto_v1):
    kit, delta = delta_onto_v1
    r = ob("verify", delta, "--trust", pub, "--json")
    assert r.rc == 0 and r.json["result"]["complete"] is False
    assert r.json["result"]["delta"]["omitted"] == 3  # the big file and the two unchanged tenant files
    r = ob("verify", delta, "--trust", pub, "--kit", kit, "--json")
    assert r.rc == 0 and r.json["result"]["complete"] is True


def test_a_changed_kit_file_cannot_serve_a_delta(ob, pub, delta_onto_v1):
    kit, delta = delta_onto_v1
    target = kit / "bundles" / "demo" / "1.0.0" / "config" / "big.bin"
    os.chmod(target, 0o644)
    with open(target, "r+b") as fh:
        fh.write(b"X")  # someone changed the installed copy
    r = ob("install", delta, "--kit", kit, "--trust", pub)
    assert r.rc == 5 and "no file of this kit has that sha256 any more" in r.err
    assert os.readlink(kit / "current" / "demo") == "../bundles/demo/1.0.0"


def test_a_delta_for_one_changed_layer_is_about_that_layer(ob, key, pub, tmp_path):
    reg = start_registry(tmp_path / "reg", kind="plain")
    try:
        lay = tmp_path / "lay"
        base = RandomLayer.mb(6, seed=3)
        make_image(lay, "v1", [base, {"app/version": b"1\n" + os.urandom(200_000)}])
        make_image(lay, "v2", [base, {"app/version": b"2\n" + os.urandom(200_000)}])
        args = ["--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host, "--cache", str(tmp_path / "c")]
        archives = {}
        for version, tag in (("1.0.0", "v1"), ("1.1.0", "v2")):
            push(lay, tag, reg, "team/app:stable")
            m = write_manifest(tmp_path / ("m" + version), version=version, tenants=False, files={},
                               extra="  images:\n    - ref: docker.io/team/app:stable\n")
            m.write_text(m.read_text().replace("  files:\n", "  files: []\n"))
            archives[version] = build(ob, key, m, tmp_path / "out", *args)[0]
        kit = tmp_path / "kit"
        assert ob("install", archives["1.0.0"], "--kit", kit, "--trust", pub).rc == 0
        (tmp_path / "inv.json").write_text(ob("inventory", "--kit", kit).out)
        m = tmp_path / "m1.1.0" / "bundle.yaml"
        delta, res = build(ob, key, m, tmp_path / "delta", *args, "--delta-from", tmp_path / "inv.json")
        full = archives["1.1.0"].stat().st_size
        size = delta.stat().st_size
        assert 200_000 < size < 300_000 and full > 6_000_000, (size, full)  # the changed layer, not the base
        r = ob("install", delta, "--kit", kit, "--trust", pub, "--json")
        assert r.rc == 0, r
    finally:
        reg.stop()
