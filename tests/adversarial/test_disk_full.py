"""Disk full (issue 6, item 4): the filesystem runs out mid-stream because someone else fills it.

Install: a 64 MiB tmpfs holds a kit with demo 1.0.0; 2.0.0 carries a 44 MiB payload, which passes the
installer's preflight (payload + SPACE_MARGIN + a page per member < free space). Once `.state/staging` shows
content another writer fills the filesystem, so the stream hits ENOSPC → exit 9 with one sentence and no
traceback; 1.0.0 stays current and verified, nothing partial is left (staging empty, no payload in the
quarantine, no temporary file anywhere in the kit), and after the space is freed the same install succeeds.
The filler starts once a few MiB are staged ("paused": the installer is SIGSTOPped while the filesystem is
filled, then SIGCONTed — deterministic; "concurrent": a thread races it for the last bytes).

Build: `build --out` on a tmpfs too small for the archive (whole, and cut with --split-size) → exit 9 and
no partial or temporary archive (`.building-*`) left in the folder; likewise when the archive fits but its
`.sha256` sidecar (or the parts list) does not.
"""

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.helpers import procs
from conftest import Run, write_manifest

from installer.kit.staging import SPACE_MARGIN

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")

NAME = "demo"
CLI = Path(sys.executable).parent / "offline-bundle"
MiB = 1 << 20


# --------------------------------------------------------------------------------------------------
# helpers

@contextlib.contextmanager
def tmpfs(path: Path, size: int):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path) -> Path:
    """Take every free byte of the filesystem: the bulk with fallocate (fast enough to win a race with the
    installer, retried while that race shrinks the free space), the rest with writes halving down to a page."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chunk = b"\xa5" * MiB
    size = MiB
    try:
        while free_bytes(path) > MiB:
            try:
                os.posix_fallocate(fd, os.fstat(fd).st_size, free_bytes(path) - MiB // 2)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        while size >= 4096:
            try:
                os.write(fd, chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
    finally:
        os.close(fd)
    assert free_bytes(path) < 4096
    return filler


def random_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for _ in range(size // MiB):
            fh.write(os.urandom(MiB))
        fh.write(os.urandom(size % MiB))


def big_manifest(folder: Path, version: str, size: int) -> Path:
    """demo VERSION: two small config files and `data/big.bin` of ``size`` random bytes."""
    m = write_manifest(folder, version=version, files={"cfg/app.yaml": ("v: %s\n" % version).encode()},
                       tenants=False)
    random_file(folder / "cfg" / "big.bin", size)
    m.write_text(m.read_text() + "    - source: cfg/big.bin\n      target: data/big.bin\n")
    return m


def build(ob, manifest: Path, key, out: Path, cache: Path, *extra):
    return ob("build", manifest, "--key", key, "--out", out, "--cache", cache, *extra)


def one_sentence(r, *words) -> None:
    """Exit 9, one line on stderr naming the problem, no traceback, nothing on stdout."""
    assert r.rc == 9, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("offline-bundle: "), r.err
    assert "Traceback" not in r.err and "Errno" not in r.err, r.err
    assert any(w in lines[0].lower() for w in words), r.err


def sums_ok(folder: Path) -> None:
    check = subprocess.run(["sha256sum", "-c", "--strict", "--quiet", "SHA256SUMS"], cwd=folder,
                           capture_output=True, text=True)
    assert check.returncode == 0, (folder, check.stdout, check.stderr)


def current_of(kit: Path):
    link = kit / "current" / NAME
    return os.readlink(link) if os.path.islink(link) else None


def debris(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if ".tmp" in p.name or ".old-" in p.name or p.name.startswith(".building-"))


def quarantine_payload(kit: Path) -> list:
    """Anything in the quarantine beyond the reason, the member list and SHA256SUMS."""
    out = []
    for q in (kit / ".state" / "quarantine").iterdir():
        out += [str(p.relative_to(kit)) for p in q.rglob("*")
                if p.relative_to(q).parts[0] not in ("reason.json", "members.txt", "SHA256SUMS")]
    return out


def staged_bytes(staging: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(staging):
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, f)).st_size
    return total


def wait_for(predicate, proc) -> bool:
    return procs.wait_for(predicate, proc, timeout=30.0, step=0.001)


# --------------------------------------------------------------------------------------------------
# install

KIT_FS = 64 * MiB
PAYLOAD = 44 * MiB
STAGED_FIRST = 4 * MiB


@pytest.fixture(scope="module")
def archives(tmp_path_factory, ob, keydir):
    base = tmp_path_factory.mktemp("diskfull")
    key = keydir / "ed" / "bundle.key"
    out = {}
    for version, size in (("1.0.0", 64 * 1024), ("2.0.0", PAYLOAD)):
        r = build(ob, big_manifest(base / version, version, size), key, base / "out", base / "cache", "--quiet")
        assert r.rc == 0, r
        out[version] = Path(r.out.strip().splitlines()[-1])
    return out


def test_the_payload_passes_the_preflight_on_this_filesystem(archives, tmp_path):
    """The scenario is only meaningful if decide() lets the install start: check the arithmetic."""
    meta = json.loads(subprocess.run(
        [str(CLI), "inspect", str(archives["2.0.0"]), "--json"], capture_output=True, text=True).stdout)["result"]
    needed = meta["total_size"] + 4096 * (len(meta["members"]) + 3) + 64 * 1024 + SPACE_MARGIN
    with tmpfs(tmp_path / "fs", KIT_FS) as fs:
        assert needed < free_bytes(fs) - 1 * MiB, (needed >> 20, free_bytes(fs) >> 20)
        assert meta["total_size"] > free_bytes(fs) // 2  # and a filler can take the rest away mid-stream


def stop_and_fill(proc, fs: Path) -> None:
    """Freeze the installer, fill its filesystem from outside, let it run on: deterministic ENOSPC."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        fill(fs)
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def fill_concurrently(proc, fs: Path) -> threading.Thread:
    """Another writer racing the installer for the last bytes."""
    t = threading.Thread(target=fill, args=(fs,), daemon=True)
    t.start()
    return t


def run_out_of_space(ob, archives, pub, fs: Path, how: str) -> Run:
    """Install 1.0.0 on ``fs``, then 2.0.0 while the filesystem is filled from outside; returns the failed run."""
    kit = fs / "kit"
    assert ob("install", archives["1.0.0"], "--kit", kit, "--trust", pub).rc == 0
    staging = kit / ".state" / "staging"
    argv = [str(CLI), "install", str(archives["2.0.0"]), "--kit", str(kit), "--trust", str(pub)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    filler_thread = None
    try:
        # mid-stream: a few MiB of the payload are staged (room for the bookkeeping once it is deleted)
        assert wait_for(lambda: staged_bytes(staging) >= STAGED_FIRST, proc), "the stream never got going"
        if how == "paused":
            stop_and_fill(proc, fs)
        else:
            filler_thread = fill_concurrently(proc, fs)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if filler_thread is not None:
            filler_thread.join(30)
    assert (fs / "filler").exists()
    return Run(subprocess.CompletedProcess(argv, proc.returncode, out, err))


@pytest.mark.parametrize("how", ["paused", "concurrent"])
def test_running_out_of_space_mid_stream_is_exit_9_and_keeps_the_active_version(how, ob, archives, pub, tmp_path):
    with tmpfs(tmp_path / "fs", KIT_FS) as fs:
        kit = fs / "kit"
        r = run_out_of_space(ob, archives, pub, fs, how)
        one_sentence(r, "space")
        assert r.out == ""
        # the active version is intact and nothing of 2.0.0 is visible or left in staging
        assert current_of(kit) == "../bundles/%s/1.0.0" % NAME
        sums_ok(kit / "current" / NAME)
        assert sorted(os.listdir(kit / "bundles" / NAME)) == ["1.0.0"]
        assert list((kit / ".state" / "staging").iterdir()) == []
        st = ob("status", "--kit", kit, "--json")
        assert st.rc == 0 and st.json["result"]["bundles"][0]["current"] == "1.0.0", st


@pytest.mark.parametrize("how", ["paused", "concurrent"])
def test_running_out_of_space_mid_stream_leaves_nothing_partial_and_a_rerun_succeeds(how, ob, archives, pub,
                                                                                     tmp_path):
    with tmpfs(tmp_path / "fs", KIT_FS) as fs:
        kit = fs / "kit"
        r = run_out_of_space(ob, archives, pub, fs, how)
        assert r.rc == 9, r
        # nothing partial left: no payload kept in the quarantine, no temporary file anywhere in the kit
        assert quarantine_payload(kit) == []
        assert debris(kit) == []
        # the one sentence says what ran out, and where
        assert "no space left on the kit's filesystem while writing" in r.err, r.err
        # status tells the truth about the failed run (the payload is gone, so there is room to record it)
        [b] = ob("status", "--kit", kit, "--json").json["result"]["bundles"]
        assert b["current"] == "1.0.0" and b["last"]["version"] == "2.0.0" and b["last"]["outcome"] == "failed", b
        # free the space: the same install now succeeds, and leaves nothing behind either
        (fs / "filler").unlink()
        again = ob("install", archives["2.0.0"], "--kit", kit, "--trust", pub, "--json")
        assert again.rc == 0, again
        assert current_of(kit) == "../bundles/%s/2.0.0" % NAME
        sums_ok(kit / "current" / NAME)
        assert list((kit / ".state" / "staging").iterdir()) == []
        assert quarantine_payload(kit) == [] and debris(kit) == []


# --------------------------------------------------------------------------------------------------
# build

@pytest.fixture(scope="module")
def big_source(tmp_path_factory, ob, keydir):
    """A 12 MiB incompressible bundle, and the exact sizes of its archive and of its 4 MiB parts."""
    base = tmp_path_factory.mktemp("diskfull-build")
    m = big_manifest(base / "src", "1.0.0", 12 * MiB)
    key = keydir / "ed" / "bundle.key"
    r = build(ob, m, key, base / "ref", base / "cache", "--json")
    assert r.rc == 0, r
    archive = Path(r.json["result"]["archive"])
    r = build(ob, m, key, base / "ref-split", base / "cache", "--split-size", "4M", "--json")
    assert r.rc == 0, r
    parts = [os.path.getsize(p["path"]) for p in r.json["result"]["parts"]]
    return m, key, base / "cache", archive.stat().st_size, parts


def pages(n: int) -> int:
    return -(-n // 4096) * 4096


@pytest.mark.parametrize("split", [None, "1M"], ids=["whole", "split"])
def test_build_into_a_folder_too_small_is_exit_9_and_leaves_no_partial_archive(split, ob, big_source, tmp_path):
    manifest, key, cache, size, _parts = big_source
    with tmpfs(tmp_path / "fs", 8 * MiB) as fs:
        assert free_bytes(fs) < size
        out = fs / "out"
        r = build(ob, manifest, key, out, cache, *(["--split-size", split] if split else []))
        one_sentence(r, "space")
        assert os.listdir(out) == [], os.listdir(out)  # no archive, no part, no sidecar, no .building-*
        assert free_bytes(fs) == 8 * MiB  # every byte written was given back


def test_build_whose_sidecar_does_not_fit_leaves_no_temporary_file(ob, big_source, tmp_path):
    """The archive fills the folder to the last page; the 1-page `.sha256` sidecar then hits ENOSPC."""
    manifest, key, cache, size, _parts = big_source
    with tmpfs(tmp_path / "fs", pages(size)) as fs:
        out = fs / "out"
        r = build(ob, manifest, key, out, cache)
        one_sentence(r, "space")
        assert os.listdir(out) == [], os.listdir(out)  # a failed build leaves nothing, not even the archive


def test_split_build_whose_parts_list_does_not_fit_leaves_no_temporary_file(ob, big_source, tmp_path):
    manifest, key, cache, _size, parts = big_source
    with tmpfs(tmp_path / "fs", sum(pages(p) for p in parts)) as fs:
        out = fs / "out"
        r = build(ob, manifest, key, out, cache, "--split-size", "4M")
        one_sentence(r, "space")
        assert os.listdir(out) == [], os.listdir(out)  # a failed build leaves nothing, not even the archive
