"""bundler.plan.manifest.load_manifest on hostile files: a Manifest that keeps every promise, or a typed error.

Inputs: documents built from the real schema's keys plus junk and values of every YAML type;
raw text made of YAML tokens (anchors, merge keys, tags, duplicate keys, directives); raw bytes
(invalid UTF-8); and a valid manifest with keys deleted, replaced or added.
"""

import copy
import os
import re
import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from bundler.plan.manifest import Manifest, load_manifest
from installer.errors import InvalidInput, UsageError
from installer.format.model import CREATED_RE, NAME_RE
from installer.format.paths import is_reserved, path_problem
from installer.format.semver import is_semver

from propkit import known_bug_report  # noqa: F401  (autouse: reports tolerated known bugs)
from propkit import (KNOWN_BUGS, key_scalar, label, nested_text, odd_text, prop, typed, write_manifest, yaml_scalar,
                     yaml_token_text, yaml_value)

SCHEMA_KEYS = ["apiVersion", "kind", "metadata", "spec", "name", "version", "created", "images", "charts",
               "files", "tenants", "ref", "platforms", "source", "repo", "path", "values", "target", "sha256",
               "executable", "style", "loki", "tempo", "mirror"]
manifest_key = st.one_of(st.sampled_from(SCHEMA_KEYS), key_scalar)
any_value = yaml_value(keys=manifest_key)


def check_manifest(m: Manifest, folder: str) -> None:
    """What a caller of load_manifest relies on when it returns."""
    assert isinstance(m, Manifest)
    assert isinstance(m.name, str) and NAME_RE.fullmatch(m.name), m.name
    assert is_semver(m.version), m.version
    assert m.created is None or (isinstance(m.created, str) and CREATED_RE.fullmatch(m.created)), m.created
    root = os.path.realpath(folder)
    targets = set()
    for f in m.files:
        assert path_problem(f.target) == "" and not is_reserved(f.target), f.target
        assert f.target.lower() not in targets
        targets.add(f.target.lower())
        assert os.path.isfile(f.source_path)
        assert os.path.commonpath([root, f.source_path]) == root
        assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256)
        assert isinstance(f.executable, bool)
    for t in m.tenants:
        assert t.component in ("loki", "tempo")
        assert os.path.commonpath([root, t.source_path]) == root and os.path.isfile(t.source_path)
    for image in m.images:
        assert isinstance(image, dict) and isinstance(image["ref"], str)


def run_on_bytes(data: bytes, prepare_tree: bool = False):
    with tempfile.TemporaryDirectory(prefix="ob-prop-") as d:
        path = write_manifest(Path(d) / "src") if prepare_tree else Path(d) / "bundle.yaml"
        path.write_bytes(data)
        out = typed(load_manifest, str(path))
        label(out)
        if out.ok:
            check_manifest(out.value, str(path.parent))
        elif out.error is not None:
            assert isinstance(out.error, InvalidInput), out.error  # the file exists: never usage
        return out


def dump(doc) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=float("inf")).encode("utf-8")


# 1. documents built from strategies ----------------------------------------------------------------

@st.composite
def schema_shaped(draw):
    """A document with the manifest's shape, each part valid, missing, junk or of another type."""
    def maybe(valid):
        choice = draw(st.integers(0, 15))  # mostly valid, so the deeper checks are reached
        if choice < 13:
            return valid
        if choice == 13:
            return _MISSING
        return draw(yaml_scalar if choice == 14 else any_value)

    file_item = {k: maybe(v) for k, v in (("source", "cfg/app.yaml"), ("target", "config/app.yaml"),
                                          ("sha256", "0" * 64), ("executable", False))}
    image = {k: maybe(v) for k, v in (("ref", draw(st.sampled_from(["busybox", "docker.io/prom/prometheus:v3.5.0",
                                                                    "registry.example:5000/a/b@sha256:" + "a" * 64])),),
                                      ("platforms", ["linux/amd64"]), ("source", "registry"))}
    chart = {k: maybe(v) for k, v in (("name", "prometheus"), ("repo", "https://example/charts"), ("version", "1.0.0"),
                                      ("ref", "oci://registry.example/charts/x"), ("path", "charts/x"),
                                      ("values", "cfg/app.yaml"),
                                      ("images", [{"values": "server.image", "ref": "busybox"}]))}
    doc = {
        "apiVersion": maybe("offline-bundle/v1"),
        "kind": maybe("Bundle"),
        "metadata": maybe({k: maybe(v) for k, v in (("name", "demo"), ("version", "1.0.0"),
                                                    ("created", "2026-11-26T00:00:00Z"))}),
        "spec": maybe({k: maybe(v) for k, v in (("files", [file_item]), ("images", [image]), ("charts", [chart]),
                                                ("tenants", {"loki": "tenants/loki.yaml",
                                                             "tempo": "tenants/tempo.yaml"}))}),
    }
    junk = draw(st.dictionaries(manifest_key, any_value, max_size=2))
    doc = _strip(doc)
    if isinstance(doc, dict):
        for k, v in junk.items():
            doc.setdefault(k, v)
    return doc


class _Missing:
    pass


_MISSING = _Missing()


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not _MISSING}
    if isinstance(value, list):
        return [_strip(v) for v in value if v is not _MISSING]
    return value


@prop(150)
@given(schema_shaped())
def test_schema_shaped_documents(doc):
    run_on_bytes(dump(doc), prepare_tree=True)


@prop(150)
@given(any_value)
def test_arbitrary_yaml_documents(doc):
    run_on_bytes(dump(doc))


# 2. raw text and bytes -----------------------------------------------------------------------------

@prop(300)
@given(yaml_token_text)
def test_raw_yaml_token_text(text):
    run_on_bytes(text.encode("utf-8", "surrogatepass"), prepare_tree=True)


@prop(100)
@given(st.binary(max_size=300))
def test_raw_bytes(data):
    run_on_bytes(data)


@prop(40)
@given(yaml_token_text, st.sampled_from(["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f", "\ufffe"]))
def test_control_characters(text, ctrl):
    """YAML forbids C0 controls but TAB/LF/CR: the file is refused, with our error."""
    out = run_on_bytes((text + ctrl).encode("utf-8", "surrogatepass"), prepare_tree=True)
    assert not out.ok


@prop(12)
@given(nested_text())
def test_deep_nesting(text):
    run_on_bytes(text.encode())


@prop(100)
@given(st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]),
       st.integers(0, 200))
def test_invalid_utf8_inside_valid_manifest(bad, where):
    with tempfile.TemporaryDirectory(prefix="ob-prop-") as d:
        path = write_manifest(Path(d) / "src")
        good = path.read_bytes()
        where = min(where, len(good))
        out = run_on_bytes(good[:where] + bad + good[where:], prepare_tree=True)
        assert out.error is not None or out.bug


# 3. a valid manifest, mutated ------------------------------------------------------------------------

def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _base_doc():
    with tempfile.TemporaryDirectory() as d:
        return yaml.safe_load(write_manifest(Path(d) / "src").read_text())


BASE_DOC = _base_doc()
BASE_DOC["spec"]["images"] = [{"ref": "docker.io/prom/prometheus:v3.5.0", "platforms": ["linux/amd64"]}]
BASE_DOC["spec"]["charts"] = [{"name": "prometheus", "repo": "https://example.invalid/charts", "version": "27.0.0",
                               "images": [{"values": "server.image", "ref": "docker.io/prom/prometheus:v3.5.0",
                                           "style": "repository-tag"}]}]
BASE_DOC["spec"]["files"][0]["sha256"] = "0" * 64

path_like = st.one_of(
    odd_text,
    st.sampled_from(["cfg/app.yaml", "cfg/run.sh", "../bundle.yaml", "/etc/passwd", "cfg/../cfg/app.yaml", "cfg",
                     "missing.yaml", "tenants/loki.yaml", "cfg/app.yaml\x00x", "bundle.json", "images/x",
                     "SHA256SUMS.x", "Config/App.yaml", "config/app.yaml", "a//b", "./a", "a/.", "x" * 300, "é",
                     " cfg/app.yaml"]))


@st.composite
def mutated_manifest(draw):
    doc = copy.deepcopy(BASE_DOC)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["delete", "replace", "replace-path", "add-key", "duplicate-item"]))
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(any_value)
        elif op == "replace-path":
            parent[last] = draw(path_like)
        elif op == "add-key" and isinstance(parent, dict):
            parent[draw(manifest_key)] = draw(yaml_scalar)
        elif op == "duplicate-item" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return doc


@prop(150)
@given(mutated_manifest())
def test_mutated_valid_manifest(doc):
    run_on_bytes(dump(doc), prepare_tree=True)


@prop(120)
@given(st.sampled_from(sorted(k for k in SCHEMA_KEYS)), st.sampled_from(["dup", "anchor-merge", "tag", "alias"]))
def test_textual_tricks_on_valid_manifest(key, trick):
    """Duplicate keys, merge keys, aliases and unsafe tags spliced into a valid manifest's text."""
    with tempfile.TemporaryDirectory(prefix="ob-prop-") as d:
        path = write_manifest(Path(d) / "src")
        text = path.read_text()
        if trick == "dup":
            text += "%s: again\n" % key
        elif trick == "anchor-merge":
            text = text.replace("metadata:\n", "metadata: &m\n", 1) + "x: &n {<<: *m, %s: 1}\n" % key
        elif trick == "tag":
            text = text.replace("kind: Bundle", "kind: !!python/object/apply:os.system [\"true\"]")
        else:
            text = text.replace("spec:\n", "spec: &s\n") + "%s: *s\n" % key
        out = run_on_bytes(text.encode(), prepare_tree=True)
        assert not out.ok, "a manifest with a %s trick on %s was accepted" % (trick, key)


def test_valid_manifest_loads():
    """The base case the mutations start from is itself valid (otherwise the mutations prove little)."""
    with tempfile.TemporaryDirectory(prefix="ob-prop-") as d:
        path = write_manifest(Path(d) / "src")
        check_manifest(load_manifest(str(path)), str(path.parent))


def test_missing_file_is_usage_error():
    out = typed(load_manifest, "/nonexistent/bundle.yaml")
    assert isinstance(out.error, UsageError)


def test_known_bug_ids_are_documented():
    assert all(desc for _m, desc in KNOWN_BUGS.values())


def test_base_doc_of_mutations_loads():
    out = run_on_bytes(dump(BASE_DOC), prepare_tree=True)
    assert out.ok, out.error and out.error.problems
