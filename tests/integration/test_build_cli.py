"""keygen and build through the real CLI: files, permissions, format 1, reproducibility, errors."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, write_manifest
from tests.helpers.craft import read_entries

from installer.format.paths import c_sorted


def test_keygen_writes_private_0600_and_prints_fingerprint_and_openssl_command(ob, tmp_path):
    os.umask(0)
    try:
        r = ob("keygen", "--out", tmp_path / "k", "--json")
    finally:
        os.umask(0o022)
    assert r.rc == 0, r
    res = r.json["result"]
    key = tmp_path / "k" / "bundle.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", tmp_path / "k" / "bundle.pub", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert res["fingerprint"] == "SHA256:" + hashlib.sha256(der).hexdigest()
    assert res["openssl_verify"].startswith("openssl pkeyutl -verify -pubin -inkey bundle.pub -rawin")
    text = ob("keygen", "--out", tmp_path / "k2", "--algorithm", "ecdsa-p256")
    assert "openssl dgst -sha256 -verify bundle.pub -signature SHA256SUMS.sig SHA256SUMS" in text.out
    assert ob("keygen", "--out", tmp_path / "k").rc == 2  # never overwrites a key


def test_keygen_with_passphrase_encrypts_and_build_needs_it(ob, tmp_path, manifest):
    r = ob("keygen", "--out", tmp_path / "k", env={"BUNDLE_KEY_PASSPHRASE": "s3cret-pass"})
    assert r.rc == 0, r
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "k" / "bundle.key").read_bytes()
    no = ob("build", manifest, "--key", tmp_path / "k" / "bundle.key", "--out", tmp_path / "o")
    assert no.rc == 4 and "encrypted" in no.err
    wrong = ob("build", manifest, "--key", tmp_path / "k" / "bundle.key", "--out", tmp_path / "o",
               env={"BUNDLE_KEY_PASSPHRASE": "nope"})
    assert wrong.rc == 4 and "wrong passphrase" in wrong.err
    assert "nope" not in wrong.err + wrong.out
    (tmp_path / "pp").write_text("s3cret-pass\n")
    ok = ob("build", manifest, "--key", tmp_path / "k" / "bundle.key", "--out", tmp_path / "o",
            env={"BUNDLE_KEY_PASSPHRASE_FILE": str(tmp_path / "pp")})
    assert ok.rc == 0, ok
    assert "s3cret" not in ok.out + ok.err


def test_build_refuses_a_group_readable_private_key(ob, tmp_path, manifest, key):
    loose = tmp_path / "loose.key"
    shutil.copy(key, loose)
    os.chmod(loose, 0o640)
    r = ob("build", manifest, "--key", loose, "--out", tmp_path / "o")
    assert r.rc == 4 and "readable by group or others" in r.err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_archive_is_format_1_exactly(built):
    archive, res = built
    assert archive.name == "demo-1.0.0.bundle.tar.zst"
    entries = read_entries(archive)
    names = [e.path for e in entries]
    assert names[:3] == ["SHA256SUMS", "SHA256SUMS.sig", "bundle.json"]
    assert names[3:] == c_sorted(names[3:])
    sums = entries[0].data.decode()
    listed = [line[66:] for line in sums.splitlines()]
    assert listed == c_sorted(listed) == c_sorted(set(names) - {"SHA256SUMS", "SHA256SUMS.sig"})
    for line, e in zip(sums.splitlines(), sorted(entries[2:], key=lambda e: e.path.encode())):
        assert line == "%s  %s" % (hashlib.sha256(e.data).hexdigest(), e.path)
    meta = json.loads(entries[2].data)
    assert meta["format"] == 1 and meta["name"] == "demo" and meta["version"] == "1.0.0"
    assert meta["created"] == "2026-11-26T00:00:00Z"
    assert meta["tool"] == {"name": "offline-bundle", "version": meta["tool"]["version"]}
    members = {m["path"]: m for m in meta["members"]}
    assert set(members) == set(listed) - {"bundle.json"}
    for e in entries[3:]:
        assert members[e.path]["size"] == len(e.data)
    assert meta["total_size"] == sum(len(e.data) for e in entries[3:])
    assert members["config/run.sh"]["executable"] is True and members["config/app.yaml"]["executable"] is False
    assert set(meta["tenants"]) == {"loki", "tempo"} and "tenants/loki.yaml" in members
    sidecar = (archive.parent / (archive.name + ".sha256")).read_text()
    assert sidecar == "%s  %s\n" % (hashlib.sha256(archive.read_bytes()).hexdigest(), archive.name)
    assert res["bundle_id"] == hashlib.sha256(entries[0].data).hexdigest()


def test_gnu_tar_sees_only_regular_files_with_fixed_owner_and_time(built):
    archive, _ = built
    listing = subprocess.run(["tar", "--zstd", "--numeric-owner", "--full-time", "-tvf", archive],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert listing and all(line.startswith("-") for line in listing)
    assert all(" 0/0 " in line for line in listing)
    assert all("2026-11-26 00:00:00" in line for line in listing)


def test_a_single_zstd_frame(built):
    archive, _ = built
    data = archive.read_bytes()
    assert data[:4] == b"\x28\xb5\x2f\xfd" and data.count(b"\x28\xb5\x2f\xfd") >= 1
    # zstd -lv reports the number of frames
    info = subprocess.run(["zstd", "-lv", archive], capture_output=True, text=True).stdout
    assert "# Zstandard Frames: 1" in info


@pytest.mark.parametrize("algorithm", ["ed", "ec"])
def test_build_is_byte_identical_across_folders_umask_tz_and_mtimes(ob, keydir, tmp_path, algorithm):
    key = keydir / algorithm / "bundle.key"
    outs = []
    for i, (umask, tz, mtime) in enumerate([(0o022, "UTC", 1_000_000_000), (0o077, "Asia/Tokyo", 1_700_000_000)]):
        src = write_manifest(tmp_path / ("src%d" % i) / "deep" / "er")
        for p in src.parent.rglob("*"):
            os.utime(p, (mtime, mtime))
        old = os.umask(umask)
        try:
            r = ob("build", src, "--key", key, "--out", tmp_path / ("out%d" % i), env={"TZ": tz}, cwd=tmp_path)
        finally:
            os.umask(old)
        assert r.rc == 0, r
        outs.append(Path(r.out.strip().splitlines()[-1]))
    a, b = (p if p.is_absolute() else tmp_path / p for p in outs)
    assert a.read_bytes() == b.read_bytes()
    assert a.parent.joinpath(a.name + ".sha256").read_bytes() == b.parent.joinpath(b.name + ".sha256").read_bytes()


def test_source_date_epoch_wins_over_created_and_is_recorded(ob, manifest, key, tmp_path):
    r = ob("build", manifest, "--key", key, "--out", tmp_path / "o", "--json", env={"SOURCE_DATE_EPOCH": "86400"})
    assert r.rc == 0, r
    entries = read_entries(Path(r.json["result"]["archive"]))
    assert json.loads(entries[2].data)["created"] == "1970-01-02T00:00:00Z"
    listing = subprocess.run(["tar", "--zstd", "--full-time", "-tvf", r.json["result"]["archive"]],
                             capture_output=True, text=True, env={"TZ": "UTC"}).stdout
    assert "1970-01-02 00:00:00" in listing


def test_without_created_or_epoch_time_is_zero(ob, tmp_path, key):
    m = write_manifest(tmp_path / "s")
    m.write_text(m.read_text().replace('  created: "2026-11-26T00:00:00Z"\n', ""))
    r = ob("build", m, "--key", key, "--out", tmp_path / "o", "--json")
    assert r.rc == 0, r
    assert json.loads(read_entries(Path(r.json["result"]["archive"]))[2].data)["created"] == "1970-01-01T00:00:00Z"


def test_archive_path_is_the_last_line_of_stdout(ob, manifest, key, tmp_path):
    r = ob("build", manifest, "--key", key, "--out", tmp_path / "o")
    assert r.rc == 0
    assert r.out.splitlines()[-1] == str(tmp_path / "o" / "demo-1.0.0.bundle.tar.zst")
    q = ob("build", manifest, "--key", key, "--out", tmp_path / "o", "--quiet")
    assert q.out.splitlines() == [str(tmp_path / "o" / "demo-1.0.0.bundle.tar.zst")]


def test_default_manifest_builds_from_the_repository(ob, key, tmp_path, standin):
    r = ob("build", "--key", key, "--out", tmp_path / "o", "--cache", tmp_path / "c", "--json", *standin, cwd=REPO)
    assert r.rc == 0, r
    res = r.json["result"]
    assert res["name"] == "telemetry-storage" and res["images"] == 4
    entries = read_entries(Path(res["archive"]))
    paths = {e.path for e in entries}
    assert {"config/prometheus.yaml", "tenants/loki.yaml", "tenants/tempo.yaml", "images/index.json",
            "compose/docker-compose.telemetry-storage.yaml"} <= paths
    meta = json.loads(entries[2].data)
    assert all(i["derived"] and i["platforms"] == ["linux/amd64", "linux/arm64"] for i in meta["images"])


def test_default_manifest_comes_from_the_installed_copy_elsewhere(ob, key, tmp_path, standin):
    """From a folder without ./manifests the wheel's own copy is used."""
    r = ob("build", "--key", key, "--out", tmp_path / "o", "--cache", tmp_path / "c", "--json", *standin, cwd=tmp_path)
    assert r.rc == 0, r
    assert r.json["result"]["name"] == "telemetry-storage"


def test_pinned_file_sha256_mismatch_is_exit_5(ob, tmp_path, key):
    m = write_manifest(tmp_path / "s", tenants=False)
    text = m.read_text().replace("      target: config/app.yaml\n",
                                 "      target: config/app.yaml\n      sha256: \"%s\"\n" % ("0" * 64))
    m.write_text(text)
    r = ob("build", m, "--key", key, "--out", tmp_path / "o")
    assert r.rc == 5, r
    assert "pins" in r.err and "bundle.yaml:" in r.err
    good = hashlib.sha256(b"listen: 9090\n").hexdigest()
    m.write_text(text.replace("0" * 64, good))
    assert ob("build", m, "--key", key, "--out", tmp_path / "o").rc == 0


def test_build_output_folder_unwritable_is_exit_9(ob, manifest, key, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = ob("build", manifest, "--key", key, "--out", blocker / "sub")
    assert r.rc == 9, r
    assert "Traceback" not in r.err


def test_an_invalid_tenant_file_stops_the_build_with_exit_3(ob, tmp_path, key):
    m = write_manifest(tmp_path / "s")
    (tmp_path / "s" / "tenants" / "loki.yaml").write_text("overrides:\n  tenant-a:\n    retention_period: 1.5h\n")
    r = ob("build", m, "--key", key, "--out", tmp_path / "o", "--json")
    assert r.rc == 3
    err = r.json["error"]
    assert err["class"] == "invalid-input"
    assert err["problems"] == [p for p in err["problems"]
                               if p.startswith("tenants/loki.yaml:3: tenant 'tenant-a', key retention_period")]
    assert err["problems"]
    assert not (tmp_path / "o").exists()


def test_a_missing_key_or_manifest_is_exit_2(ob, manifest, tmp_path):
    assert ob("build", manifest, "--key", tmp_path / "none.key").rc == 2
    assert ob("build", tmp_path / "none.yaml", "--key", tmp_path / "none.key").rc == 2


def test_a_warm_rebuild_keeps_the_identical_archive_and_rewrites_a_damaged_one(ob, manifest, key, tmp_path):
    first = ob("build", manifest, "--key", key, "--out", tmp_path / "o", "--json")
    archive = Path(first.json["result"]["archive"])
    stamp = archive.stat().st_mtime_ns
    again = ob("build", manifest, "--key", key, "--out", tmp_path / "o", "--json")
    assert again.rc == 0 and again.json["result"]["reused"] is True
    assert archive.stat().st_mtime_ns == stamp and again.json["result"]["sha256"] == first.json["result"]["sha256"]
    # a damaged copy at the destination is not kept: the build writes the right bytes again
    data = bytearray(archive.read_bytes())
    data[-20] ^= 0xFF
    archive.write_bytes(bytes(data))
    third = ob("build", manifest, "--key", key, "--out", tmp_path / "o", "--json")
    assert third.json["result"]["reused"] is False
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == first.json["result"]["sha256"]
    # another key means another signature: a new archive
    other = ob("keygen", "--out", tmp_path / "k2")
    assert other.rc == 0
    fourth = ob("build", manifest, "--key", tmp_path / "k2" / "bundle.key", "--out", tmp_path / "o", "--json")
    assert fourth.json["result"]["reused"] is False
    assert fourth.json["result"]["sha256"] != first.json["result"]["sha256"]
