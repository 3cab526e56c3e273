"""installer/format/sums.py: SHA256SUMS in exactly the form `sha256sum -c --strict` reads."""

import hashlib
import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from installer.errors import InvalidInput, UnsafeMember
from installer.format.sums import bundle_id, format_sums, parse_sums

C_ENV = dict(os.environ, LC_ALL="C")


def digest(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


ENTRIES = {
    "bundle.json": digest("meta"),
    "charts/prometheus-27.0.0.tgz": digest("chart"),
    "config/prometheus.yaml": digest("config"),
    "images/blobs/sha256/" + digest("blob"): digest("blob"),
    "images/index.json": digest("index"),
    "tenants/loki.yaml": digest("loki"),
}


def line(hex_digest, path):
    return ("%s  %s\n" % (hex_digest, path)).encode()


def good_sums():
    return b"".join(line(ENTRIES[p], p) for p in sorted(ENTRIES))  # these paths are ASCII: sorted == C order


# --- format / parse ----------------------------------------------------------------------------

def test_format_is_two_space_lines_in_c_order():
    shuffled = dict(reversed(list(ENTRIES.items())))
    assert format_sums(shuffled) == good_sums()


def test_parse_round_trip():
    parsed = parse_sums(good_sums())
    assert parsed == ENTRIES
    assert list(parsed) == sorted(ENTRIES)
    assert format_sums(parsed) == good_sums()


def test_c_order_puts_uppercase_and_punctuation_first():
    entries = {"b": digest("1"), "B": digest("2"), "a-b": digest("3"), "a.b": digest("4"), "a/b": digest("5"),
               "a_b": digest("6")}
    order = [ln.split(b"  ", 1)[1].rstrip(b"\n") for ln in format_sums(entries).splitlines(True)]
    # ASCII: '-' 0x2d < '.' 0x2e < '/' 0x2f < 'B' 0x42 < '_' 0x5f < 'b' 0x62
    assert order == [b"B", b"a-b", b"a.b", b"a/b", b"a_b", b"b"]


def test_format_refuses_bad_digest():
    with pytest.raises(ValueError):
        format_sums({"a": "ABC"})
    with pytest.raises(ValueError):
        format_sums({"a": digest("x").upper()})


path_component = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=12).filter(lambda c: c not in (".", ".."))
member_path = st.lists(path_component, min_size=1, max_size=4).map("/".join)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(member_path, st.binary(min_size=0, max_size=8), min_size=1, max_size=20))
def test_round_trip_property(files):
    # Case-duplicates are refused by design; keep one spelling of each.
    unique = {}
    for p, content in files.items():
        unique.setdefault(p.lower(), (p, content))
    entries = {p: hashlib.sha256(c).hexdigest() for p, c in unique.values()}
    data = format_sums(entries)
    assert parse_sums(data) == entries
    assert data.count(b"\n") == len(entries)


# --- coreutils compatibility -------------------------------------------------------------------

def test_same_bytes_as_coreutils_sha256sum(tmp_path):
    files = {"a": b"", "B": b"upper", "dir/x.yaml": b"x: 1\n", "dir-y": b"y", "dir.z": os.urandom(3000),
             "z_last": b"\0\xff"}
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    listed = subprocess.run("printf '%s\\n' " + " ".join(files) + " | LC_ALL=C sort", shell=True, check=True,
                            stdout=subprocess.PIPE, env=C_ENV).stdout.decode().split()
    coreutils = subprocess.run(["sha256sum", "--"] + listed, cwd=str(tmp_path), check=True,
                               stdout=subprocess.PIPE, env=C_ENV).stdout
    ours = format_sums({rel: hashlib.sha256(c).hexdigest() for rel, c in files.items()})
    assert ours == coreutils
    assert parse_sums(coreutils) == {rel: hashlib.sha256(c).hexdigest() for rel, c in files.items()}


def test_coreutils_strict_check_accepts_our_file(tmp_path):
    (tmp_path / "f").write_bytes(b"content")
    (tmp_path / "SHA256SUMS").write_bytes(format_sums({"f": hashlib.sha256(b"content").hexdigest()}))
    proc = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=C_ENV)
    assert proc.returncode == 0, proc.stderr


# --- refusals ----------------------------------------------------------------------------------

H = digest("h")


@pytest.mark.parametrize("data, why", [
    (("%s %s\n" % (H, "a")).encode(), "one space"),
    (("%s *%s\n" % (H, "a")).encode(), "binary marker"),
    (("%s   %s\n" % (H, "a")).encode(), "three spaces"),
    (("%s\t%s\n" % (H, "a")).encode(), "tab"),
    (line(H.upper(), "a"), "uppercase hex"),
    (line(H[:63], "a"), "short digest"),
    (line(H + "0", "a"), "long digest"),
    (("%s  %s\r\n" % (H, "a")).encode(), "CRLF"),
    (line(H, "a").rstrip(b"\n"), "no final newline"),
    (b"", "empty"),
    (b"\n", "blank line"),
    (line(H, "a") + b"\n", "trailing blank line"),
    (line(H, "b") + line(H, "a"), "unsorted"),
    (line(H, "a") + line(H, "B"), "unsorted in C order (B < a)"),
    (("%s  caf\u00e9\n" % H).encode("utf-8"), "non-ASCII"),
    (("%s  a\n" % H).encode("utf-16"), "UTF-16"),
    (b"SHA256 (a) = " + H.encode() + b"\n", "BSD tag format"),
    (b"\\" + line(H, "a"), "escaped-name marker"),
])
def test_refused(data, why):
    with pytest.raises((InvalidInput, UnsafeMember)):
        parse_sums(data)


@pytest.mark.parametrize("data", [
    line(H, "a").rstrip(b"\n"),
    line(H.upper(), "a"),
    line(H, "b") + line(H, "a"),
    ("%s  caf\u00e9\n" % H).encode("utf-8"),
])
def test_structural_problems_are_exit_3(data):
    with pytest.raises(InvalidInput) as exc:
        parse_sums(data)
    assert exc.value.exit_code == 3


@pytest.mark.parametrize("lines", [
    [("a", H), ("a", digest("other"))],              # duplicate path
    [("A", H), ("a", H)],                            # case duplicate (sorted in C order)
    [("Config/x", H), ("config/x", H)],
    [("../etc/passwd", H)],
    [("/etc/passwd", H)],
    [("a/../../b", H)],
    [("./a", H)],
    [("a//b", H)],
    [("a/", H)],
    [("a b", H)],
])
def test_unsafe_paths_are_exit_6(lines):
    data = b"".join(line(d, p) for p, d in lines)
    with pytest.raises(UnsafeMember) as exc:
        parse_sums(data)
    assert exc.value.exit_code == 6
    assert exc.value.problems                        # one line per problem


def test_all_problems_listed_at_once():
    data = line(H, "../a") + line(H, "/b") + line(H, "c") + line(H, "c")
    with pytest.raises(UnsafeMember) as exc:
        parse_sums(data)
    assert len(exc.value.problems) == 3


# --- bundle_id ---------------------------------------------------------------------------------

def test_bundle_id_is_sha256_of_the_bytes():
    data = good_sums()
    assert bundle_id(data) == hashlib.sha256(data).hexdigest()
    out = subprocess.run(["sha256sum"], input=data, stdout=subprocess.PIPE, check=True).stdout
    assert bundle_id(data) == out.split()[0].decode()


def test_bundle_id_ignores_delta_line():
    full = format_sums(ENTRIES)
    delta = format_sums(dict(ENTRIES, **{"DELTA.json": digest("delta")}))
    assert b"DELTA.json" in delta and delta != full
    assert bundle_id(delta) == bundle_id(full) == hashlib.sha256(full).hexdigest()


def test_bundle_id_keeps_other_files_named_delta():
    entries = dict(ENTRIES, **{"config/DELTA.json": digest("nested")})
    data = format_sums(entries)
    assert bundle_id(data) == hashlib.sha256(data).hexdigest()
    assert bundle_id(data) != bundle_id(format_sums(ENTRIES))


def test_bundle_id_changes_with_any_digest():
    changed = dict(ENTRIES, **{"config/prometheus.yaml": digest("other")})
    assert bundle_id(format_sums(changed)) != bundle_id(format_sums(ENTRIES))
