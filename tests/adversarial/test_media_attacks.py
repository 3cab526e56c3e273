"""A hostile removable medium: a split set whose parts, parts list or sidecar are not regular files.

The attacker controls the stick, not the command line: a part that is a symbolic link to /dev/zero,
a FIFO nobody writes to, or a device node would make a naive reader wait or read forever. verify and
install must finish in seconds with exit 6 (unsafe: the medium holds a link, FIFO or device where a
file belongs) and one sentence naming it, and leave the kit untouched.
"""

import os
import stat
from pathlib import Path

import pytest
from conftest import write_manifest

BASE = "demo-1.0.0.bundle.tar.zst"
FAST = 20  # seconds; a hang is killed here and fails the test (subprocess.TimeoutExpired)


@pytest.fixture
def medium(ob, key, tmp_path):
    """A split bundle as it arrives on a USB stick: four 1 MiB parts, their list and the sidecar."""
    src = write_manifest(tmp_path / "src", files={"cfg/big.bin": os.urandom(3_500_000), "cfg/app.yaml": b"a: 1\n"})
    r = ob("build", src, "--key", key, "--out", tmp_path / "stick", "--split-size", "1M", "--json")
    assert r.rc == 0, r
    return tmp_path / "stick"


def _replace(path: Path, how: str) -> str:
    """Swap a file on the medium for something that is not a regular file; returns what it now is."""
    path.unlink()
    if how == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
        return "symbolic link"
    if how == "fifo":
        os.mkfifo(path)
        return "FIFO"
    os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # the /dev/zero device, made on the stick
    return "character device"


@pytest.mark.parametrize("how", ["symlink to /dev/zero", "fifo", "character device"])
def test_a_part_that_is_not_a_regular_file_is_exit_6_in_seconds(ob, pub, medium, tmp_path, how):
    what = _replace(medium / (BASE + ".001"), how)
    r = ob("verify", medium / (BASE + ".000"), "--trust", pub, timeout=FAST)
    assert r.rc == 6, r
    assert "part %s.001 is a %s" % (BASE, what) in r.err and "not a regular file" in r.err
    r = ob("install", medium, "--kit", tmp_path / "kit", "--trust", pub, timeout=FAST)
    assert r.rc == 6, r
    assert not (tmp_path / "kit" / "current" / "demo").exists()
    assert not (tmp_path / "kit" / "bundles" / "demo").exists()


@pytest.mark.parametrize("name", [BASE + ".parts.sha256", BASE + ".sha256"])
@pytest.mark.parametrize("how", ["symlink to /dev/zero", "fifo"])
def test_a_parts_list_or_sidecar_that_is_not_a_regular_file_is_exit_6_in_seconds(ob, pub, medium, tmp_path,
                                                                                   name, how):
    what = _replace(medium / name, how)
    for argv in (["verify", medium / (BASE + ".000")], ["install", medium, "--kit", tmp_path / "kit"]):
        r = ob(*argv, "--trust", pub, timeout=FAST)
        assert r.rc == 6, (argv, r)
        assert ("is a %s, not a regular file" % what) in r.err and name in r.err, r
    assert not (tmp_path / "kit" / "current" / "demo").exists()


def test_the_user_may_name_a_symlink_to_an_archive_but_not_a_fifo(ob, pub, built, tmp_path):
    archive, _ = built
    link = tmp_path / "my-link.bundle.tar.zst"
    link.symlink_to(archive)
    r = ob("verify", link, "--trust", pub, timeout=FAST)
    assert r.rc == 0, r
    fifo = tmp_path / "pipe.bundle.tar.zst"
    os.mkfifo(fifo)
    for argv in (["verify", fifo, "--trust", pub], ["inspect", fifo], ["install", fifo, "--kit", tmp_path / "kit",
                                                                       "--trust", pub]):
        r = ob(*argv, timeout=FAST)
        assert r.rc == 2 and "is a FIFO, not a regular file" in r.err, (argv, r)
