"""install/status/verify/inspect through the real CLI, on a real kit."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO, write_manifest
from tests.helpers.craft import Entry, get, read_entries, write_archive

RESULT_SCHEMA = json.loads((REPO / "schemas" / "result.schema.json").read_text())


def envelope(r):
    doc = json.loads(r.out)
    jsonschema.validate(doc, RESULT_SCHEMA)
    assert doc["exit_code"] == r.rc
    return doc


def build(ob, tmp_path, key, version="1.0.0", name="demo", files=None, tag="") -> Path:
    src = write_manifest(tmp_path / ("src-%s-%s%s" % (name, version, tag)), name=name, version=version, files=files)
    r = ob("build", src, "--key", key, "--out", tmp_path / "out", "--json")
    assert r.rc == 0, r
    return Path(r.json["result"]["archive"])


def current_target(kit: Path, name="demo"):
    link = kit / "current" / name
    return os.readlink(link) if os.path.islink(link) else None


def tree_snapshot(root: Path):
    """Every path under root with its mode and content hash: proves 'nothing changed'."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = os.lstat(p)
        out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), os.readlink(p) if p.is_symlink() else
                                         (p.read_bytes() if p.is_file() else None))
    return out


def test_install_verifies_unpacks_read_only_and_switches_current(ob, built, pub, tmp_path):
    archive, res = built
    kit = tmp_path / "kit"
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--json")
    doc = envelope(r)
    assert r.rc == 0 and doc["ok"]
    result = doc["result"]
    assert result["outcome"] == "installed" and result["bundle_id"] == res["bundle_id"]
    assert current_target(kit) == "../bundles/demo/1.0.0"
    tree = kit / "current" / "demo"
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=tree, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # exactly the archive tree
    in_archive = {e.path for e in read_entries(archive)}
    real = tree.resolve()
    on_disk = {str(p.relative_to(real)) for p in real.rglob("*") if p.is_file()}
    assert on_disk == in_archive
    for p in tree.resolve().rglob("*"):
        mode = stat.S_IMODE(p.stat().st_mode)
        if p.is_dir():
            assert mode == 0o555, p
        elif p.name == "run.sh":
            assert mode == 0o555
        else:
            assert mode == 0o444, p
    assert stat.S_IMODE((kit / "bundles" / "demo" / "1.0.0").stat().st_mode) == 0o555
    assert stat.S_IMODE((kit / "secrets").stat().st_mode) == 0o700
    receipt = json.loads((kit / result["receipt"]).read_text())
    assert receipt["outcome"] == "installed" and receipt["signer"] == result["signer"]
    assert [p["phase"] for p in receipt["phases"]] == [1, 2, 3, 4, 5, 6]
    assert not list((kit / ".state" / "staging").iterdir())


def test_same_bundle_again_is_a_no_op(ob, built, pub, tmp_path):
    archive, _ = built
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    before = tree_snapshot(kit / "bundles")
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--json")
    assert r.rc == 0 and r.json["result"]["outcome"] == "already-installed"
    phases = {p["phase"]: p["status"] for p in r.json["result"]["phases"]}
    # the whole archive is read and verified again (docs/FORMAT.md), the installed tree found intact: nothing written
    assert phases[1] == "done" and phases[2] == "skipped" and r.json["result"]["repaired"] == []
    assert tree_snapshot(kit / "bundles") == before


def test_versions_move_forward_and_downgrade_needs_a_reason(ob, pub, key, tmp_path):
    kit = tmp_path / "kit"
    v1 = build(ob, tmp_path, key, "1.0.0")
    v2 = build(ob, tmp_path, key, "1.1.0", files={"cfg/app.yaml": b"listen: 9091\n"})
    assert ob("install", v1, "--kit", kit, "--trust", pub).rc == 0
    r = ob("install", v2, "--kit", kit, "--trust", pub, "--json")
    assert r.rc == 0 and r.json["result"]["previous"] == "1.0.0"
    assert current_target(kit) == "../bundles/demo/1.1.0"
    # 1.0.0 is installed but older than the highest current: refused without --allow-downgrade
    r = ob("install", v1, "--kit", kit, "--trust", pub)
    assert r.rc == 8 and "--allow-downgrade" in r.err
    assert current_target(kit) == "../bundles/demo/1.1.0"
    r = ob("install", v1, "--kit", kit, "--trust", pub, "--allow-downgrade")
    assert r.rc == 2 and "--reason" in r.err
    r = ob("install", v1, "--kit", kit, "--trust", pub, "--allow-downgrade", "--reason", "INC-42 regression", "--json")
    assert r.rc == 0, r
    assert current_target(kit) == "../bundles/demo/1.0.0"
    receipt = json.loads((kit / r.json["result"]["receipt"]).read_text())
    assert receipt["downgrade_reason"] == "INC-42 regression"
    # the highest version ever made current is still 1.1.0; a fresh 1.0.1 is also a downgrade
    v101 = build(ob, tmp_path, key, "1.0.1")
    assert ob("install", v101, "--kit", kit, "--trust", pub).rc == 8


def test_same_version_with_other_content_is_exit_8(ob, pub, key, tmp_path):
    kit = tmp_path / "kit"
    a = build(ob, tmp_path, key, "1.0.0")
    assert ob("install", a, "--kit", kit, "--trust", pub).rc == 0
    b = build(ob, tmp_path / "b", key, "1.0.0", files={"cfg/app.yaml": b"changed\n"})
    before = tree_snapshot(kit / "bundles")
    r = ob("install", b, "--kit", kit, "--trust", pub)
    assert r.rc == 8 and "bump the version" in r.err
    assert tree_snapshot(kit / "bundles") == before and current_target(kit) == "../bundles/demo/1.0.0"


def test_a_held_kit_lock_is_exit_9_naming_pid_and_host(ob, built, pub, tmp_path):
    archive, _ = built
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    holder = subprocess.Popen([sys.executable, "-c", """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, b"%d somehost\\n" % os.getpid(), 0)
print("locked", flush=True)
time.sleep(60)
""", str(kit / ".state" / "lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        v2 = build(ob, tmp_path, Path(str(pub)[:-3] + "key"), "2.0.0")
        r = ob("install", v2, "--kit", kit, "--trust", pub)
        assert r.rc == 9, r
        assert "pid %d" % holder.pid in r.err and "somehost" in r.err
        assert current_target(kit) == "../bundles/demo/1.0.0"
    finally:
        holder.kill()
        holder.wait()


def test_failed_install_is_quarantined_and_changes_nothing(ob, pub, key, tmp_path):
    kit = tmp_path / "kit"
    good = build(ob, tmp_path, key, "1.0.0")
    assert ob("install", good, "--kit", kit, "--trust", pub).rc == 0
    v2 = build(ob, tmp_path, key, "2.0.0")
    entries = read_entries(v2)
    get(entries, "config/run.sh").data = b"#!/bin/sh\necho pwned\n"  # same size, other bytes
    bad = write_archive(entries, tmp_path / "bad.bundle.tar.zst")
    before = tree_snapshot(kit / "bundles")
    r = ob("install", bad, "--kit", kit, "--trust", pub, "--json")
    doc = envelope(r)
    assert r.rc == 5 and doc["error"]["class"] == "content-mismatch" and "config/run.sh" in doc["error"]["message"]
    assert tree_snapshot(kit / "bundles") == before and current_target(kit) == "../bundles/demo/1.0.0"
    assert not list((kit / ".state" / "staging").iterdir())
    [q] = list((kit / ".state" / "quarantine").iterdir())
    reason = json.loads((q / "reason.json").read_text())
    assert "config/run.sh" in reason["reason"] and reason["payload_kept"] is False
    assert (q / "SHA256SUMS").read_bytes() == get(entries, "SHA256SUMS").data
    assert "config/app.yaml" in (q / "members.txt").read_text()
    assert not (q / "tree").exists()
    status = ob("status", "--kit", kit, "--json").json["result"]["bundles"][0]
    assert status["current"] == "1.0.0" and status["last"]["outcome"] == "failed"
    # --keep-failed keeps the payload for forensics
    r = ob("install", bad, "--kit", kit, "--trust", pub, "--keep-failed")
    assert r.rc == 5
    kept = [q for q in (kit / ".state" / "quarantine").iterdir() if (q / "tree").exists()]
    assert len(kept) == 1 and (kept[0] / "tree" / "config" / "app.yaml").exists()


def test_not_enough_space_is_exit_9_before_any_payload_is_written(ob, pub, key, tmp_path):
    big = build(ob, tmp_path, key, "1.0.0", files={"cfg/big.bin": os.urandom(8 << 20)})
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        r = ob("install", big, "--kit", mnt / "kit", "--trust", pub)
        assert r.rc == 9, r
        assert "not enough free space" in r.err
        assert not (mnt / "kit" / "current" / "demo").exists()
        assert not list((mnt / "kit" / ".state" / "staging").iterdir())
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_status_reports_versions_signers_and_last_outcome(ob, pub, key, keydir, tmp_path):
    kit = tmp_path / "kit"
    assert ob("install", build(ob, tmp_path, key, "1.0.0"), "--kit", kit, "--trust", pub).rc == 0
    other = keydir / "other"
    assert ob("install", build(ob, tmp_path, other / "bundle.key", "1.2.0"), "--kit", kit,
              "--trust", other / "bundle.pub").rc == 0
    r = ob("status", "--kit", kit, "--json")
    envelope(r)
    [b] = r.json["result"]["bundles"]
    assert b["current"] == "1.2.0" and [v["version"] for v in b["versions"]] == ["1.0.0", "1.2.0"]
    signers = {v["version"]: v["signer"] for v in b["versions"]}
    assert signers["1.0.0"] != signers["1.2.0"] and all(s.startswith("SHA256:") for s in signers.values())
    only = ob("status", "--kit", kit, "--signer", signers["1.0.0"], "--json").json["result"]["bundles"][0]
    assert [v["version"] for v in only["versions"]] == ["1.0.0"]
    text = ob("status", "--kit", kit)
    assert "current 1.2.0" in text.out and "installed 1.2.0" in text.out
    assert ob("status", "--kit", tmp_path / "none").rc == 2


def test_verify_and_inspect_report_signer_and_bundle_id(ob, built, pub, tmp_path):
    archive, res = built
    r = ob("verify", archive, "--trust", pub, "--json")
    doc = envelope(r)
    assert r.rc == 0 and doc["result"]["bundle_id"] == res["bundle_id"] and doc["result"]["signer"] == res["signer"]
    assert doc["result"]["sidecar"] == "ok" and doc["result"]["complete"] is True
    text = ob("verify", archive, "--trust", pub)
    assert res["bundle_id"] in text.out and res["signer"] in text.out
    # --trust takes a folder of keys too
    assert ob("verify", archive, "--trust", pub.parent).rc == 0
    i = ob("inspect", archive, "--trust", pub, "--json")
    assert i.rc == 0 and i.json["result"]["verified"] is True and i.json["result"]["signer"] == res["signer"]
    u = ob("inspect", archive)
    assert u.rc == 0 and u.out.startswith("UNVERIFIED")
    assert "config/app.yaml" in u.out
    uj = ob("inspect", archive, "--json")
    assert uj.json["result"]["status"] == "UNVERIFIED" and uj.json["result"]["signer"] is None


def test_inspect_reads_only_the_first_three_members(ob, built, pub, tmp_path):
    archive, _ = built
    entries = read_entries(archive)
    # everything after bundle.json is hostile: a symlink and no end-of-archive marker
    hostile = entries[:3] + [Entry("evil", typeflag=b"2", linkname="/etc/passwd")]
    bad = write_archive(hostile, tmp_path / "h.bundle.tar.zst", end=False)
    r = ob("inspect", bad)
    assert r.rc == 0 and "UNVERIFIED" in r.out
    assert ob("verify", bad, "--trust", pub).rc == 6


def test_sidecar_mismatch_is_exit_5(ob, built, pub):
    archive, _ = built
    sidecar = archive.parent / (archive.name + ".sha256")
    sidecar.write_text("0" * 64 + "  " + archive.name + "\n")
    r = ob("verify", archive, "--trust", pub)
    assert r.rc == 5 and "sidecar" in r.err


def test_kit_trust_store_is_used_when_no_trust_is_given(ob, built, pub, keydir, tmp_path):
    archive, _ = built
    kit = tmp_path / "kit"
    r = ob("install", archive, "--kit", kit)
    assert r.rc == 4 and "no trusted key" in r.err
    r = ob("trust", "add", pub, "--kit", kit, "--names", "other-*", "--json")
    assert r.rc == 0, r
    fp = r.json["result"]["fingerprint"]
    r = ob("install", archive, "--kit", kit)
    assert r.rc == 4 and "trusted only for bundles named other-*" in r.err
    assert ob("trust", "remove", fp, "--kit", kit).rc == 0
    assert ob("trust", "add", pub, "--kit", kit, "--names", "de*", "--not-after", "2000-01-01").rc == 0
    r = ob("install", archive, "--kit", kit)
    assert r.rc == 4 and "expired" in r.err
    assert ob("trust", "add", pub, "--kit", kit, "--names", "demo").rc == 0
    listed = ob("trust", "list", "--kit", kit, "--json").json["result"]["keys"]
    assert [k["names"] for k in listed] == [["demo"]]
    assert ob("verify", archive, "--kit", kit).rc == 0
    r = ob("install", archive, "--kit", kit, "--json")
    assert r.rc == 0 and r.json["result"]["signer"] == fp


def test_trust_folder_rules(ob, built, pub, tmp_path):
    archive, _ = built
    folder = tmp_path / "trust"
    folder.mkdir()
    (folder / "bundle.pub").write_bytes(pub.read_bytes())
    (folder / "README.txt").write_text("not a key, and not read")
    assert ob("verify", archive, "--trust", folder).rc == 0
    (folder / "broken.pub").write_text("garbage")
    r = ob("verify", archive, "--trust", folder)
    assert r.rc == 4 and "broken.pub" in r.err
    (folder / "broken.pub").unlink()
    os.chmod(folder, 0o777)
    r = ob("verify", archive, "--trust", folder)
    assert r.rc == 4 and "writable by group or others" in r.err
    os.chmod(folder, 0o755)
    os.chmod(folder / "bundle.pub", 0o666)
    assert ob("verify", archive, "--trust", folder).rc == 4


def test_untrusted_and_wrong_key(ob, built, keydir):
    archive, _ = built
    r = ob("verify", archive, "--trust", keydir / "other" / "bundle.pub", "--json")
    doc = envelope(r)
    assert r.rc == 4 and doc["error"]["class"] == "trust"
    r = ob("verify", archive)
    assert r.rc == 4 and "no trusted key" in r.err


def test_ecdsa_bundles_install_too(ob, keydir, tmp_path):
    archive = build(ob, tmp_path, keydir / "ec" / "bundle.key")
    r = ob("install", archive, "--kit", tmp_path / "kit", "--trust", keydir / "ec" / "bundle.pub")
    assert r.rc == 0, r


def test_both_front_doors_install_the_same_way(obi, built, pub, tmp_path):
    archive, _ = built
    r = obi("install", str(archive), "--kit", str(tmp_path / "kit"), "--trust", str(pub), "--json")
    assert r.rc == 0, r
    envelope(r)
    assert obi("status", "--kit", str(tmp_path / "kit")).rc == 0
    u = obi("install", str(archive))
    assert u.rc == 2 and len(u.err.strip().splitlines()) == 1


def test_usage_errors_are_one_sentence_exit_2(ob):
    for args in (["install"], ["build", "--nope"], ["verify", "/no/such/file.tar.zst", "--trust", "/no/key"],
                 ["keygen"], ["install", "x", "--kit"]):
        r = ob(*args)
        assert r.rc == 2, (args, r)
        assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err and "Usage:" not in r.err
    r = ob("verify", "/no/such/file", "--json")
    assert r.rc == 2 and envelope(r)["error"]["class"] == "usage"


@pytest.mark.slow
def test_memory_stays_flat_on_a_large_bundle(ob, pub, key, tmp_path):
    """Peak RSS of build, verify and install stays far below the payload size (256 MiB)."""
    big = tmp_path / "src" / "cfg" / "big.bin"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as fh:
        for _ in range(256):
            fh.write(os.urandom(1 << 20))
    m = write_manifest(tmp_path / "src", files={"cfg/app.yaml": b"a: 1\n"}, tenants=False)
    m.write_text(m.read_text() + "    - source: cfg/big.bin\n      target: data/big.bin\n")
    probe = [sys.executable, "-c", "import resource,subprocess,sys;"
             "r=subprocess.run(sys.argv[1:]);"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);sys.exit(r.returncode)"]
    cli = [str(Path(sys.executable).parent / "offline-bundle")]
    peaks = {}
    for name, args in (("build", ["build", str(m), "--key", str(key), "--out", str(tmp_path / "o"), "--quiet"]),
                       ("verify", ["verify", str(tmp_path / "o" / "demo-1.0.0.bundle.tar.zst"), "--trust", str(pub),
                                   "--quiet"]),
                       ("install", ["install", str(tmp_path / "o" / "demo-1.0.0.bundle.tar.zst"), "--kit",
                                    str(tmp_path / "kit"), "--trust", str(pub), "--quiet"])):
        proc = subprocess.run(probe + cli + args, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        peaks[name] = int(proc.stdout.strip().splitlines()[-1]) // 1024  # MiB
    assert all(v < 150 for v in peaks.values()), peaks


def test_sigterm_during_install_cleans_up_and_keeps_current(ob, pub, key, tmp_path):
    kit = tmp_path / "kit"
    assert ob("install", build(ob, tmp_path, key, "1.0.0"), "--kit", kit, "--trust", pub).rc == 0
    src = write_manifest(tmp_path / "big", version="2.0.0", tenants=False)
    with open(src.parent / "cfg" / "big.bin", "wb") as fh:
        for _ in range(400):
            fh.write(os.urandom(1 << 20))
    src.write_text(src.read_text() + "    - source: cfg/big.bin\n      target: data/big.bin\n")
    r = ob("build", src, "--key", key, "--out", tmp_path / "o2", "--quiet")
    archive = r.out.strip()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "offline-bundle"), "install", archive, "--kit", str(kit),
                             "--trust", str(pub)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = kit / ".state" / "staging"
    deadline = time.time() + 30
    while time.time() < deadline and not any(staging.iterdir()):
        time.sleep(0.01)
    time.sleep(0.2)
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert current_target(kit) == "../bundles/demo/1.0.0"
    assert not list(staging.iterdir())
    assert not (kit / "bundles" / "demo" / "2.0.0").exists()
    last = ob("status", "--kit", kit, "--json").json["result"]["bundles"][0]["last"]
    assert last["outcome"] == "failed" and "interrupted" in last["error"]


def test_nothing_is_written_before_the_signature_and_the_decisions(ob, built, keydir, tmp_path):
    """An untrusted archive leaves no staging, no quarantine, no version folder: only a failed receipt."""
    archive, _ = built
    kit = tmp_path / "kit"
    r = ob("install", archive, "--kit", kit, "--trust", keydir / "other" / "bundle.pub")
    assert r.rc == 4
    files = sorted(str(p.relative_to(kit)) for p in kit.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith(".state/receipts/")] == [".state/lock"]
    assert not list((kit / "bundles").iterdir()) and not list((kit / ".state" / "quarantine").iterdir())
    [receipt] = list((kit / ".state" / "receipts").iterdir())
    doc = json.loads(receipt.read_text())
    assert doc["outcome"] == "failed" and doc["phases"] == [dict(doc["phases"][0], phase=1, status="failed")]
