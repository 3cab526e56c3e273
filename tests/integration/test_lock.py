"""Lock files against the real registry: written by `lock`, pinning builds, refused when they do not match."""

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO
from tests.helpers.craft import read_entries
from tests.helpers.images import make_image, push
from tests.helpers.registry import start_registry


@pytest.fixture
def world(tmp_path):
    reg = start_registry(tmp_path / "reg", kind="plain")
    lay = tmp_path / "lay"
    first = make_image(lay, "a", [{"v": b"first\n"}])
    second = make_image(lay, "b", [{"v": b"second\n"}])
    push(lay, "a", reg, "team/app:1.0")
    src = tmp_path / "src"
    (src / "cfg").mkdir(parents=True)
    (src / "cfg" / "app.yaml").write_text("a: 1\n")
    (src / "m.yaml").write_text(
        'apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata: {name: locked, version: "1.0.0"}\nspec:\n'
        "  images:\n    - ref: docker.io/team/app:1.0\n"
        "  files:\n    - {source: cfg/app.yaml, target: config/app.yaml}\n")
    yield {"reg": reg, "lay": lay, "first": first, "second": second, "m": src / "m.yaml", "tmp": tmp_path}
    reg.stop()


def args(world):
    r = world["reg"]
    return ["--mirror", "docker.io=%s" % r.host, "--insecure-registry", r.host, "--cache", str(world["tmp"] / "cache")]


def build(ob, world, key, *extra):
    return ob("build", world["m"], "--key", key, "--out", world["tmp"] / "out", "--json", *args(world), *extra)


def test_lock_pins_the_resolution_even_after_the_tag_moves(ob, world, key):
    r = ob("lock", world["m"], *args(world), "--json")
    assert r.rc == 0, r
    lock_file = world["m"].with_name("m.lock.json")
    doc = json.loads(lock_file.read_text())
    jsonschema.validate(doc, json.loads((REPO / "schemas" / "lock.schema.json").read_text()))
    assert doc["images"]["docker.io/team/app:1.0"]["digest"] == world["first"].digest
    assert set(doc["files"]) == {"config/app.yaml"}
    b = build(ob, world, key)
    assert b.rc == 0 and b.json["result"]["lock"]["status"] == "used"
    # the tag moves upstream
    push(world["lay"], "b", world["reg"], "team/app:1.0")
    b = build(ob, world, key)
    assert b.rc == 0, b
    meta = json.loads(read_entries(Path(b.json["result"]["archive"]))[2].data)
    assert meta["images"][0]["digest"] == world["first"].digest  # pinned, not the moved tag
    assert meta["images"][0]["ref"] == "docker.io/team/app:1.0"
    locked = build(ob, world, key, "--locked")
    assert locked.rc == 5
    assert any("now points at %s" % world["second"].digest in p for p in locked.json["error"]["problems"])


def test_stale_and_missing_locks(ob, world, key):
    assert build(ob, world, key, "--locked").rc == 5  # no lock file at all
    assert ob("lock", world["m"], *args(world)).rc == 0
    world["m"].write_text(world["m"].read_text() + "# a comment changes the manifest's bytes\n")
    b = build(ob, world, key)
    assert b.rc == 0 and b.json["result"]["lock"]["status"] == "stale"
    assert any("stale" in w for w in b.json["result"]["warnings"])
    assert build(ob, world, key, "--locked").rc == 5
    b = build(ob, world, key, "--ignore-lock")
    assert b.rc == 0 and b.json["result"]["lock"] == {"status": "ignored"}
    assert json.loads(read_entries(Path(b.json["result"]["archive"]))[2].data)["lock"] == {"status": "ignored"}
    assert build(ob, world, key, "--locked", "--ignore-lock").rc == 2


def test_a_changed_file_is_a_warning_and_with_locked_exit_5(ob, world, key):
    assert ob("lock", world["m"], *args(world)).rc == 0
    (world["m"].parent / "cfg" / "app.yaml").write_text("a: 2\n")
    b = build(ob, world, key)
    assert b.rc == 0 and any("config/app.yaml has changed" in w for w in b.json["result"]["warnings"])
    b = build(ob, world, key, "--locked")
    assert b.rc == 5 and any("config/app.yaml" in p for p in b.json["error"]["problems"])
