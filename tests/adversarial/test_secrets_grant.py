"""`install --secrets-group` against a hostile kit (issue 13 point 5; installer/kit/secretsaccess.py).

The grant changes groups and modes, as root: a link planted in KIT/secrets (the folder itself or a file in it), or a
hard link (a second name of /etc/shadow, say), must never carry that change to what it points at; a FIFO or device,
or a file or folder of another user, is refused before any mode changes; a key the containers do not need (the dev
CA's) keeps 0600; the owner stays ours, so no container user can rewrite a key; a folder that is merely group-
readable (umask 027) is no grant; and a bad option is one sentence and exit 2 before the archive is read. Each test
here fails against a grant that followed links, granted every file, gave files away or trusted mode bits alone.
"""

import os
import stat
from pathlib import Path

import pytest
from conftest import write_manifest

from installer.errors import LocalEnvironmentError, UsageError
from installer.kit.secretsaccess import grant, granted_gid, keeps_group, parse_group, recorded_gid
from tests.helpers.deploysection import TENANT_OBJECTS

GID = 4243


@pytest.fixture
def secrets(tmp_path):
    root = tmp_path / "kit"
    for folder, names in (("tls", ("ca.crt", "tls.crt", "tls.key", "ca.key")), ("token", ("token",))):
        (root / "secrets" / folder).mkdir(parents=True)
        os.chmod(root / "secrets" / folder, 0o700)
        for name in names:
            (root / "secrets" / folder / name).write_text("secret " + name)
            os.chmod(root / "secrets" / folder / name, 0o600)
    return root


def _grant(root: Path):
    (root / ".state").mkdir(mode=0o700, exist_ok=True)
    return grant(str(root / "secrets"), {"tls": ["ca.crt", "tls.crt", "tls.key"], "token": None}, GID, str(root),
                 str(root / ".state"))


def _mode(path: Path):
    st = os.lstat(path)
    return stat.S_IMODE(st.st_mode), st.st_gid


def test_only_the_files_the_containers_mount_are_granted(secrets):
    granted = _grant(secrets)
    assert _mode(secrets / "secrets" / "tls" / "tls.key") == (0o640, GID)
    assert _mode(secrets / "secrets" / "token" / "token") == (0o640, GID)
    assert _mode(secrets / "secrets" / "tls") == (0o750, GID)
    assert _mode(secrets / "secrets" / "tls" / "ca.key")[0] == 0o600       # the CA key stays the owner's
    assert "secrets/tls/ca.key" not in granted.paths
    assert os.lstat(secrets / "secrets" / "tls" / "tls.key").st_uid == os.geteuid()   # never given away
    assert recorded_gid(str(secrets / ".state")) == GID
    assert granted_gid(str(secrets / "secrets"), ["tls", "token"], GID) == GID


def test_a_folder_open_to_everyone_sets_no_group(secrets):
    _grant(secrets)
    os.chmod(secrets / "secrets" / "tls", 0o755)
    assert granted_gid(str(secrets / "secrets"), ["tls"], GID) is None


def test_group_readable_by_umask_is_no_grant(secrets):
    """An operator's umask of 027 leaves 0640 files and 0750 folders of their own group: no grant was made, nothing
    is recorded, so nothing keeps group access and compose gets no group."""
    folder = secrets / "secrets" / "token"
    os.chmod(folder, 0o750)
    os.chmod(folder / "token", 0o640)
    assert recorded_gid(str(secrets / ".state")) is None
    assert granted_gid(str(secrets / "secrets"), ["token"], None) is None
    assert not keeps_group(os.lstat(folder / "token"), None)
    # with a grant recorded for another group, the operator's own group is still no grant
    assert not keeps_group(os.lstat(folder / "token"), GID)


def test_a_hard_link_is_refused_and_its_other_name_untouched(secrets, tmp_path):
    victim = tmp_path / "shadow"
    victim.write_text("root:x:0:0")
    os.chmod(victim, 0o600)
    os.link(victim, secrets / "secrets" / "token" / "planted")
    with pytest.raises(LocalEnvironmentError, match="2 names"):
        _grant(secrets)
    assert _mode(victim) == (0o600, 0)
    assert recorded_gid(str(secrets / ".state")) is None


def test_a_file_of_another_user_is_refused(secrets):
    os.chown(secrets / "secrets" / "token" / "token", 10001, 10001)
    with pytest.raises(LocalEnvironmentError, match="belongs to another user"):
        _grant(secrets)
    assert _mode(secrets / "secrets" / "token" / "token") == (0o600, 10001)


def test_a_folder_of_another_user_is_refused(secrets):
    os.chown(secrets / "secrets" / "token", 10001, 10001)
    with pytest.raises(LocalEnvironmentError, match="belongs to another user"):
        _grant(secrets)
    assert _mode(secrets / "secrets" / "tls" / "tls.key") == (0o600, 0)


def test_a_linked_file_is_refused_and_its_target_untouched(secrets, tmp_path):
    victim = tmp_path / "shadow"
    victim.write_text("root:x:0:0")
    os.chmod(victim, 0o600)
    token = secrets / "secrets" / "token" / "token"
    token.unlink()
    token.symlink_to(victim)
    with pytest.raises(LocalEnvironmentError, match="symbolic link"):
        _grant(secrets)
    assert _mode(victim) == (0o600, 0)
    assert _mode(secrets / "secrets" / "tls" / "tls.key")[0] == 0o600     # nothing was changed before the refusal


def test_a_linked_folder_is_refused_and_its_target_untouched(secrets, tmp_path):
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "passwd").write_text("x")
    os.chmod(elsewhere / "passwd", 0o600)
    os.chmod(elsewhere, 0o700)
    folder = secrets / "secrets" / "token"
    for entry in folder.iterdir():
        entry.unlink()
    folder.rmdir()
    folder.symlink_to(elsewhere)
    with pytest.raises(LocalEnvironmentError, match="symbolic link"):
        _grant(secrets)
    assert _mode(elsewhere) == (0o700, 0) and _mode(elsewhere / "passwd") == (0o600, 0)


def test_a_fifo_is_refused_before_anything_changes(secrets):
    os.mkfifo(secrets / "secrets" / "token" / "pipe")
    with pytest.raises(LocalEnvironmentError, match="FIFO"):
        _grant(secrets)
    assert _mode(secrets / "secrets" / "tls" / "tls.key")[0] == 0o600


@pytest.mark.parametrize("group, message", [
    ("no-such-group-x", "does not exist on this host"),
    ("-1", "neither a number nor"),
    ("99999999999", "neither a number nor"),
    ("4294967295", "out of range"),
    ("10001:10001", "neither a number nor"),
    ("gr\x1b[31moup", "neither a number nor"),
])
def test_bad_options_are_one_sentence(group, message):
    with pytest.raises(UsageError, match=message) as caught:
        parse_group(group)
    assert "\x1b" not in str(caught.value)


def test_the_cli_refuses_a_bad_group_before_reading_the_archive(ob, tmp_path):
    kit = tmp_path / "kit"
    r = ob("install", tmp_path / "no-such-archive.tar.zst", "--kit", kit, "--secrets-group", "no-such-group-x")
    assert r.rc == 2 and "no-such-group-x does not exist on this host" in r.err and "Traceback" not in r.err
    assert not kit.exists()


def test_an_install_through_a_planted_link_fails_and_the_kit_keeps_no_current(ob, keydir, tmp_path):
    """A whole install: the token folder is a link the attacker planted; exit 9, and nothing it points at changed."""
    m = write_manifest(tmp_path / "src", name="demo", extra=TENANT_OBJECTS)
    r = ob("build", m, "--key", keydir / "ed" / "bundle.key", "--out", tmp_path / "out", "--json")
    assert r.rc == 0, r
    kit = tmp_path / "kit"
    (kit / "secrets").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "token").write_text("x")
    os.chmod(elsewhere / "token", 0o600)
    (kit / "secrets" / "token").symlink_to(elsewhere)
    r = ob("install", r.json["result"]["archive"], "--kit", kit, "--trust", keydir / "ed" / "bundle.pub",
           "--secrets-group", str(GID))
    assert r.rc == 9 and "symbolic link" in r.err, r
    assert _mode(elsewhere) == (0o700, 0) and _mode(elsewhere / "token") == (0o600, 0)
    assert not (kit / "current" / "demo").exists()



@pytest.mark.parametrize("plant", ["garbage", "link", "bad-gid"])
def test_a_hostile_grant_record_is_exit_9_never_followed(tmp_path, plant):
    state = tmp_path / ".state"
    state.mkdir(mode=0o700)
    record = state / "secrets-group.json"
    if plant == "garbage":
        record.write_bytes(b"\x00{not json")
    elif plant == "link":
        (tmp_path / "elsewhere.json").write_text('{"gid": 0}')
        record.symlink_to(tmp_path / "elsewhere.json")
    else:
        record.write_text('{"gid": true}')
    with pytest.raises(LocalEnvironmentError, match="secrets-group.json"):
        recorded_gid(str(state))
