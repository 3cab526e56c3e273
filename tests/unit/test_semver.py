"""installer/format/semver.py: SemVer 2.0.0 validity and precedence (semver.org, section 11)."""

import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from installer.format.semver import Version, is_semver

# semver.org section 11, in increasing precedence.
SPEC_ORDER = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
              "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
CORE_ORDER = ["1.0.0", "2.0.0", "2.1.0", "2.1.1"]


@pytest.mark.parametrize("ordered", [SPEC_ORDER, CORE_ORDER])
def test_spec_examples_in_order(ordered):
    versions = [Version(v) for v in ordered]
    for lower, higher in zip(versions, versions[1:]):
        assert lower < higher and higher > lower and lower != higher
    assert [str(v) for v in sorted(reversed(versions))] == ordered


def test_numeric_fields_compare_numerically():
    assert Version("1.10.0") > Version("1.9.0")
    assert Version("10.0.0") > Version("9.99.99")
    assert Version("1.0.0-beta.11") > Version("1.0.0-beta.9")


def test_numeric_identifier_below_alphanumeric():
    assert Version("1.0.0-1") < Version("1.0.0-a")
    assert Version("1.0.0-999") < Version("1.0.0--")
    assert Version("1.0.0-rc.1") < Version("1.0.0-rc.a")


def test_alphanumeric_identifiers_compare_in_ascii_order():
    assert Version("1.0.0-Beta") < Version("1.0.0-alpha")      # 'B' 0x42 < 'a' 0x61
    assert Version("1.0.0-a-b") < Version("1.0.0-aa")          # '-' 0x2d < 'a'
    assert Version("1.0.0-1a") < Version("1.0.0-a")            # lexical, not numeric: '1' < 'a'


def test_build_metadata_ignored_in_precedence():
    assert Version("1.0.0+build.1") == Version("1.0.0+build.2") == Version("1.0.0")
    assert hash(Version("1.0.0+a")) == hash(Version("1.0.0+b"))
    assert Version("1.0.0-rc.1+x") < Version("1.0.0+a")
    assert not Version("1.0.0+zzz") > Version("1.0.0+aaa")
    assert str(Version("1.0.0+build.7")) == "1.0.0+build.7"


def test_not_equal_to_other_types():
    assert Version("1.0.0") != "1.0.0"


@pytest.mark.parametrize("text", [
    "0.0.0", "1.2.3", "10.20.30", "1.0.0-0", "1.0.0-0a", "1.0.0-a0", "1.0.0-alpha.0.valid",
    "1.0.0-x-y-z.--", "1.0.0-rc.1+build.1", "1.0.0+001", "1.0.0+21AF26D3----117B344092BD",
    "2026.11.0", "99999999999999999999.0.0",
])
def test_valid(text):
    assert is_semver(text)
    assert str(Version(text)) == text


@pytest.mark.parametrize("text", [
    "", "1", "1.0", "1.0.0.0", "v1.0.0", "V1.0.0", "01.0.0", "1.01.0", "1.0.01", "00.0.0",
    "1.0.0-", "1.0.0-01", "1.0.0-alpha..1", "1.0.0-.a", "1.0.0-a.", "1.0.0+", "1.0.0+a..b",
    "1.0.0-a_b", "1.0.0+a_b", " 1.0.0", "1.0.0 ", "-1.0.0", "1.0.0-alpha+", "1.0.0++a", "1.-1.0",
    "1.0.0-" + "a" * 200,
])
def test_invalid(text):
    assert not is_semver(text)
    with pytest.raises(ValueError):
        Version(text)


@pytest.mark.parametrize("value", [None, 1, 1.0, b"1.0.0", ["1.0.0"]])
def test_is_semver_non_string(value):
    assert not is_semver(value)


def test_length_cap():
    text = "1.0.0-" + "a" * 122
    assert len(text) == 128 and is_semver(text)
    assert not is_semver(text + "a")


@pytest.mark.parametrize("text", ["1.0.0\n", "1.0.0-rc.1\n", "1.0.0+b\n"])
def test_trailing_newline_invalid(text):
    assert not is_semver(text)


@pytest.mark.parametrize("text", ["1\u0660.0.0", "1.0.1\u0663", "1.0.0-1\u0661", "1.0.0-\u0661a"])
def test_non_ascii_digits_invalid(text):
    assert not is_semver(text)


# --- property: a total order matching an independent reference --------------------------------

def _ref_cmp(a, b):
    """SemVer 2.0.0 section 11, written from the spec text, sharing no code with installer/format/semver.py."""
    def split(v):
        v = v.partition("+")[0]
        core, _, pre = v.partition("-")
        return [int(x) for x in core.split(".")], (pre.split(".") if pre else [])

    (ca, pa), (cb, pb) = split(a), split(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if not pa or not pb:                    # 11.3: a pre-release is lower than the normal version
        return (len(pb) > 0) - (len(pa) > 0)
    for x, y in zip(pa, pb):                # 11.4
        if x == y:
            continue
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            return -1 if int(x) < int(y) else 1
        if xn != yn:
            return -1 if xn else 1          # numeric identifiers rank below alphanumeric ones
        return -1 if x.encode() < y.encode() else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def test_reference_agrees_with_spec_examples():
    assert sorted(reversed(SPEC_ORDER), key=functools.cmp_to_key(_ref_cmp)) == SPEC_ORDER


number = st.integers(min_value=0, max_value=12).map(str)
alnum_id = st.text("0123456789abAB-", min_size=1, max_size=4).filter(lambda s: not s.isdigit())
pre_id = st.one_of(number, alnum_id)
build_id = st.text("0123456789azAZ-", min_size=1, max_size=4)
semver_text = st.builds(
    lambda core, pre, build: ".".join(core) + ("-" + ".".join(pre) if pre else "")
    + ("+" + ".".join(build) if build else ""),
    st.lists(st.sampled_from(["0", "1", "2", "10"]), min_size=3, max_size=3),
    st.lists(pre_id, max_size=3),
    st.lists(build_id, max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(semver_text, min_size=2, max_size=12))
def test_sort_matches_reference(texts):
    versions = [Version(t) for t in texts]
    ours = [str(v) for v in sorted(versions)]
    ref = sorted(texts, key=functools.cmp_to_key(_ref_cmp))
    # Stable sorts of the same input under the same order give the same list, ties included.
    assert ours == ref


@settings(max_examples=300, deadline=None)
@given(semver_text, semver_text, semver_text)
def test_total_order(a, b, c):
    va, vb, vc = Version(a), Version(b), Version(c)
    # Exactly one relation holds, and it is the reference's.
    relations = [va < vb, va == vb, va > vb]
    assert relations.count(True) == 1
    assert relations.index(True) == _ref_cmp(a, b) + 1
    assert (va <= vb) == (not va > vb)
    if va == vb:
        assert hash(va) == hash(vb)
    for x, y, z in itertools.permutations((va, vb, vc)):   # transitivity
        if x <= y and y <= z:
            assert x <= z
