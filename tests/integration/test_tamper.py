"""Tampered and malformed archives: each refused with its exit code, nothing changed in the kit.

Cases marked 'compromised builder' are re-signed with the trusted key: the signature alone
cannot save the installer there, the structure checks must.
"""

import json
import os
import stat
from pathlib import Path

import pytest
import zstandard
from conftest import write_manifest
from tests.helpers.craft import Entry, edit_meta, get, read_entries, resign, tar_bytes, write_archive

from installer.format.tarstream import header_block as _header


def _pax_global(entries):
    data = b"20 comment=injected\n"
    head = _header(b"pax_global_header", len(data), 0, 0o644, b"g")
    raw = Entry("pax_global_header", data, raw_header=head)
    return entries[:3] + [raw] + entries[3:]


def _insert_sorted(entries, new):
    out = entries[:3] + sorted(entries[3:] + [new], key=lambda e: e.path.encode())
    return out


def _swap(entries, a, b):
    entries[a], entries[b] = entries[b], entries[a]
    return entries


def changed_byte(es, key):
    e = get(es, "config/app.yaml")
    e.data = e.data[:-2] + b"X\n"
    return es


def changed_sums(es, key):
    get(es, "SHA256SUMS").data = get(es, "SHA256SUMS").data.replace(b"config/app.yaml", b"config/app.yamm")
    return es


def resigned_by_other(es, key):
    return resign(es, key.parent.parent / "other" / "bundle.key")


def extra_member(es, key):
    return _insert_sorted(es, Entry("config/zzz-extra.yaml", b"x: 1\n"))


def missing_member(es, key):
    return [e for e in es if e.path != "config/app.yaml"]


def duplicate_member(es, key):
    return _insert_sorted(es, Entry("config/app.yaml", get(es, "config/app.yaml").data))


def through_symlink_signed(es, key):
    """compromised builder: `config` is a symlink out of the tree, then `config/evil` is written through it"""
    es = es[:3] + sorted(es[3:] + [Entry("config/link", typeflag=b"2", linkname="/tmp"),
                                   Entry("config/link/evil", b"owned\n")], key=lambda e: e.path.encode())
    return resign(es, key, sums=get(es, "SHA256SUMS").data)


def duplicate_other_content(es, key):
    return _insert_sorted(es, Entry("config/app.yaml", b"listen: 6666\n"))


def sums_not_first(es, key):
    return _swap(es, 0, 1)


def meta_not_third(es, key):
    return _swap(es, 2, 3)


def second_sums_later(es, key):
    return es + [Entry("SHA256SUMS", get(es, "SHA256SUMS").data)]


def out_of_order(es, key):
    return es[:3] + list(reversed(es[3:]))


def symlink_signed(es, key):
    """compromised builder: a listed symlink"""
    es = _insert_sorted(es, Entry("config/link", typeflag=b"2", linkname="/etc/shadow"))
    return resign(es, key, sums=get(es, "SHA256SUMS").data)  # list unchanged, still signed


def hardlink_member(es, key):
    return _insert_sorted(es, Entry("config/hard", typeflag=b"1", linkname="config/app.yaml"))


def fifo_member(es, key):
    return _insert_sorted(es, Entry("config/fifo", typeflag=b"6"))


def device_member(es, key):
    return _insert_sorted(es, Entry("config/dev", typeflag=b"3"))


def dir_member(es, key):
    return _insert_sorted(es, Entry("config/sub", typeflag=b"5"))


def dotdot_signed(es, key):
    """compromised builder: a listed ../ path"""
    es = _insert_sorted(es, Entry("config/../../etc/cron.d/x", b"* * * * * root id\n"))
    return resign(es, key)


def absolute_signed(es, key):
    es = _insert_sorted(es, Entry("/etc/cron.d/x", b"x\n"))
    return resign(es, key)


def case_duplicate_signed(es, key):
    es = _insert_sorted(es, Entry("config/APP.yaml", b"other\n"))
    return resign(es, key)


def size_differs_from_meta_signed(es, key):
    """compromised builder: bundle.json declares another size than the member has"""
    def grow(doc):
        for m in doc["members"]:
            if m["path"] == "config/app.yaml":
                m["size"] += 1
        doc["total_size"] += 1
    edit_meta(es, grow)
    return resign(es, key)


def meta_lists_other_paths_signed(es, key):
    edit_meta(es, lambda d: d["members"].append({"path": "zzz/ghost", "size": 0, "executable": False}))
    return resign(es, key)


def unknown_format_signed(es, key):
    edit_meta(es, lambda d: d.update(format=2))
    return resign(es, key)


def pax_global_header(es, key):
    return _pax_global(es)


def non_utf8_name(es, key):
    head = _header(b"config/\xff\xfe.yaml", 1, 0, 0o644, b"0")
    return _insert_sorted(es, Entry("config/zz", b"x", raw_header=head))


def long_name_5000(es, key):
    return _insert_sorted(es, Entry("config/" + "a" * 5000, b"x"))


CASES = [
    # (name, transform, exit code, words in the message)
    ("changed byte", changed_byte, 5, "config/app.yaml"),
    ("changed SHA256SUMS", changed_sums, 4, "signature"),
    ("re-signed by an untrusted key", resigned_by_other, 4, "signature"),
    ("extra unlisted member", extra_member, 5, "not listed"),
    ("listed member missing", missing_member, 5, "missing"),
    ("duplicate member", duplicate_member, 6, "twice"),
    ("duplicate name, other content", duplicate_other_content, 6, "twice"),
    ("member through a symlink (signed)", through_symlink_signed, 6, "symbolic link"),
    ("SHA256SUMS not first", sums_not_first, 3, "order"),
    ("bundle.json not third", meta_not_third, 3, "order"),
    ("second SHA256SUMS later", second_sums_later, 6, "twice"),
    ("members out of order", out_of_order, 3, "order"),
    ("symlink (signed list)", symlink_signed, 6, "symbolic link"),
    ("hard link", hardlink_member, 6, "hard link"),
    ("FIFO", fifo_member, 6, "FIFO"),
    ("device node", device_member, 6, "device"),
    ("directory entry", dir_member, 6, "directory"),
    (".. path (signed)", dotdot_signed, 6, ".."),
    ("absolute path (signed)", absolute_signed, 6, "path"),
    ("case duplicate (signed)", case_duplicate_signed, 6, "case"),
    ("size differs from bundle.json (signed)", size_differs_from_meta_signed, 5, "declares"),
    ("bundle.json lists other paths (signed)", meta_lists_other_paths_signed, 5, "different files"),
    ("unknown format (signed)", unknown_format_signed, 3, "format 2"),
    ("PAX global header", pax_global_header, 6, "global"),
    ("name not UTF-8", non_utf8_name, 6, "UTF-8"),
    ("5000-byte name", long_name_5000, 6, "path"),
]


def _raw(data: bytes):
    def make(tmp: Path) -> Path:
        out = tmp / "raw.bundle.tar.zst"
        out.write_bytes(data)
        return out
    return make


def _truncated(archive: Path, tmp: Path) -> Path:
    data = archive.read_bytes()
    out = tmp / "trunc.bundle.tar.zst"
    out.write_bytes(data[: len(data) // 2])
    return out


RAW_CASES = [
    ("empty file", lambda a, t: _raw(b"")(t), 3, "empty"),
    ("garbage", lambda a, t: _raw(os.urandom(4096))(t), 3, "zstd"),
    ("zstd around a non-tar", lambda a, t: _raw(zstandard.ZstdCompressor().compress(b"hello " * 1000))(t), 3, "tar"),
    ("truncated stream", _truncated, 3, ""),
    ("no end-of-archive marker", lambda a, t: write_archive(read_entries(a), t / "ne.bundle.tar.zst", end=False), 3,
     "truncated"),
    ("trailing garbage after the end", lambda a, t: _raw(zstandard.ZstdCompressor().compress(
        tar_bytes(read_entries(a)) + b"\x01" * 512))(t), 3, "garbage"),
]


@pytest.fixture
def installed_kit(ob, built, pub, tmp_path):
    """A kit with 1.0.0 installed: every attack must leave it exactly as it is."""
    archive, _ = built
    kit = tmp_path / "kit"
    r = ob("install", archive, "--kit", kit, "--trust", pub)
    assert r.rc == 0, r
    return kit


@pytest.fixture
def next_version(ob, key, tmp_path):
    """The 2.0.0 archive the attacks start from (a new version: the installer must read it)."""
    src = write_manifest(tmp_path / "src2", version="2.0.0")
    r = ob("build", src, "--key", key, "--out", tmp_path / "out2", "--json")
    assert r.rc == 0, r
    return Path(r.json["result"]["archive"])


def _snapshot(kit: Path):
    out = {}
    for p in sorted(kit.rglob("*")):
        rel = str(p.relative_to(kit))
        if rel.startswith((".state/receipts", ".state/quarantine", ".state/lock")):
            continue
        st = os.lstat(p)
        out[rel] = (stat.S_IMODE(st.st_mode), os.readlink(p) if p.is_symlink() else
                    (p.read_bytes() if p.is_file() else None))
    return out


def _check_refused(ob, archive, pub, kit, code, words):
    before = _snapshot(kit)
    outside = sorted(os.listdir(kit.parent))
    v = ob("verify", archive, "--trust", pub, "--json")
    assert v.rc == code, v
    doc = json.loads(v.out)
    assert doc["ok"] is False and doc["exit_code"] == code
    r = ob("install", archive, "--kit", kit, "--trust", pub)
    assert r.rc == code, r
    lines = r.err.strip().splitlines()
    assert lines and lines[0].startswith("offline-bundle: ") and "Traceback" not in r.err
    assert words.lower() in r.err.lower(), r.err
    assert _snapshot(kit) == before
    assert sorted(os.listdir(kit.parent)) == outside
    assert not list((kit / ".state" / "staging").iterdir())
    assert os.readlink(kit / "current" / "demo") == "../bundles/demo/1.0.0"


@pytest.mark.parametrize("name,transform,code,words", CASES, ids=[c[0] for c in CASES])
def test_tampered_archive_is_refused(ob, next_version, key, pub, installed_kit, tmp_path, name, transform, code, words):
    archive = next_version
    entries = transform(read_entries(archive), key)
    bad = write_archive(entries, tmp_path / "bad.bundle.tar.zst")
    _check_refused(ob, bad, pub, installed_kit, code, words)


@pytest.mark.parametrize("name,make,code,words", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_malformed_archive_is_refused(ob, next_version, pub, installed_kit, tmp_path, name, make, code, words):
    archive = next_version
    bad = make(archive, tmp_path)
    _check_refused(ob, bad, pub, installed_kit, code, words)
