"""The installer's small parsers on random input: a value or the typed error, and round trips.

parse_sums, parse_meta, parse_delta, reference.parse: value or BundleError. semver.Version: value or
ValueError (its documented error). paths.path_problem: always a string. Round trips:
parse(str(parse(x))) == parse(x); parse_sums(format_sums(d)) == d; Version(str(v)) == v.
"""

import hashlib
import json

from hypothesis import assume, given
from hypothesis import strategies as st

from installer.format.delta import parse_delta
from installer.errors import InvalidInput, UnsafeMember
from installer.format.meta import canonical_json, parse_meta
from installer.format.model import BundleHead, DeltaDoc
from installer.format.paths import MAX_COMPONENT_BYTES, MAX_PATH_BYTES, PATH_RE, case_duplicates, path_problem
from installer.format.reference import MAX_REF, Reference, parse
from installer.format.semver import Version, is_semver
from installer.format.sums import format_sums, parse_sums

from propkit import known_bug_report  # noqa: F401  (autouse: reports tolerated known bugs)
from propkit import edit_json, json_value, label, nested_text, odd_text, prop, typed

hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
component = st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True).filter(lambda c: c not in (".", ".."))
valid_path = st.lists(component, min_size=1, max_size=4).map("/".join)


# --- paths.path_problem ----------------------------------------------------------------------------

@prop(300)
@given(st.one_of(odd_text, valid_path, st.text(max_size=1100), st.binary(max_size=20), st.none(), st.integers(),
                 st.builds(lambda c, n: "/".join([c] * n), component, st.integers(1, 200)),
                 st.sampled_from([".", "..", "a/./b", "a/../b", "/a", "a/", "a//b", "x" * 256, "x" * 255,
                                  "a/" * 512 + "b", "a\nb", "a\x00b", "\u0430", "A" * 1025])))
def test_path_problem_is_a_string(path):
    why = path_problem(path)
    assert isinstance(why, str)
    if why == "":
        assert isinstance(path, str) and PATH_RE.fullmatch(path)
        parts = path.split("/")
        assert all(p not in (".", "..") and 0 < len(p.encode()) <= MAX_COMPONENT_BYTES for p in parts)
        assert len(path.encode()) <= MAX_PATH_BYTES and not path.startswith("/")


# --- sums ------------------------------------------------------------------------------------------

sums_line = st.one_of(
    st.builds(lambda h, p: "%s  %s" % (h, p), hex64, valid_path),
    st.builds(lambda h, sep, p: "%s%s%s" % (h, sep, p), st.one_of(hex64, odd_text),
              st.sampled_from(["  ", " ", " *", "\t", "   "]), st.one_of(valid_path, odd_text)),
    odd_text)


@prop(300)
@given(st.one_of(st.binary(max_size=300),
                 st.lists(sums_line, max_size=6).map(
                     lambda lines: "".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass")),
                 st.lists(sums_line, max_size=6).map(lambda ls: "\r\n".join(ls).encode("utf-8", "surrogatepass"))))
def test_parse_sums_value_or_typed_error(data):
    out = typed(parse_sums, data)
    label(out)
    if out.ok:
        entries = out.value
        assert all(path_problem(p) == "" for p in entries)
        assert not case_duplicates(entries)
        assert format_sums(entries) == data  # whatever parses is already canonical
    else:
        assert isinstance(out.error, (InvalidInput, UnsafeMember)), out.error


@prop(200)
@given(st.dictionaries(valid_path, hex64, min_size=1, max_size=8))
def test_sums_round_trip(entries):
    # min_size=1: format_sums({}) is b"", which parse_sums refuses ("does not end with a newline");
    # a bundle always lists bundle.json, so an empty list is not a valid SHA256SUMS anyway.
    assume(not case_duplicates(entries))
    assert parse_sums(format_sums(entries)) == entries


# --- semver ----------------------------------------------------------------------------------------

semver_valid = st.from_regex(
    r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})"
    r"(-(0|[1-9][0-9]{0,2}|[0-9]{0,2}[A-Za-z-][0-9A-Za-z-]{0,3})(\.(0|[1-9][0-9]{0,2}|[0-9]{0,2}[A-Za-z-][0-9A-Za-z-]{0,3})){0,2})?"
    r"(\+[0-9A-Za-z-]{1,5}(\.[0-9A-Za-z-]{1,5}){0,2})?", fullmatch=True)
semver_like = st.one_of(
    semver_valid,
    st.from_regex(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})(-[0-9A-Za-z-]{1,5}(\.[0-9A-Za-z-]{1,5}){0,2})?"
                  r"(\+[0-9A-Za-z-]{1,5}(\.[0-9A-Za-z-]{1,5}){0,2})?", fullmatch=True),
    odd_text, st.text(max_size=140),
    st.sampled_from(["1.0.0", "01.0.0", "1.0", "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-a..b", "\u0661.0.0",
                     "1.0.0\n", " 1.0.0", "9" * 5000 + ".0.0", "1.0.0-" + "a" * 200, "v1.0.0", "1.0.0-rc.1+build.5"]))


@prop(300)
@given(semver_like)
def test_version_value_or_value_error(text):
    out = typed(Version, text, allowed=(ValueError,))
    assert out.bug is None
    assert (out.error is None) == is_semver(text)
    if out.error is None:
        v = out.value
        assert Version(str(v)) == v and hash(Version(str(v))) == hash(v)


@prop(200)
@given(st.lists(semver_valid, min_size=3, max_size=3))
def test_version_order_is_total(texts):
    assert all(is_semver(t) for t in texts), texts
    a, b, c = (Version(t) for t in texts)
    assert (a < b) + (a == b) + (b < a) == 1
    if a <= b and b <= c:
        assert a <= c
    # build metadata does not take part in precedence
    assert Version(texts[0].split("+", 1)[0]) == a


# --- image references ------------------------------------------------------------------------------

ref_like = st.one_of(
    st.builds(lambda host, path, tag, digest: (host + "/" if host else "") + path + (":" + tag if tag else "") +
              ("@sha256:" + digest if digest else ""),
              st.sampled_from(["", "docker.io", "index.docker.io", "registry-1.docker.io", "localhost",
                               "localhost:5000", "registry.example", "Registry.Example:443", "[::1]:5000", "a-b.c",
                               "127.0.0.1:1", "x" * 300 + ".io"]),
              st.lists(st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)*", fullmatch=True), min_size=1, max_size=3)
              .map("/".join),
              st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)),
              st.one_of(st.none(), hex64)),
    odd_text, st.text(max_size=600),
    st.sampled_from(["busybox", "library/busybox", "docker.io/busybox", "busybox:latest@sha256:" + "a" * 64,
                     "a" * 500, "a" * 505, "docker.io/" + "a" * 498, "x:y:z", "Foo/bar", "foo@sha512:" + "a" * 128]))


@prop(400)
@given(ref_like)
def test_reference_value_or_typed_error_and_round_trip(text):
    out = typed(parse, text)
    label(out)
    if not out.ok:
        assert isinstance(out.error, InvalidInput), out.error
        return
    ref = out.value
    assert isinstance(ref, Reference)
    normal = str(ref)
    assert len(normal) <= MAX_REF
    again = typed(parse, normal)
    assert again.ok, (text, normal, again.error)
    assert again.value == ref and str(again.value) == normal


# --- bundle.json and DELTA.json -------------------------------------------------------------------

def _valid_meta() -> dict:
    data = b"listen: 9090\n"
    return {"format": 1, "name": "demo", "version": "1.0.0", "created": "2026-11-26T00:00:00Z",
            "tool": {"name": "offline-bundle", "version": "0.1.0"},
            "members": [{"path": "config/app.yaml", "size": len(data), "executable": False}],
            "total_size": len(data), "images": [], "charts": [], "files": [], "tenants": {}, "mirrors": [],
            "lock": {"status": "none"}}


VALID_META = _valid_meta()
_CHART_MEMBERS = sorted(VALID_META["members"] + [{"path": "charts/c-1.0.0.tgz", "size": 1, "executable": False}],
                        key=lambda m: m["path"].encode())
VALID_META_IMAGES = dict(VALID_META, members=_CHART_MEMBERS, total_size=VALID_META["total_size"] + 1, images=[{
    "ref": "docker.io/library/busybox:1", "digest": "sha256:" + "a" * 64,
    "media_type": "application/vnd.oci.image.index.v1+json",
    "size": 10, "manifests": [{"digest": "sha256:" + "b" * 64, "media_type": "m", "platform": "linux/amd64"}],
    "derived": False, "source": "registry", "platforms": ["linux/amd64"]}],
    charts=[{"name": "c", "version": "1.0.0", "path": "charts/c-1.0.0.tgz", "sha256": "c" * 64,
             "oci": {"digest": "sha256:" + "d" * 64, "media_type": "x", "size": 1}, "values": None,
             "images": [{"values": "a.b", "ref": "busybox", "style": "image"}]}])


def _edit(doc, draw):
    edit_json(draw, doc, [-1, 0, 2 ** 63, 1.0, True, None, "", "..", "a/../b", "1.0.0", "sha256:" + "a" * 64,
                          [], {}, [1], {"a": 1}])


@st.composite
def meta_bytes(draw):
    kind = draw(st.sampled_from(["edit", "edit", "random", "nested", "raw"]))
    if kind == "edit":
        doc = json.loads(json.dumps(draw(st.sampled_from([VALID_META, VALID_META_IMAGES]))))
        for _ in range(draw(st.integers(1, 3))):
            _edit(doc, draw)
        return canonical_json(doc) if draw(st.booleans()) else json.dumps(doc).encode()
    if kind == "random":
        return json.dumps(draw(json_value)).encode()
    if kind == "nested":
        return draw(nested_text()).encode()
    return draw(st.binary(max_size=200))


@prop(300)
@given(meta_bytes())
def test_parse_meta_value_or_typed_error(data):
    out = typed(parse_meta, data)
    label(out)
    if out.error is not None:
        assert isinstance(out.error, InvalidInput), out.error
    if out.ok:
        m = out.value
        assert isinstance(m, BundleHead) and is_semver(m.version)
        assert all(path_problem(p) == "" for p in m.sizes)
        assert m.total_size == sum(m.sizes.values())


def test_valid_meta_parses():
    assert parse_meta(canonical_json(VALID_META)).name == "demo"
    assert len(parse_meta(canonical_json(VALID_META_IMAGES)).images) == 1


@st.composite
def delta_bytes(draw):
    base = {"base": [{"name": "demo", "version": "1.0.0", "bundle_id": hashlib.sha256(b"x").hexdigest()}],
            "omitted": ["config/app.yaml"], "omitted_bytes": 13}
    kind = draw(st.sampled_from(["edit", "edit", "random", "nested", "raw"]))
    if kind == "edit":
        for _ in range(draw(st.integers(1, 2))):
            _edit(base, draw)
        return canonical_json(base)
    if kind == "random":
        return json.dumps(draw(json_value)).encode()
    if kind == "nested":
        return draw(nested_text()).encode()
    return draw(st.binary(max_size=200))


@prop(200)
@given(delta_bytes())
def test_parse_delta_value_or_typed_error(data):
    out = typed(parse_delta, data)
    label(out)
    if out.error is not None:
        assert isinstance(out.error, InvalidInput), out.error
    if out.ok:
        assert isinstance(out.value, DeltaDoc) and set(out.value.to_dict()) == {"base", "omitted", "omitted_bytes"}
        assert all(path_problem(p) == "" for p in out.value.omitted)
