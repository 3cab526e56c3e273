"""Permission rules proved as a user who is not root (CI runs as root, where chmod proves nothing).

`nobody` cannot enter the test virtualenv (its interpreter lives under /root), so these tests run the
installer the way an air-gapped host would: the system python3 in isolated mode (-I) on a copy of the
standard-library-only `installer` package, with the zstd program as decoder when zstandard is absent.
"""

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import run_cmd, write_manifest
from tests.helpers.craft import get, read_entries, write_archive

import installer

USER = "nobody"
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def as_user(world_tmp):
    lib = world_tmp / "lib"
    shutil.copytree(Path(installer.__file__).parent, lib / "installer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(lib)], check=True)
    boot = "import sys; sys.path.insert(0, %r); from installer.cli.main import entry; entry()" % str(lib)

    def run(*args, **kw):
        assert os.path.exists(SYSTEM_PYTHON), "the system python3 is needed (scripts/setup.sh installs it)"
        return run_cmd([SYSTEM_PYTHON, "-I", "-c", boot] + [str(a) for a in args], user=USER, **kw)
    return run


@pytest.fixture
def setup(ob, keydir, world_tmp):
    """Archives and a public key readable by nobody, and a kit folder owned by nobody."""
    out = {}
    for version in ("1.0.0", "2.0.0"):
        src = write_manifest(world_tmp / ("src-" + version), version=version)
        r = ob("build", src, "--key", keydir / "ed" / "bundle.key", "--out", world_tmp / "out", "--json")
        assert r.rc == 0, r
        out[version] = Path(r.json["result"]["archive"])
    pub = world_tmp / "bundle.pub"
    shutil.copy(keydir / "ed" / "bundle.pub", pub)
    kit = world_tmp / "kit"
    kit.mkdir()
    subprocess.run(["chown", USER, str(kit)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(world_tmp / "out"), str(pub)], check=True)
    return out, pub, kit


def test_install_as_a_normal_user_yields_a_tree_that_user_cannot_change(setup, as_user):
    archives, pub, kit = setup
    r = as_user("install", archives["1.0.0"], "--kit", kit, "--trust", pub)
    assert r.rc == 0, r
    version_dir = kit / "bundles" / "demo" / "1.0.0"
    assert os.stat(version_dir).st_uid != 0
    probes = {
        "write a file": ["sh", "-c", "echo x >> %s" % (version_dir / "config" / "app.yaml")],
        "create a file": ["touch", str(version_dir / "new")],
        "delete a file": ["rm", "-f", str(version_dir / "config" / "app.yaml")],
        # a 0555 folder cannot be moved to another parent (its '..' would change)
        "move the version folder out": ["mv", str(version_dir), str(kit / "moved")],
        "rename a subfolder": ["mv", str(version_dir / "config"), str(version_dir / "cfg")],
        "move a subfolder out": ["mv", str(version_dir / "config"), str(kit / "cfg")],
    }
    for what, cmd in probes.items():
        p = subprocess.run(["runuser", "-u", USER, "--"] + cmd, capture_output=True)
        assert p.returncode != 0, "%s succeeded as %s" % (what, USER)
    check = subprocess.run(["runuser", "-u", USER, "--", "sha256sum", "-c", "--strict", "--quiet", "SHA256SUMS"],
                           cwd=kit / "current" / "demo", capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_second_version_installs_beside_the_read_only_first(setup, as_user):
    archives, pub, kit = setup
    assert as_user("install", archives["1.0.0"], "--kit", kit, "--trust", pub).rc == 0
    r = as_user("install", archives["2.0.0"], "--kit", kit, "--trust", pub)
    assert r.rc == 0, r
    assert os.readlink(kit / "current" / "demo") == "../bundles/demo/2.0.0"
    assert stat.S_IMODE(os.stat(kit / "bundles" / "demo" / "1.0.0").st_mode) == 0o555


def test_a_failed_install_as_a_normal_user_changes_nothing(setup, world_tmp, as_user):
    archives, pub, kit = setup
    assert as_user("install", archives["1.0.0"], "--kit", kit, "--trust", pub).rc == 0
    entries = read_entries(archives["2.0.0"])
    get(entries, "config/app.yaml").data = b"listen: 6666\n"
    bad = write_archive(entries, world_tmp / "out" / "bad.bundle.tar.zst")
    os.chmod(bad, 0o644)
    r = as_user("install", bad, "--kit", kit, "--trust", pub)
    assert r.rc == 5, r
    assert os.readlink(kit / "current" / "demo") == "../bundles/demo/1.0.0"
    assert not (kit / "bundles" / "demo" / "2.0.0").exists()
    assert not list((kit / ".state" / "staging").iterdir())
    assert all(not (q / "tree").exists() for q in (kit / ".state" / "quarantine").iterdir())


def test_a_kit_the_user_cannot_write_is_exit_9(setup, world_tmp, as_user):
    archives, pub, _ = setup
    root_kit = world_tmp / "rootkit"
    root_kit.mkdir()
    os.chmod(root_kit, 0o755)
    r = as_user("install", archives["1.0.0"], "--kit", root_kit, "--trust", pub)
    assert r.rc == 9, r
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_an_unreadable_key_in_a_trust_folder_is_exit_4(setup, world_tmp, as_user):
    archives, pub, kit = setup
    folder = world_tmp / "trust"
    folder.mkdir()
    (folder / "a.pub").write_bytes(pub.read_bytes())
    (folder / "b.pub").write_bytes(pub.read_bytes())
    os.chmod(folder, 0o755)
    os.chmod(folder / "a.pub", 0o644)
    os.chmod(folder / "b.pub", 0o600)  # root's, unreadable for nobody
    r = as_user("verify", archives["1.0.0"], "--trust", folder)
    assert r.rc == 4 and "b.pub" in r.err and "Traceback" not in r.err


def test_secrets_group_as_a_normal_user(setup, as_user):
    """--secrets-group (issue 13 point 5) as nobody: its own group works; a group it is not in is one sentence,
    exit 9, and the secrets stay owner-only."""
    archives, pub, kit = setup
    r = as_user("install", archives["1.0.0"], "--kit", kit, "--trust", pub, "--dev-tls", "--secrets-group", "4242")
    assert r.rc == 9 and "cannot give" in r.err and "group 4242" in r.err and "Traceback" not in r.err, r
    key = kit / "secrets" / "tls" / "tls.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (kit / "current" / "demo").exists()
    own = str(pwd.getpwnam(USER).pw_gid)  # nobody's own group, which it may give its files to
    r = as_user("install", archives["1.0.0"], "--kit", kit, "--trust", pub, "--secrets-group", own)
    assert r.rc == 0, r
    assert (stat.S_IMODE(key.stat().st_mode), key.stat().st_gid) == (0o640, int(own))
