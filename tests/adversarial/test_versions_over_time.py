"""Issue 10 points 6, 7 and 8: versions and trust over time.

6. SemVer precedence ignores build metadata: a signed 2.0.0+build.1 replaced a current 2.0.0+build.2
   without --allow-downgrade. Equal precedence with another version string or bundle_id is now exit 8.
7. rollback made current a version whose signer had since been removed or narrowed: the target is now
   checked against today's trust store (exit 4), and re-hashed (exit 5).
8. a delta hard-linked an omitted file from an older version and kept its mode: a file signed
   `executable: false` was installed 0555. The installed mode is now always the signed one.
"""

import os
import stat
from pathlib import Path

from conftest import write_manifest


def build(ob, key, folder: Path, version: str, files=None, *extra):
    m = write_manifest(folder, version=version, files=files or {"cfg/app.yaml": version.encode()})
    r = ob("build", m, "--key", key, "--out", folder / "out", "--json", *extra)
    assert r.rc == 0, r
    return r.json["result"]["archive"]


def current(kit: Path) -> str:
    return os.readlink(kit / "current" / "demo")


def test_build_metadata_does_not_make_an_older_build_newer(ob, key, pub, tmp_path):
    kit = tmp_path / "kit"
    b2 = build(ob, key, tmp_path / "b2", "2.0.0+build.2")
    b1 = build(ob, key, tmp_path / "b1", "2.0.0+build.1", {"cfg/app.yaml": b"the older build\n"})
    assert ob("install", b2, "--kit", kit, "--trust", pub).rc == 0
    r = ob("install", b1, "--kit", kit, "--trust", pub)
    assert r.rc == 8 and "same precedence" in r.err and "bump the version" in r.err, r
    assert current(kit) == "../bundles/demo/2.0.0+build.2"
    assert not (kit / "bundles" / "demo" / "2.0.0+build.1").exists()
    # even with --allow-downgrade: this is not a downgrade, it is the same version with other content
    r = ob("install", b1, "--kit", kit, "--trust", pub, "--allow-downgrade", "--reason", "test")
    assert r.rc == 8, r


def test_a_version_gc_removed_cannot_come_back_with_other_content(ob, key, pub, tmp_path):
    kit = tmp_path / "kit"
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        assert ob("install", build(ob, key, tmp_path / v, v), "--kit", kit, "--trust", pub).rc == 0
    assert ob("gc", "--kit", kit, "--keep", "1").rc == 0
    other = build(ob, key, tmp_path / "again", "1.0.0", {"cfg/app.yaml": b"different\n"})
    r = ob("install", other, "--kit", kit, "--trust", pub, "--allow-downgrade", "--reason", "test")
    assert r.rc == 8 and "installed before" in r.err, r


def test_rollback_checks_the_target_against_todays_trust_store(ob, keydir, tmp_path):
    kit = tmp_path / "kit"
    ed, other = keydir / "ed", keydir / "other"
    assert ob("trust", "add", ed / "bundle.pub", "--kit", kit).rc == 0
    assert ob("install", build(ob, ed / "bundle.key", tmp_path / "v1", "1.0.0"), "--kit", kit).rc == 0
    assert ob("trust", "add", other / "bundle.pub", "--kit", kit).rc == 0
    assert ob("install", build(ob, other / "bundle.key", tmp_path / "v2", "2.0.0"), "--kit", kit).rc == 0
    fp = ob("trust", "list", "--kit", kit, "--json").json["result"]["keys"]
    ed_fp = next(k["fingerprint"] for k in fp if k["fingerprint"] != _fp(ob, other / "bundle.pub"))
    assert ob("trust", "remove", ed_fp, "--kit", kit).rc == 0  # 1.0.0's signer is no longer trusted
    r = ob("rollback", "demo", "--kit", kit)
    assert r.rc == 4 and "not signed by a key trusted today" in r.err, r
    assert current(kit) == "../bundles/demo/2.0.0"
    # trusted again, but narrowed to other names: still refused
    assert ob("trust", "add", ed / "bundle.pub", "--names", "other-*", "--kit", kit).rc == 0
    r = ob("rollback", "demo", "--kit", kit)
    assert r.rc == 4 and "only for bundles named other-*" in r.err, r
    assert current(kit) == "../bundles/demo/2.0.0"
    assert ob("trust", "add", ed / "bundle.pub", "--names", "demo", "--kit", kit).rc == 0
    assert ob("rollback", "demo", "--kit", kit).rc == 0
    assert current(kit) == "../bundles/demo/1.0.0"


def test_rollback_refuses_a_damaged_target(ob, key, pub, tmp_path):
    kit = tmp_path / "kit"
    assert ob("trust", "add", pub, "--kit", kit).rc == 0
    assert ob("install", build(ob, key, tmp_path / "v1", "1.0.0"), "--kit", kit).rc == 0
    assert ob("install", build(ob, key, tmp_path / "v2", "2.0.0"), "--kit", kit).rc == 0
    app = kit / "bundles" / "demo" / "1.0.0" / "config" / "app.yaml"
    os.chmod(app.parent, 0o755)
    os.chmod(app, 0o644)
    app.write_bytes(b"tampered\n")
    os.chmod(app, 0o444)
    os.chmod(app.parent, 0o555)
    r = ob("rollback", "demo", "--kit", kit)
    assert r.rc == 5 and "config/app.yaml" in r.err, r
    assert current(kit) == "../bundles/demo/2.0.0"


def _fp(ob, pub):
    from installer.trust.signing import load_public_key
    return load_public_key(str(pub)).fingerprint


def test_a_delta_never_installs_a_file_with_another_mode_than_signed(ob, key, pub, tmp_path):
    script = b"#!/bin/sh\necho hi\n"
    kit = tmp_path / "kit"
    v1 = build(ob, key, tmp_path / "v1", "1.0.0", {"cfg/run.sh": script})           # executable: true (0555)
    assert ob("install", v1, "--kit", kit, "--trust", pub).rc == 0
    m = write_manifest(tmp_path / "v2", version="1.1.0", files={"cfg/run.txt": script})  # same bytes, not executable
    r = ob("build", m, "--key", key, "--out", tmp_path / "v2" / "out", "--delta-from", v1, "--json")
    assert r.rc == 0 and r.json["result"]["delta"]["omitted"] >= 1, r
    r = ob("install", r.json["result"]["archive"], "--kit", kit, "--trust", pub)
    assert r.rc == 0, r
    installed = kit / "bundles" / "demo" / "1.1.0" / "config" / "run.txt"
    assert stat.S_IMODE(os.stat(installed).st_mode) == 0o444
    assert stat.S_IMODE(os.stat(kit / "bundles" / "demo" / "1.0.0" / "config" / "run.sh").st_mode) == 0o555
    assert ob("verify", "--kit", kit, "--trust", pub).rc == 0
