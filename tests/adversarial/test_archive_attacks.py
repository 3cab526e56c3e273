"""Archives crafted to hurt: unsigned, decompression bombs, huge windows — refused fast, nothing changed."""

import os
import shutil
import struct
import time
from pathlib import Path

import pytest
from conftest import write_manifest
from tests.helpers.craft import Entry, read_entries, tar_bytes, write_archive

from installer.format.tarstream import member_header

BLOCK_MAX = 128 * 1024


def zstd_frame(prefix: bytes, zero_run: int, window_log: int = 20) -> bytes:
    """A hand-made zstd frame: ``prefix`` in raw blocks, then ``zero_run`` zero bytes as RLE blocks.

    RLE blocks cost 4 bytes per 128 KiB, so a 20 GB run of zeros is a 640 KB file made in a blink.
    """
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out.append(0x00)                              # no content size, not single segment, no checksum
    out.append((window_log - 10) << 3)            # window descriptor: 2**window_log bytes
    blocks = []
    for i in range(0, len(prefix), BLOCK_MAX):
        chunk = prefix[i:i + BLOCK_MAX]
        blocks.append((0, len(chunk), chunk))    # raw block
    left = zero_run
    while left:
        n = min(left, BLOCK_MAX)
        blocks.append((1, n, b"\0"))              # RLE block: n copies of one byte
        left -= n
    for index, (kind, size, payload) in enumerate(blocks):
        last = 1 if index == len(blocks) - 1 else 0
        header = last | (kind << 1) | (size << 3)
        out += struct.pack("<I", header)[:3] + payload
    return bytes(out)


@pytest.fixture
def kit_and_v2(ob, key, pub, tmp_path, built):
    archive, _ = built
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    src = write_manifest(tmp_path / "v2", version="2.0.0")
    r = ob("build", src, "--key", key, "--out", tmp_path / "out2", "--json")
    return kit, Path(r.json["result"]["archive"])


def test_a_20_gb_run_of_zeros_is_refused_at_its_header_in_seconds(ob, pub, tmp_path, kit_and_v2):
    kit, v2 = kit_and_v2
    head = read_entries(v2)[:3]
    prefix = tar_bytes(head, end=False) + member_header("zzz/zeros.bin", 20 * 1024 ** 3, 0, False)
    bomb = tmp_path / "bomb.bundle.tar.zst"
    bomb.write_bytes(zstd_frame(prefix, 20 * 1024 ** 3))
    assert bomb.stat().st_size < 1_000_000
    before = shutil.disk_usage(tmp_path).free
    started = time.time()
    r = ob("install", bomb, "--kit", kit, "--trust", pub)
    assert time.time() - started < 15
    assert r.rc == 5 and "not listed" in r.err
    assert before - shutil.disk_usage(tmp_path).free < 50 * 1024 ** 2  # nothing like 20 GB was written
    assert os.readlink(kit / "current" / "demo") == "../bundles/demo/1.0.0"
    assert not list((kit / ".state" / "staging").iterdir())


def test_a_listed_member_of_absurd_declared_size_is_refused_at_its_header(ob, pub, tmp_path, kit_and_v2):
    kit, v2 = kit_and_v2
    entries = read_entries(v2)
    # the first payload member's header claims 20 GB while bundle.json declares its real size
    victim = entries[3]
    prefix = tar_bytes(entries[:3], end=False) + member_header(victim.path, 20 * 1024 ** 3, 0, False)
    bomb = tmp_path / "bomb.bundle.tar.zst"
    bomb.write_bytes(zstd_frame(prefix, 20 * 1024 ** 3))
    started = time.time()
    r = ob("install", bomb, "--kit", kit, "--trust", pub)
    assert r.rc == 5 and "declares" in r.err and time.time() - started < 15


def test_a_frame_demanding_a_huge_window_is_refused(ob, pub, tmp_path, kit_and_v2):
    kit, v2 = kit_and_v2
    prefix = tar_bytes(read_entries(v2), end=True)
    for window_log in (31, 28):
        huge = tmp_path / ("huge%d.bundle.tar.zst" % window_log)
        huge.write_bytes(zstd_frame(prefix, 0, window_log=window_log))
        r = ob("install", huge, "--kit", kit, "--trust", pub)
        assert r.rc == 3 and "zstd" in r.err, (window_log, r)
    ok = tmp_path / "ok.bundle.tar.zst"
    ok.write_bytes(zstd_frame(prefix, 0, window_log=20))
    assert ob("verify", ok, "--trust", pub).rc == 0  # the hand-made frame itself is valid


def test_an_unsigned_archive_is_exit_4(ob, pub, tmp_path, kit_and_v2):
    kit, v2 = kit_and_v2
    entries = [e for e in read_entries(v2) if e.path != "SHA256SUMS.sig"]
    bad = write_archive(entries, tmp_path / "unsigned.bundle.tar.zst")
    r = ob("install", bad, "--kit", kit, "--trust", pub)
    assert r.rc == 4 and "not signed" in r.err
    empty_sig = read_entries(v2)
    empty_sig[1] = Entry("SHA256SUMS.sig", b"")
    bad = write_archive(empty_sig, tmp_path / "emptysig.bundle.tar.zst")
    assert ob("install", bad, "--kit", kit, "--trust", pub).rc == 4
