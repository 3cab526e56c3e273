"""Issue 10 points 3 and 4: the kit is a security boundary.

Attackers here are local users. One finds a kit whose `.state` is writable by others and swaps in a trust
store of their own; another plants links in the kit so that a later command run by root changes files
outside it (a `secrets` link made `trust add` chmod a folder elsewhere, a `.state/lock` link made `gc`
truncate a root-owned file, a `deploy/<name>` link made `gc` delete another folder's contents).
Every command now refuses such a kit with exit 9, naming the path and the fix, and changes nothing.
"""

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, run_cmd, write_manifest

from installer.trust.signing import load_public_key


def build(ob, tmp_path, key, version, name="demo"):
    m = write_manifest(tmp_path / ("src-%s-%s" % (name, version)), name=name, version=version,
                       files={"cfg/app.yaml": version.encode()})
    r = ob("build", m, "--key", key, "--out", tmp_path / "out", "--json")
    assert r.rc == 0, r
    return r.json["result"]["archive"]


def test_a_world_writable_state_lets_nobody_swap_the_trust_store(ob, keydir, world_tmp):
    kit = world_tmp / "kit"
    assert ob("trust", "add", keydir / "ed" / "bundle.pub", "--kit", kit).rc == 0
    evil = build(ob, world_tmp, keydir / "other" / "bundle.key", "1.0.0", name="evil")
    os.chmod(evil, 0o644)
    # a careless `chmod -R o+w`: now any local user can write the kit's state
    for root, _, files in os.walk(kit / ".state"):
        for p in [root] + [os.path.join(root, f) for f in files]:
            os.chmod(p, os.stat(p).st_mode | 0o007)
    pub = world_tmp / "attacker.pub"
    shutil.copy(keydir / "other" / "bundle.pub", pub)
    fp = load_public_key(str(pub)).fingerprint.split(":")[1]
    script = ("set -e; cd %s/.state; mv trust trust.old; mkdir trust; cp %s trust/%s.pub; "
              "echo '{\"names\": [\"*\"], \"not_after\": null}' > trust/%s.json" % (kit, pub, fp, fp))
    assert run_cmd(["sh", "-c", script], user="nobody").rc == 0
    r = ob("install", evil, "--kit", kit)
    assert r.rc == 9, r
    assert ".state" in r.err and ("chmod -R go-w" in r.err or "chown -R" in r.err)
    assert not (kit / "bundles" / "evil").exists()
    for command in (["status"], ["trust", "list"], ["gc"], ["inventory"], ["verify"]):
        assert ob(*command, "--kit", kit).rc == 9, command


def test_a_state_owned_by_another_user_is_refused(ob, keydir, world_tmp, pub):
    kit = world_tmp / "kit"
    archive = build(ob, world_tmp, keydir / "ed" / "bundle.key", "1.0.0")
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    os.chown(kit / ".state" / "receipts", 65534, 65534)  # nobody: could rewrite the kit's history
    r = ob("status", "--kit", kit)
    assert r.rc == 9 and "belongs to nobody" in r.err and "chown" in r.err, r


def test_new_kits_keep_their_state_private(ob, built, pub, tmp_path):
    archive, _ = built
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    for folder in (".state", ".state/trust", ".state/receipts", ".state/staging", ".state/quarantine", "secrets"):
        assert stat.S_IMODE(os.stat(kit / folder).st_mode) == 0o700, folder
    assert not (kit / ".state" / "runtime").exists()  # the standalone runtime never lives in a kit


def test_a_secrets_link_does_not_make_trust_add_chmod_outside_the_kit(ob, pub, tmp_path):
    kit = tmp_path / "kit"
    assert ob("trust", "add", pub, "--kit", kit).rc == 0
    victim = tmp_path / "shared"
    victim.mkdir(mode=0o755)
    os.chmod(victim, 0o755)
    shutil.rmtree(kit / "secrets")
    (kit / "secrets").symlink_to(victim)
    r = ob("trust", "add", pub, "--kit", kit)
    assert r.rc == 9 and "symbolic link" in r.err, r
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o755


def test_a_lock_link_does_not_let_gc_truncate_a_file(ob, built, pub, tmp_path):
    archive, _ = built
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    victim = tmp_path / "passwd-like"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (kit / ".state" / "lock").unlink()
    (kit / ".state" / "lock").symlink_to(victim)
    r = ob("gc", "--kit", kit)
    assert r.rc == 9 and "symbolic link" in r.err, r
    assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_a_deploy_link_does_not_let_gc_delete_outside_the_kit(ob, key, pub, tmp_path):
    kit = tmp_path / "kit"
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        assert ob("install", build(ob, tmp_path, key, version), "--kit", kit, "--trust", pub).rc == 0
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "1.0.0").mkdir(parents=True)
    (elsewhere / "1.0.0" / "precious.txt").write_text("keep me\n")
    (kit / "deploy" / "demo").symlink_to(elsewhere)
    r = ob("gc", "--kit", kit, "--keep", "1")
    assert r.rc == 9 and "deploy/demo" in r.err, r
    assert (elsewhere / "1.0.0" / "precious.txt").read_text() == "keep me\n"
    assert (kit / "bundles" / "demo" / "1.0.0").is_dir()  # nothing was removed


@pytest.mark.parametrize("where", ["current", "bundles"])
def test_links_in_place_of_versions_or_current_are_refused(ob, built, pub, tmp_path, where):
    archive, _ = built
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    if where == "current":
        (kit / "current" / "demo").unlink()
        (kit / "current" / "demo").symlink_to(outside)
        expected = "current/demo"
    else:
        os.chmod(kit / "bundles" / "demo", 0o755)
        (kit / "bundles" / "demo" / "2.0.0").symlink_to(outside)
        expected = "bundles/demo/2.0.0"
    for command in (["status"], ["inventory"], ["gc"]):
        r = ob(*command, "--kit", kit)
        assert r.rc == 9 and expected in r.err, (command, r)


def test_a_broken_receipt_is_an_error_not_a_lower_downgrade_floor(ob, key, pub, tmp_path):
    kit = tmp_path / "kit"
    v1, v2 = build(ob, tmp_path, key, "1.0.0"), build(ob, tmp_path, key, "2.0.0")
    assert ob("install", v1, "--kit", kit, "--trust", pub).rc == 0
    assert ob("install", v2, "--kit", kit, "--trust", pub).rc == 0
    # the attacker breaks the receipt that recorded 2.0.0 being made current, and points current back
    receipts = sorted((kit / ".state" / "receipts").iterdir())
    newest = next(p for p in reversed(receipts) if json.loads(p.read_text()).get("version") == "2.0.0")
    newest.write_text(newest.read_text()[:-20])
    os.remove(kit / "current" / "demo")
    os.symlink("../bundles/demo/1.0.0", kit / "current" / "demo")
    r = ob("install", v1, "--kit", kit, "--trust", pub)  # 1.0.0 is current: before the fix, exit 0
    assert r.rc == 9 and newest.name in r.err and "does not parse" in r.err, r
    assert ob("status", "--kit", kit).rc == 9


def test_a_damaged_scope_never_widens_what_a_key_may_sign(ob, keydir, tmp_path):
    """Before the fix a scope file whose `names` was empty or missing meant "every name"."""
    kit = tmp_path / "kit"
    assert ob("trust", "add", keydir / "other" / "bundle.pub", "--names", "sandbox-*", "--kit", kit).rc == 0
    scope = next((kit / ".state" / "trust").glob("*.json"))
    archive = build(ob, tmp_path, keydir / "other" / "bundle.key", "1.0.0", name="prod")
    for damaged in ('{"names": [], "not_after": null}', '{"not_after": null}', '{"names": "prod", "not_after": 7}'):
        scope.write_text(damaged)
        r = ob("install", archive, "--kit", kit)
        assert r.rc == 4 and scope.name in r.err, (damaged, r)
        assert not (kit / "bundles" / "prod").exists()


def test_a_umask_of_002_never_makes_the_kit_refuse_itself(ob, key, pub, tmp_path):
    """Many distributions give users umask 002: the kit must still pass its own check on the next command."""
    kit = tmp_path / "kit"
    ob_path = BIN / "offline-bundle"
    v1 = build(ob, tmp_path, key, "1.0.0")
    broken = tmp_path / "broken.bundle.tar.zst"
    m = write_manifest(tmp_path / "big", version="2.0.0", files={"cfg/big.bin": os.urandom(300_000)})
    built = ob("build", m, "--key", key, "--out", tmp_path / "out", "--json")
    data = Path(built.json["result"]["archive"]).read_bytes()
    broken.write_bytes(data[:len(data) * 3 // 4])  # truncated: a failed install, its payload kept
    script = ("umask 002; %s install %s --kit %s --trust %s && %s install %s --kit %s --trust %s --keep-failed; "
              "test $? -ne 0" % (ob_path, v1, kit, pub, ob_path, broken, kit, pub))
    assert subprocess.run(["sh", "-c", script]).returncode == 0
    assert list((kit / ".state" / "quarantine").iterdir())  # the kept payload is part of the state checked
    for command in (["status"], ["verify", "--trust", pub], ["gc"], ["trust", "list"]):
        r = ob(*command, "--kit", kit)
        assert r.rc == 0, (command, r)
