"""installer/format/meta.py and model.py: bundle.json (format 1), checked field by field."""

import copy
import json

import pytest

from installer.errors import InvalidInput
from installer.format.meta import canonical_json, member_paths, parse_meta


def valid_doc():
    """A bundle.json written by hand from docs/FORMAT.md "Archive format"."""
    members = [
        {"path": "charts/prometheus-27.0.0.tgz", "size": 40960},
        {"path": "config/prometheus.yaml", "size": 1234},
        {"path": "images/index.json", "size": 512},
        {"path": "scripts/run.sh", "size": 77, "executable": True},
        {"path": "tenants/loki.yaml", "size": 0, "executable": False},
    ]
    return {
        "format": 1,
        "name": "telemetry-storage",
        "version": "2026.11.0",
        "created": "2026-11-26T00:00:00Z",
        "tool": {"name": "offline-bundle", "version": "0.1.0"},
        "members": members,
        "total_size": 40960 + 1234 + 512 + 77 + 0,
        "images": [{"ref": "docker.io/prom/prometheus:v3.5.0", "digest": "sha256:" + "a" * 64,
                    "media_type": "application/vnd.oci.image.manifest.v1+json", "size": 418, "derived": False,
                    "source": "registry", "tag": "v3.5.0", "index_digest": None, "platforms": "all",
                    "repository": "docker.io/prom/prometheus", "fetched_from": "registry-1.docker.io/prom/prometheus",
                    "manifests": [{"digest": "sha256:" + "a" * 64,
                                   "media_type": "application/vnd.oci.image.manifest.v1+json",
                                   "platform": "linux/amd64"}]}],
        "charts": [],
        "files": [{"target": "config/prometheus.yaml", "source": "src/prometheus.yaml", "sha256": "b" * 64,
                   "size": 1234, "executable": False}],
        "tenants": {"loki": {"path": "tenants/loki.yaml", "source": "src/loki.yaml", "sha256": "c" * 64, "size": 0}},
        "mirrors": {},
    }


def encode(doc):
    return json.dumps(doc).encode("utf-8")


def refused(doc_or_bytes, *words):
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else encode(doc_or_bytes)
    with pytest.raises(InvalidInput) as exc:
        parse_meta(data)
    assert exc.value.exit_code == 3
    for word in words:
        assert word in exc.value.message
    return exc.value


# --- a valid document ------------------------------------------------------------------------

def test_valid_document():
    doc = valid_doc()
    meta = parse_meta(encode(doc))
    assert (meta.name, meta.version, meta.created) == ("telemetry-storage", "2026.11.0", "2026-11-26T00:00:00Z")
    assert meta.tool.to_dict() == {"name": "offline-bundle", "version": "0.1.0"}
    assert meta.sizes == {m["path"]: m["size"] for m in doc["members"]}
    assert member_paths(meta) == tuple(m["path"] for m in doc["members"])
    assert meta.executable == frozenset({"scripts/run.sh"})
    assert meta.total_size == 42783
    assert meta.to_dict() == doc


def test_empty_member_list_is_valid():
    doc = dict(valid_doc(), members=[], total_size=0, files=[], tenants={})
    assert parse_meta(encode(doc)).sizes == {}


def test_members_sorted_in_c_order_not_case_folded():
    doc = dict(valid_doc(), members=[{"path": "B", "size": 1}, {"path": "a", "size": 2}], total_size=3, files=[],
               tenants={})
    assert list(parse_meta(encode(doc)).sizes) == ["B", "a"]


def test_name_length_limit():
    assert parse_meta(encode(dict(valid_doc(), name="a" * 63))).name == "a" * 63
    refused(dict(valid_doc(), name="a" * 64), "name")


# --- format ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [2, 0, "1", None, [1]])
def test_unknown_format_names_it(fmt):
    err = refused(dict(valid_doc(), format=fmt))
    assert repr(fmt) in err.message


def test_missing_format():
    doc = valid_doc()
    del doc["format"]
    refused(doc, "None")


@pytest.mark.parametrize("fmt", [True, 1.0])
def test_format_must_be_the_integer_1(fmt):
    refused(dict(valid_doc(), format=fmt))


# --- missing and mistyped fields -------------------------------------------------------------

REQUIRED = ["name", "version", "created", "tool", "members", "total_size", "images", "charts", "files", "tenants"]


@pytest.mark.parametrize("key", REQUIRED)
def test_missing_top_level_field(key):
    doc = valid_doc()
    del doc[key]
    refused(doc, key, "missing")


@pytest.mark.parametrize("key", ["name", "version"])
def test_missing_tool_field(key):
    doc = valid_doc()
    del doc["tool"][key]
    refused(doc, "tool." + key, "missing")


@pytest.mark.parametrize("key", ["path", "size"])
def test_missing_member_field(key):
    doc = valid_doc()
    del doc["members"][1][key]
    refused(doc, "members[1]." + key, "missing")


def _set(doc, dotted, value):
    target = doc
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    target[int(last) if last.isdigit() else last] = value
    return doc


@pytest.mark.parametrize("where, value", [
    ("name", 7), ("name", None), ("version", 2026.11), ("version", ["1.0.0"]), ("created", 0),
    ("tool", ["offline-bundle"]), ("tool", "offline-bundle 0.1.0"), ("tool.name", 1), ("tool.version", 0.1),
    ("members", {}), ("members", "x"), ("members.0", "charts/x"), ("members.0", None),
    ("members.0.path", 5), ("members.0.size", "40960"), ("members.0.size", 40960.0), ("members.0.size", None),
    ("total_size", "42783"), ("total_size", 42783.0), ("images", {}), ("charts", "none"), ("files", None),
    ("tenants", []), ("tenants", "loki"),
])
def test_wrong_type(where, value):
    refused(_set(valid_doc(), where, value))


@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_executable_must_be_bool(value):
    refused(_set(valid_doc(), "members.1.executable", value), "executable")


def test_bool_size_refused():
    doc = dict(valid_doc(), members=[{"path": "a", "size": True}], total_size=1)
    refused(doc, "size")


@pytest.mark.parametrize("value", [True, False])
def test_bool_total_size_refused(value):
    doc = dict(valid_doc(), members=[{"path": "a", "size": int(value)}], total_size=value)
    refused(doc, "total_size")


def test_negative_size_refused():
    doc = dict(valid_doc(), members=[{"path": "a", "size": -1}, {"path": "b", "size": 1}], total_size=0)
    refused(doc, "negative")


@pytest.mark.parametrize("delta", [-1, 1, 1 << 40])
def test_total_size_mismatch(delta):
    doc = valid_doc()
    doc["total_size"] += delta
    refused(doc, "total_size")


# --- member list -------------------------------------------------------------------------------

def test_unsorted_members():
    doc = valid_doc()
    doc["members"][0], doc["members"][1] = doc["members"][1], doc["members"][0]
    refused(doc, "sorted")


def test_duplicate_members():
    doc = valid_doc()
    doc["members"].insert(1, copy.deepcopy(doc["members"][1]))
    doc["total_size"] += doc["members"][1]["size"]
    refused(doc, "unique")


def test_lowercase_before_uppercase_is_unsorted_in_c_order():
    doc = dict(valid_doc(), members=[{"path": "a", "size": 1}, {"path": "B", "size": 2}], total_size=3)
    refused(doc)


@pytest.mark.parametrize("path", ["../x", "/abs", "a//b", "a/./b", "a b", "caf\u00e9", ""])
def test_bad_member_path(path):
    doc = dict(valid_doc(), members=[{"path": path, "size": 1}], total_size=1)
    refused(doc, "members[0].path")


# --- name, version, created --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "Telemetry", "-lead", "a_b", "a.b", "a b", "caf\u00e9", "a/b"])
def test_bad_name(name):
    refused(dict(valid_doc(), name=name), "name")


@pytest.mark.parametrize("version", ["", "1.0", "v1.0.0", "01.0.0", "1.0.0-", "2026.11.0.1"])
def test_bad_version(version):
    refused(dict(valid_doc(), version=version), "version")


@pytest.mark.parametrize("created", [
    "", "2026-11-26", "2026-11-26T00:00:00", "2026-11-26 00:00:00Z", "2026-11-26T00:00:00+00:00",
    "2026-11-26T00:00:00.5Z", "26-11-26T00:00:00Z", "2026-11-26t00:00:00z",
])
def test_bad_created(created):
    refused(dict(valid_doc(), created=created), "created")


@pytest.mark.parametrize("created", ["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-26T25:61:61Z",
                                     "\uff12\uff10\uff12\uff16-11-26T00:00:00Z"])
def test_impossible_created_refused(created):
    refused(dict(valid_doc(), created=created), "created")


@pytest.mark.parametrize("field, value", [("name", "telemetry-storage\n"), ("version", "2026.11.0\n"),
                                          ("created", "2026-11-26T00:00:00Z\n")])
def test_trailing_newline_refused(field, value):
    refused(dict(valid_doc(), **{field: value}), field)


# --- not a document at all ---------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe{}", b"[]", b"\"x\"", b"null", b"1"])
def test_not_a_json_object(data):
    refused(data, "bundle.json")


# --- canonical_json ----------------------------------------------------------------------------

def test_canonical_json_exact_bytes():
    obj = {"b": 1, "a": {"d": "\u00e9", "c": [1, 2]}}
    expected = (b'{\n  "a": {\n    "c": [\n      1,\n      2\n    ],\n    "d": "\\u00e9"\n  },\n  "b": 1\n}\n')
    assert canonical_json(obj) == expected


def test_canonical_json_ignores_key_insertion_order():
    doc = valid_doc()
    reordered = {k: doc[k] for k in reversed(list(doc))}
    reordered["tool"] = {"version": "0.1.0", "name": "offline-bundle"}
    assert list(reordered) != list(doc)
    assert canonical_json(reordered) == canonical_json(doc)


def test_canonical_json_is_ascii_with_one_trailing_newline():
    data = canonical_json({"k": "\u65e5\u672c \U0001f600", "x": None})
    data.decode("ascii")
    assert data.endswith(b"}\n") and not data.endswith(b"\n\n")
    assert json.loads(data) == {"k": "\u65e5\u672c \U0001f600", "x": None}


def test_canonical_json_parses_back():
    doc = valid_doc()
    meta = parse_meta(canonical_json(doc))
    assert meta.to_dict() == doc
    assert canonical_json(json.loads(canonical_json(doc))) == canonical_json(doc)


@pytest.mark.parametrize("field,value", [
    ("ref", "prom/prometheus:v3.5.0"),          # not normalised
    ("ref", "not a ref"),
    ("digest", "sha256:" + "A" * 64),
    ("digest", "md5:" + "a" * 32),
    ("size", -1),
    ("derived", "no"),
    ("source", "ftp"),
    ("manifests", [{"digest": "sha256:xyz", "media_type": "m", "platform": "p"}]),
])
def test_image_entries_are_checked(field, value):
    doc = json.loads(canonical_json(valid_doc()))
    doc["images"][0][field] = value
    with pytest.raises(InvalidInput):
        parse_meta(canonical_json(doc))


def test_an_image_listed_twice_is_refused():
    doc = valid_doc()
    doc["images"] = doc["images"] * 2
    with pytest.raises(InvalidInput):
        parse_meta(canonical_json(doc))


# --- sboms (issue 14): the files it names must be SBOM members of the bundle ---------------------------------------
def _with_sboms(files):
    doc = valid_doc()
    doc["members"].insert(0, {"path": "charts/a.tgz", "size": 1})
    doc["members"].append({"path": "sbom/" + "a" * 64 + ".spdx.json", "size": 10})
    doc["members"].sort(key=lambda m: m["path"].encode())
    doc["total_size"] = sum(m["size"] for m in doc["members"])
    doc["sboms"] = {"made": True, "images": [{"ref": "docker.io/prom/prometheus:v3.5.0", "digest": "sha256:" + "a" * 64,
                                              "made": True, "files": files}]}
    return doc


def test_sboms_naming_their_members_round_trip():
    doc = _with_sboms(["sbom/" + "a" * 64 + ".spdx.json"])
    assert parse_meta(encode(doc)).to_dict() == doc


@pytest.mark.parametrize("files, words", [
    (["sbom/" + "b" * 64 + ".spdx.json"], ["not an SBOM member"]),        # not in the archive
    (["charts/a.tgz"], ["not an SBOM member"]),                          # a member, but not under sbom/
    (["../../etc/passwd"], ["not an SBOM member"]),
    ([7], ["not an SBOM member"]),
    ("sbom/x", ["is not a list"]),
])
def test_sboms_naming_anything_else_are_refused(files, words):
    refused(_with_sboms(files), "sboms", *words)


def test_sboms_without_made_are_refused():
    doc = _with_sboms([])
    del doc["sboms"]["made"]
    refused(doc, "sboms")


# --- sboms.content (issue 14): the SBOM of the files, tenant files and charts, two members under sbom/ ------------
CONTENT = ["sbom/bundle-content.spdx.json", "sbom/bundle-content.cdx.json"]


def _with_content(content):
    doc = valid_doc()
    doc["members"] += [{"path": path, "size": 100} for path in CONTENT]
    doc["members"].sort(key=lambda m: m["path"].encode())
    doc["total_size"] = sum(m["size"] for m in doc["members"])
    doc["sboms"] = {"made": True, "formats": ["spdx-2.3", "cyclonedx-1.6"], "images": [], "content": content}
    return doc


def test_a_content_sbom_naming_its_members_round_trips():
    doc = _with_content({"files": CONTENT, "entries": 3})
    assert parse_meta(encode(doc)).to_dict() == doc
    no_images = _with_content({"files": CONTENT, "entries": 3})
    no_images["sboms"] = {"made": False, "reason": "--no-sbom", "content": {"files": CONTENT, "entries": 3}}
    assert parse_meta(encode(no_images)).to_dict() == no_images


@pytest.mark.parametrize("content, words", [
    ({"files": ["sbom/bundle-content.spdx.json", "sbom/other.cdx.json"], "entries": 3},
     ["content.files", "not an SBOM member"]),                                          # not in the archive
    ({"files": ["config/prometheus.yaml"], "entries": 3}, ["not an SBOM member"]),     # a member outside sbom/
    ({"files": ["sbom/../config/prometheus.yaml"], "entries": 3}, ["not an SBOM member"]),  # traversal
    ({"files": ["../../etc/passwd"], "entries": 3}, ["not an SBOM member"]),
    ({"files": ["/sbom/bundle-content.spdx.json"], "entries": 3}, ["not an SBOM member"]),
    ({"files": [None], "entries": 3}, ["not an SBOM member"]),
    ({"files": [["sbom/bundle-content.spdx.json"]], "entries": 3}, ["not an SBOM member"]),
    ({"files": "sbom/bundle-content.spdx.json", "entries": 3}, ["content.files", "is not a list"]),
    ({"entries": 3}, ["content", "is not {files, entries}"]),
    (CONTENT, ["content", "is not {files, entries}"]),
    ("sbom/bundle-content.spdx.json", ["content", "is not {files, entries}"]),
    ({"files": CONTENT, "entries": -1}, ["content.entries", "is not a count"]),
    ({"files": CONTENT, "entries": True}, ["content.entries", "is not a count"]),
    ({"files": CONTENT, "entries": "3"}, ["content.entries", "is not a count"]),
    ({"files": CONTENT, "entries": 3.0}, ["content.entries", "is not a count"]),
    ({"files": CONTENT}, ["content.entries", "is not a count"]),
])
def test_a_content_sbom_naming_anything_else_is_refused(content, words):
    refused(_with_content(content), "sboms", *words)


# --- sboms.images with origin upstream (issue 14): a carried manifest of that image, blobs of the bundle ---------
ATTESTATION = "sha256:" + "d" * 64
LAYER = "images/blobs/sha256/" + "e" * 64


def _with_upstream(**changes):
    doc = valid_doc()
    doc["members"] += [{"path": LAYER, "size": 700}, {"path": "images/blobs/sha256/" + "d" * 64, "size": 500}]
    doc["members"].sort(key=lambda m: m["path"].encode())
    doc["total_size"] = sum(m["size"] for m in doc["members"])
    doc["images"][0]["referrers"] = [{"digest": ATTESTATION, "media_type": "application/vnd.oci.image.manifest.v1+json",
                                      "size": 500, "subject": "sha256:" + "a" * 64, "kind": "attestation"}]
    entry = {"ref": "docker.io/prom/prometheus:v3.5.0", "digest": "sha256:" + "a" * 64, "platform": "linux/amd64",
             "origin": "upstream", "kind": "attestation", "referrer": ATTESTATION,
             "documents": [{"path": LAYER, "media_type": "application/vnd.dsse.envelope.v1+json", "format": "spdx",
                            "size": 700, "predicate_type": "https://spdx.dev/Document"}]}
    entry.update(changes)
    doc["sboms"] = {"made": False, "reason": "--no-sbom", "images": [entry]}
    return doc


def test_an_upstream_sbom_naming_a_carried_manifest_and_its_blobs_round_trips():
    doc = _with_upstream()
    assert parse_meta(encode(doc)).to_dict() == doc
    kept = _with_upstream(referrer="sha256:" + "a" * 64)  # a kept manifest (BuildKit's attestation in an index)
    assert parse_meta(encode(kept)).to_dict() == kept


@pytest.mark.parametrize("changes, words", [
    ({"referrer": "sha256:" + "f" * 64}, ["referrer", "is not a manifest the image"]),     # carried by nobody
    ({"referrer": None}, ["referrer", "is not a manifest the image"]),
    ({"referrer": 7}, ["referrer", "is not a manifest the image"]),
    ({"ref": "docker.io/prom/other:1"}, ["referrer", "is not a manifest the image"]),     # another image's
    ({"origin": "cosign"}, ["origin", "is not one of syft, upstream"]),
    ({"origin": None}, ["origin", "is not one of"]),
    ({"documents": []}, ["documents", "is not a list"]),
    ({"documents": {"path": LAYER}}, ["documents", "is not a list"]),
    ({"documents": [LAYER]}, ["documents[0].path", "not a blob of the bundle"]),
    ({"documents": [{"path": "images/blobs/sha256/" + "f" * 64}]}, ["not a blob of the bundle"]),  # not a member
    ({"documents": [{"path": "config/prometheus.yaml"}]}, ["not a blob of the bundle"]),           # not a blob
    ({"documents": [{"path": "images/blobs/sha256/../../config/prometheus.yaml"}]}, ["not a blob of the bundle"]),
    ({"documents": [{"path": "images/index.json"}]}, ["not a blob of the bundle"]),
    ({"documents": [{"path": "/" + LAYER}]}, ["not a blob of the bundle"]),
    ({"documents": [{"path": ["x"]}]}, ["not a blob of the bundle"]),
    ({"files": ["../../etc/passwd"]}, ["files", "not an SBOM member"]),
])
def test_an_upstream_sbom_naming_anything_else_is_refused(changes, words):
    refused(_with_upstream(**changes), "sboms.images[0]", *words)
