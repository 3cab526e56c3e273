"""installer/format/paths.py: member path rules of format 1 (docs/FORMAT.md "Archive format")."""

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from installer.format.paths import c_sorted, case_duplicates, contained, is_reserved, path_problem


# --- path_problem ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "a", "a/b", "SHA256SUMS", "config/prometheus.yaml", "A-Z_a-z.0-9", "...", "a..b", ".hidden", "x/.y",
    "-leading-dash", "_", "a" * 255, "/".join(["b" * 255] * 4),
])
def test_accepted(path):
    assert path_problem(path) == ""


@pytest.mark.parametrize("path", [
    "", ".", "..", "./a", "a/.", "a/./b", "../a", "a/..", "a/../b",
    "/a", "/", "a/", "a//b", "//a",
    "a b", " a", "a\tb", "a\\b", "a:b", "a*b", "a~", "caf\u00e9", "\u0430", "a\u200bb", "a\0b",
    "a" * 256, "ok/" + "c" * 256,
])
def test_refused(path):
    assert path_problem(path) != ""


@pytest.mark.parametrize("value", [None, 1, b"a"])
def test_non_string_refused(value):
    assert path_problem(value) != ""


def _path_of_length(total):
    # Five components of about 204 bytes: every one under the 255 limit, so only the total matters.
    parts = 5
    body = total - (parts - 1)
    sizes = [body // parts + (1 if i < body % parts else 0) for i in range(parts)]
    path = "/".join("p" * n for n in sizes)
    assert len(path.encode()) == total and max(sizes) <= 255
    return path


def test_total_length_limit():
    assert path_problem(_path_of_length(1024)) == ""
    assert "1024" in path_problem(_path_of_length(1025))


def test_component_length_limit():
    assert path_problem("d/" + "c" * 255) == ""
    assert "255" in path_problem("d/" + "c" * 256)


@pytest.mark.parametrize("path", ["a\n", "config/x.yaml\n"])
def test_trailing_newline_refused(path):
    assert path_problem(path) != ""


# --- is_reserved -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.anything", "bundle.json", "DELTA.json",
    "images", "images/index.json", "images/blobs/sha256/ab", "charts/x-1.0.0.tgz", "tenants/loki.yaml",
])
def test_reserved(path):
    assert is_reserved(path)


@pytest.mark.parametrize("path", [
    "imagesx/a", "image/a", "chartsy/b", "tenants2/a", "config/images/a", "config/bundle.json",
    "config/SHA256SUMS", "bundle.json.bak", "DELTA.json.orig", "xSHA256SUMS", "config/prometheus.yaml",
])
def test_not_reserved(path):
    assert not is_reserved(path)


# --- c_sorted ----------------------------------------------------------------------------------

def _c_sort(lines):
    data = "".join(p + "\n" for p in lines).encode("utf-8")
    out = subprocess.run(["sort"], input=data, stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, LC_ALL="C")).stdout
    return out.decode("utf-8").split("\n")[:-1]


def test_c_sorted_known_order():
    paths = ["b", "a/b", "a-b", "a.b", "B", "a_b", "a", "Z/z", "0", "\u00e9", "z"]
    # Byte order: '-' < '.' < '/' < digits < uppercase < '_' < lowercase < UTF-8 multibyte.
    assert c_sorted(paths) == ["0", "B", "Z/z", "a", "a-b", "a.b", "a/b", "a_b", "b", "z", "\u00e9"]


def test_c_sorted_multibyte_follows_bytes():
    # 2-, 3- and 4-byte UTF-8 sequences: sort compares their bytes (C3.. < EE.. < EF.. < F0..).
    paths = ["\U00010000", "\uff5e", "\ue000", "\u00e9", "z"]
    assert c_sorted(paths) == ["z", "\u00e9", "\ue000", "\uff5e", "\U00010000"]
    assert c_sorted(paths) == _c_sort(paths)


line_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.lists(line_text, min_size=1, max_size=30))
def test_c_sorted_equals_coreutils_sort(paths):
    assert c_sorted(paths) == _c_sort(paths)


def test_c_sorted_large_sample_equals_coreutils_sort():
    import random
    rng = random.Random(1234)
    alphabet = "aAbBzZ09._-/"
    paths = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 15))) for _ in range(3000)]
    assert c_sorted(paths) == _c_sort(paths)


# --- case_duplicates ---------------------------------------------------------------------------

def test_case_duplicates():
    assert case_duplicates(["a", "b", "c/d"]) == []
    assert len(case_duplicates(["README", "readme"])) == 1
    assert len(case_duplicates(["x/Y", "X/y", "x/y"])) == 2
    assert len(case_duplicates(["same", "same"])) == 1


# --- contained ---------------------------------------------------------------------------------

def test_contained_joins_inside_root(tmp_path):
    root = str(tmp_path)
    assert contained(root, "a/b.yaml") == os.path.join(root, "a", "b.yaml")
    assert contained(root + "/", "x") == os.path.join(root, "x")


def test_contained_with_relative_root(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    assert contained("kit", "a") == os.path.join(str(tmp_path), "kit", "a")


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/etc/passwd", "", ".", "a/./b", "a//b",
                                  "a\\..\\..\\x"])
def test_contained_refuses_escapes(tmp_path, path):
    with pytest.raises(ValueError):
        contained(str(tmp_path / "root"), path)


def test_contained_is_not_a_string_prefix_test(tmp_path):
    # "root-evil" starts with "root" but is outside it; only '..' could get there and it is refused.
    root = str(tmp_path / "root")
    full = contained(root, "evil")
    assert os.path.dirname(full) == root
    with pytest.raises(ValueError):
        contained(root, "../root-evil/x")
