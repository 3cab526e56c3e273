"""Split archives for removable media: parts, their list, install from the first part or the folder."""

import hashlib
import os
import subprocess

import pytest
from conftest import write_manifest

from bundler.seal.archive import FAT32, parse_size
from installer.errors import UsageError


@pytest.fixture
def split(ob, key, tmp_path):
    src = write_manifest(tmp_path / "src", files={"cfg/big.bin": os.urandom(3_500_000), "cfg/app.yaml": b"a: 1\n"})
    r = ob("build", src, "--key", key, "--out", tmp_path / "out", "--split-size", "1M", "--json")
    assert r.rc == 0, r
    return tmp_path / "out", r.json["result"]


def test_parts_and_their_list(split):
    out, res = split
    parts = sorted(out.glob("demo-1.0.0.bundle.tar.zst.0*"))
    assert [p.name[-3:] for p in parts] == ["000", "001", "002", "003"]
    assert all(p.stat().st_size == 1 << 20 for p in parts[:-1])
    assert res["archive"] == str(parts[0]) and len(res["parts"]) == 4
    check = subprocess.run(["sha256sum", "-c", "--strict", "demo-1.0.0.bundle.tar.zst.parts.sha256"], cwd=out,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    whole = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    assert whole == res["sha256"]
    assert (out / "demo-1.0.0.bundle.tar.zst.sha256").read_text().split()[0] == whole
    assert not list(out.glob(".building-*"))


@pytest.mark.parametrize("how", ["first part", "folder"])
def test_install_from_the_first_part_or_the_folder(ob, split, pub, tmp_path, how):
    out, res = split
    target = out / "demo-1.0.0.bundle.tar.zst.000" if how == "first part" else out
    r = ob("install", target, "--kit", tmp_path / "kit", "--trust", pub, "--json")
    assert r.rc == 0, r
    assert r.json["result"]["bundle_id"] == res["bundle_id"] and r.json["result"]["sidecar"] == "ok"


def test_a_damaged_part_is_exit_5_naming_it(ob, split, pub, tmp_path):
    out, _ = split
    part = out / "demo-1.0.0.bundle.tar.zst.002"
    data = bytearray(part.read_bytes())
    data[500] ^= 0xFF
    part.write_bytes(bytes(data))
    r = ob("install", out / "demo-1.0.0.bundle.tar.zst.000", "--kit", tmp_path / "kit", "--trust", pub)
    assert r.rc == 5 and "part demo-1.0.0.bundle.tar.zst.002 is damaged" in r.err
    assert not (tmp_path / "kit" / "current" / "demo").exists()


def test_a_missing_part_or_list_is_exit_5(ob, split, pub, tmp_path):
    out, _ = split
    (out / "demo-1.0.0.bundle.tar.zst.003").unlink()
    r = ob("verify", out / "demo-1.0.0.bundle.tar.zst.000", "--trust", pub)
    assert r.rc == 5 and "part demo-1.0.0.bundle.tar.zst.003 is missing" in r.err
    (out / "demo-1.0.0.bundle.tar.zst.parts.sha256").unlink()
    r = ob("verify", out / "demo-1.0.0.bundle.tar.zst.000", "--trust", pub)
    assert r.rc == 5 and "parts list" in r.err


def test_naming_a_later_part_is_a_usage_error(ob, split, pub):
    out, _ = split
    r = ob("verify", out / "demo-1.0.0.bundle.tar.zst.001", "--trust", pub)
    assert r.rc == 2 and "first part" in r.err


def test_sizes():
    assert parse_size("fat32") == FAT32 == 4 * 1024 ** 3 - 1024 ** 2
    assert parse_size("700M") == 700 * 1024 ** 2 and parse_size("4GiB") == 4 * 1024 ** 3
    assert parse_size("2097152") == 2 * 1024 ** 2
    for bad in ("0", "12K", "1.5G", "lots", "-1M"):
        with pytest.raises(UsageError):
            parse_size(bad)
