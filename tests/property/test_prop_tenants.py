"""bundler.plan.tenants.tenant_problems for loki and tempo: a list of located problem strings, or InvalidInput.

Documents are generated from the component's own JSON Schema (every key it names, values from the
schema's patterns and enums, and nested objects), mixed with junk keys and values of every YAML type;
tenant ids come from odd unicode, '', '.', '..', '*', and 150/151/5000-character strings.
"""

import json
import os
import re
import tempfile

import yaml
from hypothesis import given
from hypothesis import strategies as st

from bundler.resources import schema_path
from bundler.plan.tenants import tenant_problems
from installer.errors import InvalidInput

from propkit import known_bug_report  # noqa: F401  (autouse: reports tolerated known bugs)
from propkit import REPO, label, odd_text, prop, typed, yaml_scalar, yaml_token_text, yaml_value

COMPONENTS = ("loki", "tempo")
SCHEMAS = {c: json.load(open(schema_path("tenants", "%s.schema.json" % c), encoding="utf-8")) for c in COMPONENTS}

tenant_id = st.one_of(
    st.sampled_from(["", ".", "..", "*", "tenant-a", "a" * 150, "a" * 151, "x" * 5000, "(a)!'*", "-", "a b",
                     "a/b", "a\nb", "\u00e9", "\u202e", "0", "null", "~"]),
    st.from_regex(r"[A-Za-z0-9!._*'()-]{1,160}", fullmatch=True),
    odd_text, st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=False))


def _resolve(schema, root):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _pattern_strategy(pattern):
    # JSON Schema's pattern through Python's re, as the validator sees it; lookarounds need a filter.
    core = pattern[1:] if pattern.startswith("^") else pattern
    core = core[:-1] if core.endswith("$") else core
    try:
        base = st.from_regex(re.sub(r"\(\?[=!][^()]*(\([^()]*\)[^()]*)*\)", "", core), fullmatch=True)
    except Exception:
        return odd_text
    return base


@st.composite
def near_schema(draw, schema, root, depth=0):
    """A value that matches ``schema`` most of the time and breaks it in every way otherwise."""
    schema = _resolve(schema, root)
    junk = draw(st.integers(0, 9)) == 0
    if junk or depth > 6 or not isinstance(schema, dict):
        return draw(yaml_value(max_leaves=6))
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]))
    if "oneOf" in schema or "anyOf" in schema:
        return draw(near_schema(draw(st.sampled_from(schema.get("oneOf") or schema["anyOf"])), root, depth + 1))
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    kind = draw(st.sampled_from(kinds))
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        keys = draw(st.lists(st.sampled_from(sorted(props)), unique=True, max_size=min(6, len(props)))) if props else []
        out = {k: draw(near_schema(props[k], root, depth + 1)) for k in keys}
        for r in schema.get("required", []):
            if r in props and r not in out and draw(st.integers(0, 4)):
                out[r] = draw(near_schema(props[r], root, depth + 1))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            names = schema.get("propertyNames", {})
            key_strategy = tenant_id if names else odd_text
            for k in draw(st.lists(key_strategy, max_size=3)):
                out.setdefault(k, draw(near_schema(extra, root, depth + 1)))
        if draw(st.integers(0, 7)) == 0:
            out[draw(st.one_of(odd_text, st.integers()))] = draw(yaml_scalar)
        return out
    if kind == "array":
        return draw(st.lists(near_schema(schema.get("items", {}), root, depth + 1), max_size=3))
    if kind == "string":
        if "pattern" in schema:
            return draw(st.one_of(_pattern_strategy(schema["pattern"]), odd_text))
        return draw(odd_text)
    if kind == "integer":
        return draw(st.one_of(st.integers(-2, 10 ** 6), st.integers(), st.just(2 ** 64), st.just(-(2 ** 63))))
    if kind == "number":
        return draw(st.one_of(st.floats(), st.integers()))
    if kind == "boolean":
        return draw(st.one_of(st.booleans(), st.sampled_from(["true", "yes", 1, 0])))
    return draw(yaml_value(max_leaves=6))


def check(component, text: bytes):
    with tempfile.TemporaryDirectory(prefix="ob-prop-") as d:
        path = os.path.join(d, "overrides.yaml")
        with open(path, "wb") as fh:
            fh.write(text)
        out = typed(tenant_problems, component, path, "tenants/%s.yaml" % component)
        label(out)
        if out.ok:
            note_problems(out.value)
            assert isinstance(out.value, list) and all(isinstance(p, str) for p in out.value), out.value
            for p in out.value:
                assert p.startswith("tenants/%s.yaml:" % component), p
                assert re.match(r"tenants/%s\.yaml:[0-9]+: " % component, p), p
        elif out.error is not None:
            assert isinstance(out.error, InvalidInput), out.error
        return out


def note_problems(problems) -> None:
    from hypothesis import event

    event("problems: %s" % ("none (valid file)" if not problems else "some"))


def dump(doc) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=float("inf")).encode("utf-8")


@prop(120)
@given(st.sampled_from(COMPONENTS), st.data())
def test_schema_generated_overrides(component, data):
    doc = data.draw(near_schema(SCHEMAS[component], SCHEMAS[component]))
    check(component, dump(doc))


@prop(60)
@given(st.sampled_from(COMPONENTS), st.dictionaries(tenant_id, yaml_value(max_leaves=8), max_size=4))
def test_odd_tenant_ids_and_values(component, overrides):
    out = check(component, dump({"overrides": overrides}))
    if out.ok:
        bad_ids = [t for t in overrides if not isinstance(t, str) or not re.fullmatch(r"[A-Za-z0-9!._*'()-]{1,150}", t)
                   or t in (".", "..")]
        if bad_ids:
            assert out.value, "tenant ids %r were accepted" % bad_ids


@prop(60)
@given(st.sampled_from(COMPONENTS), yaml_value(max_leaves=10))
def test_arbitrary_documents(component, doc):
    check(component, dump(doc))


@prop(80)
@given(st.sampled_from(COMPONENTS), st.one_of(yaml_token_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                                              st.binary(max_size=200)))
def test_raw_text_and_bytes(component, raw):
    check(component, raw)


@prop(40)
@given(st.sampled_from(COMPONENTS), st.sampled_from(["delete", "junk-key", "retype"]), st.data())
def test_mutated_shipped_overrides(component, op, data):
    """The shipped override files with one key deleted, added or given another type."""
    with open(os.path.join(REPO, "manifests", "telemetry-storage", "tenants", "%s-overrides.yaml" % component)) as fh:
        doc = yaml.safe_load(fh)
    tenants = sorted(doc["overrides"])
    tenant = data.draw(st.sampled_from(tenants))
    entry = doc["overrides"][tenant]
    key = data.draw(st.sampled_from(sorted(entry)))
    if op == "delete":
        del entry[key]
    elif op == "junk-key":
        entry[data.draw(odd_text)] = data.draw(yaml_scalar)
    else:
        entry[key] = data.draw(yaml_scalar)
    check(component, dump(doc))


def test_shipped_overrides_have_no_problems():
    for component in COMPONENTS:
        path = os.path.join(REPO, "manifests", "telemetry-storage", "tenants", "%s-overrides.yaml" % component)
        assert tenant_problems(component, path, "x") == []
