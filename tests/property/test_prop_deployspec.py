"""installer/format/deployspec.py on random input, and against the manifest schema.

DeploySpec.from_dict: a value or InvalidInput, never another exception; what it accepts carries only names that
meet their grammar, round-trips through to_dict and canonical JSON, and is accepted by schemas/manifest.schema.json
(the model is never looser than the schema); what the schema accepts the model accepts too, unless a name repeats
(uniqueness across lists is the model's and the loader's check, not the schema's).
"""

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundler.plan.schemas import validator
from installer.errors import InvalidInput
from installer.format.deployspec import DeploySpec
from installer.format.meta import canonical_json

from propkit import known_bug_report  # noqa: F401  (autouse: reports tolerated known bugs)
from propkit import json_value, label, odd_text, prop, typed

label_text = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
env_name = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: not n.startswith(("LD_", "DOCKER_", "COMPOSE_", "HELM_", "PYTHON", "SSL_", "BUNDLE_", "LC_", "XDG_"))
    and n not in ("PATH", "HOME", "SHELL", "ENV", "IFS", "PWD", "USER", "LANG"))
key_text = st.from_regex(r"[a-z][-._a-zA-Z0-9]{0,12}", fullmatch=True)
entry = st.one_of(
    st.builds(lambda k, t: {"key": k, "tenant": t}, key_text, label_text),
    st.builds(lambda k, f: {"key": k, "file": "config/" + f}, key_text, label_text),
    st.builds(lambda k, d, f: {"key": k, "site": d + "/" + f}, key_text, st.sampled_from(["tls", "token"]), key_text))


def _obj(name, data):
    return {"name": name, "data": data}


valid_doc = st.fixed_dictionaries({"namespace": label_text}, optional={
    "compose": st.fixed_dictionaries({}, optional={
        "env": st.dictionaries(env_name, st.sampled_from(["tls", "token"]), max_size=4)}),
    "tls": st.fixed_dictionaries({}, optional={
        "services": st.lists(label_text, max_size=4, unique=True),
        "ca": st.fixed_dictionaries({
            "file": label_text,
            "cn": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,20}[A-Za-z0-9]", fullmatch=True)})}),
    "kubernetes": st.fixed_dictionaries({}, optional={
        "configmaps": st.lists(st.builds(_obj, label_text, st.lists(entry.filter(lambda e: "site" not in e),
                                                                   min_size=1, max_size=3)), max_size=3),
        "secrets": st.lists(st.builds(_obj, label_text, st.lists(entry, min_size=1, max_size=3)), max_size=3)}),
})

def _one(**change):
    doc = {"namespace": "ns", "kubernetes": {"configmaps": [{"name": "cm", "data": [{"key": "k", "file": "config/a"}]}],
                                             "secrets": [{"name": "s", "data": [{"key": "k", "site": "tls/a"}]}]}}
    for where, value in change.items():
        node = {"cm": doc["kubernetes"]["configmaps"][0], "cmdata": doc["kubernetes"]["configmaps"][0]["data"][0],
                "sdata": doc["kubernetes"]["secrets"][0]["data"][0], "doc": doc}[where]
        node.update(value)
    return doc


# Edges where a schema pattern and the model's grammar could drift apart.
EDGES = [_one(cmdata={"file": f}) for f in ("a/../b", "./a", "a/.", "..", "a//b", "/a", "a/", "x" * 1025, "é")] + \
        [_one(sdata={"site": s}) for s in ("tls/.", "tls/..", "tls/", "token/a/b", "tls/" + "x" * 256, "TLS/a")] + \
        [_one(cmdata={"key": k}) for k in (".", "..", "..a", ".a", "a..", "x" * 253, "x" * 254, "a b", "a/b")] + \
        [_one(cm={"name": n}) for n in ("x" * 200, "x" * 201, "a..b", "a.-b", "-a", "a-", "A", "a_b", "1.2.3")] + \
        [_one(doc={"namespace": n}) for n in ("x" * 63, "x" * 64, "a-", "1", "a.b")] + \
        [_one(doc={"compose": {"env": {n: "tls"}}}) for n in ("A" * 128, "A" * 129, "_", "_A", "1A", "A-B", "LANGUAGE",
                                                              "LANG", "LC_ALL", "PATHS")] + \
        [_one(doc={"tls": {"ca": {"file": "ca", "cn": c}}}) for c in ("a" * 64, "a" * 65, "a b", " a", "a ", "a,b")]


NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
ENV = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


def _mutate(doc, draw_value, path_choice):
    """Replace one leaf or container somewhere in ``doc`` by a hostile value."""
    nodes = []

    def walk(node):
        if isinstance(node, dict):
            for k in list(node):
                nodes.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                nodes.append((node, i))
                walk(node[i])
    walk(doc)
    if nodes:
        parent, key = nodes[path_choice % len(nodes)]
        parent[key] = draw_value
    return doc


def _schema_ok(doc) -> bool:
    manifest = {"apiVersion": "offline-bundle/v1", "kind": "Bundle", "metadata": {"name": "p", "version": "1.0.0"},
                "spec": {"deploy": doc}}
    return not list(validator("manifest.schema.json").iter_errors(manifest))


def _check_accepted(spec: DeploySpec) -> None:
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", spec.namespace)
    assert all(ENV.match(name) and folder in ("tls", "token") for name, folder in spec.env)
    for obj in spec.kubernetes.configmaps + spec.kubernetes.secrets:
        assert NAME.match(obj.name) and len(obj.name) <= 200
        assert all("/" not in e.key and e.key not in (".", "..") for e in obj.data)
        assert all(e.source != "site" or e.site_file not in (".", "..") for e in obj.data)
    again = DeploySpec.from_dict(json.loads(canonical_json(spec.to_dict())), "again")
    assert again == spec


def _in_step(doc) -> None:
    before = json.dumps(doc, sort_keys=True)
    out = typed(DeploySpec.from_dict, doc, "bundle.json: deploy")
    label(out)
    assert json.dumps(doc, sort_keys=True) == before  # the input is never changed
    if out.ok:
        _check_accepted(out.value)
        assert _schema_ok(doc), doc  # the model is never looser than the schema
    else:
        assert isinstance(out.error, InvalidInput) and out.error.exit_code == 3
        assert out.error.message.startswith("bundle.json: deploy") and "\n" not in out.error.message
        if _schema_ok(doc):
            assert "repeats" in out.error.message, (out.error.message, doc)


@prop(300)
@given(st.one_of(json_value, valid_doc,
                 st.builds(_mutate, valid_doc, st.one_of(odd_text, json_value), st.integers(0, 99))))
def test_value_or_invalid_input_and_in_step_with_the_schema(doc):
    _in_step(doc)


@pytest.mark.parametrize("doc", EDGES, ids=[json.dumps(d, sort_keys=True)[-60:] for d in EDGES])
def test_the_edges_of_each_grammar_agree_with_the_schema(doc):
    _in_step(doc)


@prop(200)
@given(valid_doc)
def test_generated_sections_are_accepted_unless_a_name_repeats(doc):
    out = typed(DeploySpec.from_dict, doc, "deploy")
    if out.ok:
        _check_accepted(out.value)
    else:
        assert "repeats" in out.error.message, out.error.message
