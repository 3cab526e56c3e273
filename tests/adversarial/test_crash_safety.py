"""Crash safety (issue 6, item 3): SIGKILL the installer at every fault point, between them, and from outside.

A kit holds demo 1.0.0 (with an image pushed to a site registry); installing 2.0.0 (a compose file to render
and an image to push, so every phase runs) is killed with SIGKILL:
- by the product's test-only hook ``OFFLINE_BUNDLE_FAULT=<point>`` (installer/faults.py), every point;
- by a small bootstrap (BOOT) that kills the CLI right before/after one ``os.rename``/``os.symlink``/
  ``os.replace`` on a given path: windows no hook covers (inside promotion, the switch, rendering, a receipt
  write, and a second crash while the next run clears the first one's debris);
- by this test from outside, while a 200 MB payload streams into staging.
After every kill:
(a) ``status --json`` answers, and truthfully: ``current`` is 1.0.0 before the switch and 2.0.0 after it, the
    killed run's receipt says "running" (a SIGKILLed process cannot write "failed"), and every version it
    lists is complete;
(b) ``KIT/current/demo`` resolves to a complete, verified version (``sha256sum -c --strict SHA256SUMS``);
(c) the same install run again without the fault completes (exit 0) with 2.0.0 current, its site outputs
    rendered and the site registry serving the 2.0.0 image under its tag;
(d) after that rerun: no staging debris, no payload in the quarantine, no temporary name anywhere in the
    kit (``current/``, ``deploy/``, receipts), and the 2.0.0 folder is complete and read-only.
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
from conftest import run_cmd
from tests.helpers.images import RandomLayer, make_image, push
from tests.helpers import procs
from tests.helpers.registry import start_registry

from installer.faults import POINTS as HOOKED_POINTS

NAME = "demo"
CLI = Path(sys.executable).parent / "offline-bundle"


# --------------------------------------------------------------------------------------------------
# fixtures: a source registry with two images, a site registry, three archives

def write_bundle_manifest(folder: Path, version: str, tag: str, files: dict) -> Path:
    """demo VERSION: config files, a compose file naming the image (so phase 4 renders), the image."""
    files = dict(files)
    files["compose/docker-compose.yaml"] = ("services:\n  app:\n    image: docker.io/crash/app:%s\n" % tag).encode()
    lines = ["apiVersion: offline-bundle/v1", "kind: Bundle", "metadata:", "  name: %s" % NAME,
             '  version: "%s"' % version, '  created: "2026-11-26T00:00:00Z"', "spec:", "  files:"]
    for target, data in files.items():
        source = folder / "src" / target
        source.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, int):  # a size: that many random bytes, written in 1 MiB pieces
            with open(source, "wb") as fh:
                for _ in range(data >> 20):
                    fh.write(os.urandom(1 << 20))
        else:
            source.write_bytes(data)
        lines += ["    - source: src/%s" % target, "      target: %s" % target]
        if target.endswith(".sh"):
            lines.append("      executable: true")
    lines += ["  images:", "    - ref: docker.io/crash/app:%s" % tag]
    (folder / "bundle.yaml").write_text("\n".join(lines) + "\n")
    return folder / "bundle.yaml"


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

        def build(folder: str, version: str, tag: str, files: dict) -> Path:
            m = write_bundle_manifest(base / folder, version, tag, files)
            r = ob("build", m, "--key", key, "--out", base / "out" / folder, "--cache", base / "cache",
                   "--mirror", "docker.io=%s" % src.host, "--insecure-registry", src.host, "--json")
            assert r.rc == 0, r
            return Path(r.json["result"]["archive"])

        archives = {
            "1.0.0": build("v1", "1.0.0", "1.0", {"config/app.yaml": b"listen: 9090\n",
                                                  "config/run.sh": b"#!/bin/sh\necho 1\n"}),
            "2.0.0": build("v2", "2.0.0", "2.0", {"config/app.yaml": b"listen: 9091\n",
                                                  "config/run.sh": b"#!/bin/sh\necho 2\n",
                                                  "data/small.bin": 2 << 20}),
            "2.0.0-big": build("v2big", "2.0.0", "2.0", {"config/app.yaml": b"listen: 9092\n",
                                                         "data/big.bin": 200 << 20}),
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


def debris(kit: Path) -> list:
    """Temporary names a run leaves when it dies between creating and renaming them."""
    return sorted(str(p.relative_to(kit)) for p in kit.rglob("*")
                  if ".tmp" in p.name or ".old-" in p.name or p.name.startswith(".building-"))


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
        assert not (q / "tree").exists(), "payload left in the quarantine: %s" % q
        assert {p.name for p in q.iterdir()} <= {"reason.json", "members.txt", "SHA256SUMS"}, q
    # nothing half-made beside the real entries: no temp link in current/, no stray version folder
    assert sorted(os.listdir(kit / "current")) == [NAME]
    assert sorted(os.listdir(kit / "bundles" / NAME)) == ["1.0.0", "2.0.0"]
    # 2.0.0 is complete and read-only (files 0444/0555, folders 0555)
    v2 = kit / "bundles" / NAME / "2.0.0"
    assert_complete(v2)
    modes = {str(p.relative_to(kit)): oct(stat.S_IMODE(os.lstat(p).st_mode)) for p in [v2] + list(v2.rglob("*"))
             if stat.S_IMODE(os.lstat(p).st_mode) not in ((0o555,) if p.is_dir() else (0o444, 0o555))}
    assert modes == {}, "writable in an installed version: %s" % modes
    assert_complete(kit / "bundles" / NAME / "1.0.0")
    # status names who signed the installed version (it was admitted by a verified install)
    [entry] = [v for v in b["versions"] if v["version"] == "2.0.0"]
    assert entry["signer"] == result["signer"], entry
    # the site outputs and the site registry are 2.0.0's
    outputs = [o for o in b["outputs"] if o["version"] == "2.0.0"]
    assert [o["files"] for o in outputs] == [["COMMANDS.txt", "compose/docker-compose.yaml"]], b["outputs"]
    _raw, _mt, digest = world["site"].client().manifest("%s/docker.io/crash/app" % prefix, "2.0")
    assert digest == world["v2_digest"]
    # and no temporary name of the killed run survives anywhere in the kit
    assert debris(kit) == []


@pytest.fixture(scope="module")
def v1_kit(world, ob, keydir, tmp_path_factory):
    """A kit with 1.0.0 installed and pushed to the site (prefix "base"); each test works on a copy."""
    kit = tmp_path_factory.mktemp("crash-v1") / "kit"
    r = ob(*install_args(world, "1.0.0", kit, "base", keydir / "ed" / "bundle.pub"))
    assert r.rc == 0, r
    return kit


def kit_with_v1(v1_kit: Path, tmp_path: Path) -> Path:
    kit = tmp_path / "kit"
    subprocess.run(["cp", "-a", str(v1_kit), str(kit)], check=True)
    assert current_of(kit) == "../bundles/%s/1.0.0" % NAME
    return kit


# --------------------------------------------------------------------------------------------------
# the fault points, and the windows between them
#
# Besides the product's hook points, a small bootstrap kills the CLI right before or after one
# filesystem call (os.rename, os.symlink, os.replace) whose path contains a given string: the
# windows inside promotion, the switch, rendering and the receipt writes that no hook covers.

BOOT = r"""
import os, signal, sys
if sys.path and sys.path[0] == "":  # import what the console script imports, not the current folder
    del sys.path[0]
func, when, needle, nth = os.environ.pop("CRASH_AT").split("|")
nth, seen, real = int(nth), [0], getattr(os, func)
def patched(*args, **kw):
    hit = any(needle in str(a) for a in args[:2])
    if hit:
        seen[0] += 1
        hit = seen[0] == nth
    if hit and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    out = real(*args, **kw)
    if hit and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return out
setattr(os, func, patched)
from bundler.cli import main
sys.argv[0] = "offline-bundle"
sys.exit(main())
"""

# name: (how, phases recorded (done or skipped) when it died, 2.0.0 folder exists, current after the kill)
CRASHES = {
    # the product's hooks (OFFLINE_BUNDLE_FAULT)
    "after-head": ("hook", [], False, "1.0.0"),
    "mid-payload": ("hook", [], False, "1.0.0"),
    "before-promote": ("hook", [1], False, "1.0.0"),
    "after-promote": ("hook", [1, 2], True, "1.0.0"),
    "mid-push": ("hook", [1, 2], True, "1.0.0"),
    "before-switch": ("hook", [1, 2, 3, 4], True, "1.0.0"),
    "after-switch": ("hook", [1, 2, 3, 4], True, "2.0.0"),
    # windows between the hooks (CRASH_AT=func|before/after|path substring|nth call)
    "receipt-temp-written": ("os.replace|before|/.state/receipts/|2", [], False, "1.0.0"),
    "promote-renamed": ("os.rename|after|/bundles/demo/2.0.0|1", [1], True, "1.0.0"),
    "render-before-rename": ("os.rename|before|/deploy/demo/2.0.0/|1", [1, 2, 3], True, "1.0.0"),
    "switch-temp-link": ("os.symlink|after|/current/.demo.tmp-|1", [1, 2, 3, 4], True, "1.0.0"),
}


def test_the_suite_covers_every_fault_point():
    assert {k for k, v in CRASHES.items() if v[0] == "hook"} == set(HOOKED_POINTS)


def kill_at(ob, point: str, args: list):
    how = CRASHES[point][0]
    if how == "hook":
        return ob(*args, env={"OFFLINE_BUNDLE_FAULT": point})
    func, rest = how.split("|", 1)
    return run_cmd([sys.executable, "-c", BOOT] + list(args), env={"CRASH_AT": func[len("os."):] + "|" + rest})


def where_it_died(kit: Path, point: str) -> None:
    """Prove the kill came where it says (a dead hook would make every other check vacuous)."""
    _how, phases, v2_exists, _current = CRASHES[point]
    receipt = last_receipt(kit)
    recorded = [p["phase"] for p in receipt["phases"] if p["status"] in ("done", "skipped")]
    assert receipt["version"] == "2.0.0" and (recorded, (kit / "bundles" / NAME / "2.0.0").exists()) == (
        phases, v2_exists), (point, receipt["phases"])
    staged = [p for p in staging_files(kit) if p.is_file()]
    payload = [p for p in staged if p.name not in ("SHA256SUMS", "SHA256SUMS.sig", "bundle.json")]
    if point == "after-head":
        assert payload == []  # the decision is recorded, no payload byte written yet
    elif point == "mid-payload":
        [tree] = (kit / ".state" / "staging").glob("*/tree")
        listed = (tree / "SHA256SUMS").read_text().splitlines()
        assert 1 <= len(payload) < len(listed) - 1, staged  # some payload, not all of it
    elif point in ("before-promote", "receipt-temp-written"):
        [tree] = (kit / ".state" / "staging").glob("*/tree")
        assert_complete(tree)  # verified and staged, not yet promoted
    else:
        assert payload == []


@pytest.mark.parametrize("point", list(CRASHES))
def test_sigkill_at_a_fault_point_leaves_a_truthful_kit_and_a_rerun_completes(point, ob, world, v1_kit, pub,
                                                                              tmp_path):
    kit = kit_with_v1(v1_kit, tmp_path)
    prefix = "fault-" + point  # a fresh namespace on the site: every blob of 2.0.0 must be pushed

    args = install_args(world, "2.0.0", kit, prefix, pub) + ["--json"]
    killed = kill_at(ob, point, args)
    assert killed.rc == -signal.SIGKILL, killed
    assert killed.out == ""  # it died: no envelope, no half a result

    where_it_died(kit, point)
    assert_truthful_after_kill(ob, kit, CRASHES[point][3])

    rerun = ob(*args)
    assert_clean_after_rerun(ob, world, kit, prefix, rerun)
    # a version already promoted is verified again whole but not unpacked: the rerun checks its tree, deploys, switches
    phases = {p["phase"]: p["status"] for p in rerun.json["result"]["phases"]}
    promoted = CRASHES[point][2]
    assert (phases[1], phases[2]) == (("done", "skipped") if promoted else ("done", "done")), phases


def test_a_kill_while_the_next_run_clears_debris_leaves_no_payload(ob, world, v1_kit, pub, tmp_path):
    """Two crashes in a row: mid-payload, then the rerun is killed while it moves that debris aside."""
    kit = kit_with_v1(v1_kit, tmp_path)
    prefix = "fault-double"
    args = install_args(world, "2.0.0", kit, prefix, pub) + ["--json"]
    assert ob(*args, env={"OFFLINE_BUNDLE_FAULT": "mid-payload"}).rc == -signal.SIGKILL
    second = run_cmd([sys.executable, "-c", BOOT] + args, env={"CRASH_AT": "rename|after|/quarantine/debris-|1"})
    assert second.rc == -signal.SIGKILL, second
    assert_truthful_after_kill(ob, kit, "1.0.0")
    rerun = ob(*args)
    assert_clean_after_rerun(ob, world, kit, prefix, rerun)


def test_status_dates_a_version_promoted_by_a_killed_run(ob, world, v1_kit, pub, tmp_path):
    kit = kit_with_v1(v1_kit, tmp_path)
    args = install_args(world, "2.0.0", kit, "fault-dated", pub) + ["--json"]
    assert ob(*args, env={"OFFLINE_BUNDLE_FAULT": "after-promote"}).rc == -signal.SIGKILL
    assert ob(*args).rc == 0
    [entry] = [v for v in status(ob, kit)["versions"] if v["version"] == "2.0.0"]
    assert entry["installed_at"], entry


# --------------------------------------------------------------------------------------------------
# SIGKILL from outside while a 200 MB payload streams

def wait_for(predicate, proc) -> bool:
    return procs.wait_for(predicate, proc, timeout=60.0, step=0.002)


def staged_bytes(kit: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(kit / ".state" / "staging"):
        for f in files:
            try:
                total += os.lstat(os.path.join(folder, f)).st_size
            except FileNotFoundError:
                pass
    return total


@pytest.mark.parametrize("moment", ["as-staging-appears", "mid-stream"])
def test_sigkill_from_outside_mid_stream(moment, ob, world, v1_kit, pub, tmp_path):
    kit = kit_with_v1(v1_kit, tmp_path)
    prefix = "outside-" + moment
    args = install_args(world, "2.0.0-big", kit, prefix, pub)
    rng = random.Random(moment)  # random-ish, but the same moment on every run
    proc = subprocess.Popen([str(CLI)] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    seen_current = set()  # sampled while the payload streams: only ever the complete 1.0.0

    def staged_at_least(n: int) -> bool:
        seen_current.add(current_of(kit))
        return staged_bytes(kit) >= n
    try:
        if moment == "as-staging-appears":
            assert wait_for(lambda: staged_at_least(1), proc), "staging never showed content"
            time.sleep(rng.uniform(0, 0.01))
        else:
            floor = rng.randint(16, 170) << 20
            assert wait_for(lambda: staged_at_least(floor), proc), "the stream ended before %d bytes" % floor
        assert proc.poll() is None, "the install finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert seen_current == {"../bundles/%s/1.0.0" % NAME}
    assert not (kit / "bundles" / NAME / "2.0.0").exists()
    assert_truthful_after_kill(ob, kit, "1.0.0")

    rerun = ob(*args, "--json")
    assert_clean_after_rerun(ob, world, kit, prefix, rerun)
    assert rerun.json["result"]["outcome"] == "installed"
