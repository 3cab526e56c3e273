"""Crash safety (issue 6, item 3): SIGKILL the installer at every fault point and from outside mid-stream.

A kit holds demo 1.0.0 (pushed to a site registry); installing 2.0.0 is killed with SIGKILL, either by the
test-only hook ``OFFLINE_BUNDLE_FAULT=<point>`` (installer/faults.py) or by this test while a 200 MB payload
streams into staging. After every kill:

(a) ``status --json`` answers, and truthfully: ``current`` is 1.0.0 before the switch and 2.0.0 after it, the
    killed run's receipt says "running" (a SIGKILLed process cannot write "failed"), and every version it
    lists is complete;
(b) ``KIT/current/demo`` resolves to a complete, verified version (``sha256sum -c --strict SHA256SUMS``);
(c) the same install run again without the fault completes (exit 0) with 2.0.0 current, and the site
    registry serves the 2.0.0 image under its tag;
(d) after that rerun: no staging debris, no payload in the quarantine, no stray link in ``current/``, and
    the 2.0.0 folder is complete and read-only.
"""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_manifest
from helpers.images import RandomLayer, make_image, push
from helpers.registry import start_registry

from installer.faults import POINTS as HOOKED_POINTS

# Every fault point the installer offers, in the order an install reaches them.
POINTS = ("after-head", "mid-payload", "before-promote", "after-promote", "mid-push", "before-switch",
          "after-switch")
NAME = "demo"
CLI = Path(sys.executable).parent / "offline-bundle"


# --------------------------------------------------------------------------------------------------
# fixtures: a source registry with two images, a site registry, three archives

def image_manifest(folder: Path, version: str, tag: str, files: dict) -> Path:
    return write_manifest(folder, name=NAME, version=version, files=files, tenants=False,
                          extra="  images:\n    - ref: docker.io/crash/app:%s\n" % tag)


@pytest.fixture(scope="module")
def world(tmp_path_factory, keydir, ob):
    """Registries (source and site) and the archives: 1.0.0, 2.0.0 (small) and 2.0.0 with a 200 MB file."""
    base = tmp_path_factory.mktemp("crash")
    src = start_registry(base / "src", kind="plain")
    site = start_registry(base / "site", kind="plain")
    try:
        lay = base / "layout"
        make_image(lay, "1.0", [{"etc/app": b"one\n"}, RandomLayer.mb(0.5, seed=101)])
        v2 = make_image(lay, "2.0", [{"etc/app": b"two\n"}, RandomLayer.mb(0.5, seed=102),
                                     RandomLayer.mb(0.5, seed=103)])
        push(lay, "1.0", src, "crash/app:1.0")
        push(lay, "2.0", src, "crash/app:2.0")
        key = keydir / "ed" / "bundle.key"
        mirror = ["--mirror", "docker.io=%s" % src.host, "--insecure-registry", src.host,
                  "--cache", base / "cache"]

        def build(folder: str, version: str, tag: str, files: dict, big: int = 0) -> Path:
            m = image_manifest(base / folder, version, tag, files)
            if big:
                with open(base / folder / "cfg" / "big.bin", "wb") as fh:
                    for _ in range(big):
                        fh.write(os.urandom(1 << 20))
                m.write_text(m.read_text().replace(
                    "  images:", "    - source: cfg/big.bin\n      target: data/big.bin\n  images:"))
            r = ob("build", m, "--key", key, "--out", base / ("out-" + folder), *mirror, "--json")
            assert r.rc == 0, r
            return Path(r.json["result"]["archive"])

        archives = {
            "1.0.0": build("v1", "1.0.0", "1.0", {"cfg/app.yaml": b"listen: 9090\n", "cfg/run.sh": b"#!/bin/sh\necho 1\n"}),
            "2.0.0": build("v2", "2.0.0", "2.0", {"cfg/app.yaml": b"listen: 9091\n", "cfg/run.sh": b"#!/bin/sh\necho 2\n",
                                                  "cfg/data.bin": os.urandom(2 << 20)}),
            "2.0.0-big": build("v2big", "2.0.0", "2.0", {"cfg/app.yaml": b"listen: 9092\n"}, big=200),
        }
        yield {"site": site, "archives": archives, "v2_digest": v2.manifest_digest}
    finally:
        site.stop()
        src.stop()


# --------------------------------------------------------------------------------------------------
# helpers

def install_args(world, version: str, kit: Path, prefix: str, pub) -> list:
    host = world["site"].host
    return ["install", world["archives"][version], "--kit", kit, "--trust", pub,
            "--registry", "%s/%s" % (host, prefix), "--insecure-registry", host]


def sums_check(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", "-c", "--strict", "--quiet", "SHA256SUMS"], cwd=folder,
                          capture_output=True, text=True)


def assert_complete(folder: Path) -> None:
    """A verified version: SHA256SUMS checks, and it lists every file the folder holds."""
    check = sums_check(folder)
    assert check.returncode == 0, (folder, check.stdout, check.stderr)
    listed = {line.split("  ", 1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert on_disk - {"SHA256SUMS", "SHA256SUMS.sig"} == listed, folder


def current_of(kit: Path):
    link = kit / "current" / NAME
    return os.readlink(link) if os.path.islink(link) else None


def last_receipt(kit: Path) -> dict:
    files = sorted(p for p in (kit / ".state" / "receipts").iterdir() if p.name.endswith(".json"))
    return json.loads(files[-1].read_text())


def status(ob, kit: Path) -> dict:
    r = ob("status", "--kit", kit, "--json")
    assert r.rc == 0 and "Traceback" not in r.err, r
    [bundle] = r.json["result"]["bundles"]
    return bundle


def staging_files(kit: Path) -> list:
    return [p for p in (kit / ".state" / "staging").rglob("*")]


def assert_truthful_after_kill(ob, kit: Path, expect_current: str) -> dict:
    """(a) and (b) right after the kill, before anything else touches the kit."""
    b = status(ob, kit)
    assert b["current"] == expect_current, b
    assert current_of(kit) == "../bundles/%s/%s" % (NAME, expect_current)
    assert b["last"]["version"] == "2.0.0" and b["last"]["outcome"] == "running", b["last"]
    # every version status lists is complete (a half-promoted folder would be a lie)
    for v in b["versions"]:
        assert_complete(kit / "bundles" / NAME / v["version"])
        assert v["current"] == (v["version"] == expect_current)
    # (b) current resolves to a complete verified version, and 1.0.0 is untouched
    assert_complete(kit / "current" / NAME)
    assert_complete(kit / "bundles" / NAME / "1.0.0")
    return b


def assert_clean_after_rerun(ob, world, kit: Path, prefix: str, rerun) -> None:
    """(c) and (d)."""
    assert rerun.rc == 0, rerun
    result = rerun.json["result"]
    assert result["current"] == "2.0.0"
    assert current_of(kit) == "../bundles/%s/2.0.0" % NAME
    b = status(ob, kit)
    assert b["current"] == "2.0.0" and b["last"]["outcome"] in ("installed", "already-installed"), b
    assert [p["status"] for p in b["last"]["phases"]][-2:] == ["done", "done"]
    assert sorted(v["version"] for v in b["versions"]) == ["1.0.0", "2.0.0"]
    # no staging debris; quarantine keeps reasons, never a payload
    assert staging_files(kit) == []
    for q in (kit / ".state" / "quarantine").iterdir():
        assert not (q / "tree").exists(), q
        assert {p.name for p in q.iterdir()} <= {"reason.json", "members.txt", "SHA256SUMS"}, q
    # nothing half-made beside the real entries
    assert sorted(os.listdir(kit / "current")) == [NAME]
    assert sorted(os.listdir(kit / "bundles" / NAME)) == ["1.0.0", "2.0.0"]
    # 2.0.0 is complete and read-only (files 0444/0555, folders 0555)
    v2 = kit / "bundles" / NAME / "2.0.0"
    assert_complete(v2)
    for p in [v2] + list(v2.rglob("*")):
        mode = stat.S_IMODE(os.lstat(p).st_mode)
        assert not stat.S_ISLNK(os.lstat(p).st_mode), p
        assert mode in ((0o555,) if p.is_dir() else (0o444, 0o555)), (p, oct(mode))
    assert_complete(kit / "bundles" / NAME / "1.0.0")
    # the site serves 2.0.0's image under its tag
    _raw, _mt, digest = world["site"].client().manifest("%s/docker.io/crash/app" % prefix, "2.0")
    assert digest == world["v2_digest"]


def install_v1(ob, world, kit: Path, prefix: str, pub) -> None:
    r = ob(*install_args(world, "1.0.0", kit, prefix, pub))
    assert r.rc == 0, r
    assert current_of(kit) == "../bundles/%s/1.0.0" % NAME


# --------------------------------------------------------------------------------------------------
# the fault points

def test_the_suite_covers_every_fault_point():
    assert set(POINTS) == set(HOOKED_POINTS)


def where_it_died(kit: Path, point: str) -> None:
    """Prove the hook fired where it says (a dead hook would make every other check vacuous)."""
    receipt = last_receipt(kit)
    done = [p["phase"] for p in receipt["phases"] if p["status"] in ("done", "skipped")]
    staged = [p for p in staging_files(kit) if p.is_file()]
    v2 = kit / "bundles" / NAME / "2.0.0"
    expect = {
        "after-head": ([], False), "mid-payload": ([], False), "before-promote": ([1], False),
        "after-promote": ([1, 2], True), "mid-push": ([1, 2], True), "before-switch": ([1, 2, 3, 4], True),
        "after-switch": ([1, 2, 3, 4], True),
    }[point]
    assert (done, v2.exists()) == expect, (point, receipt["phases"])
    head = ("SHA256SUMS", "SHA256SUMS.sig", "bundle.json")
    payload = [p for p in staged if p.name not in head]
    if point == "after-head":
        assert payload == []  # the decision is recorded, no payload byte written yet
    elif point == "mid-payload":
        [tree] = (kit / ".state" / "staging").glob("*/tree")
        listed = (tree / "SHA256SUMS").read_text().splitlines()
        assert 1 <= len(payload) < len(listed) - 1, staged  # some payload, not all of it
    elif point == "before-promote":
        [tree] = (kit / ".state" / "staging").glob("*/tree")
        assert_complete(tree)  # verified and staged, not yet promoted
    else:
        assert staged == []


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_a_fault_point_leaves_a_truthful_kit_and_a_rerun_completes(point, ob, world, pub, tmp_path):
    kit = tmp_path / "kit"
    prefix = "fault-" + point
    install_v1(ob, world, kit, prefix, pub)

    args = install_args(world, "2.0.0", kit, prefix, pub)
    killed = ob(*args, "--json", env={"OFFLINE_BUNDLE_FAULT": point})
    assert killed.rc == -signal.SIGKILL, killed
    assert killed.out == ""  # it died: no envelope, no half a result

    where_it_died(kit, point)
    assert_truthful_after_kill(ob, kit, "2.0.0" if point == "after-switch" else "1.0.0")

    rerun = ob(*args, "--json")
    assert_clean_after_rerun(ob, world, kit, prefix, rerun)
    # a version already promoted is not streamed again: the rerun only deploys and switches
    phases = {p["phase"]: p["status"] for p in rerun.json["result"]["phases"]}
    promoted = point in ("after-promote", "mid-push", "before-switch", "after-switch")
    assert (phases[1], phases[2]) == (("skipped", "skipped") if promoted else ("done", "done")), phases


# --------------------------------------------------------------------------------------------------
# SIGKILL from outside while a 200 MB payload streams

def wait_for(predicate, proc, timeout=60.0, step=0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(step)
    return False


def staged_bytes(kit: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(kit / ".state" / "staging"):
        for f in files:
            try:
                total += os.lstat(os.path.join(folder, f)).st_size
            except FileNotFoundError:
                pass
    return total


@pytest.mark.parametrize("moment", ["as-staging-appears", "early-in-the-stream", "deep-in-the-stream"])
def test_sigkill_from_outside_mid_stream(moment, ob, world, pub, tmp_path):
    kit = tmp_path / "kit"
    prefix = "outside-" + moment
    install_v1(ob, world, kit, prefix, pub)
    args = install_args(world, "2.0.0-big", kit, prefix, pub)
    rng = random.Random(moment)  # random-ish, but the same moment on every run
    proc = subprocess.Popen([str(CLI)] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        staging = kit / ".state" / "staging"
        assert wait_for(lambda: staging.is_dir() and any(staging.iterdir()), proc), "staging never showed content"
        if moment == "as-staging-appears":
            time.sleep(rng.uniform(0, 0.01))
        else:
            floor = rng.randint(8, 40) << 20 if moment == "early-in-the-stream" else rng.randint(100, 170) << 20
            assert wait_for(lambda: staged_bytes(kit) >= floor, proc), "the stream ended before %d bytes" % floor
        assert proc.poll() is None, "the install finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (kit / "bundles" / NAME / "2.0.0").exists()
    assert_truthful_after_kill(ob, kit, "1.0.0")

    rerun = ob(*args, "--json")
    assert_clean_after_rerun(ob, world, kit, prefix, rerun)
    assert rerun.json["result"]["outcome"] == "installed"
