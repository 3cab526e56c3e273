"""JSON Schemas for tenant override files (schemas/tenants/*.schema.json).

The schemas are written from the upstream Loki 3.x / Tempo 2.x documentation and source (no
Loki or Tempo binary is available here), so these tests pin the rules the schemas promise:
known keys only, tenant IDs as dskit accepts them, each component's duration syntax, and
non-negative numeric limits. They also check the shipped tenant files of the default bundle.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas" / "tenants"
TENANT_FILES = {
    "loki": REPO / "manifests" / "telemetry-storage" / "tenants" / "loki-overrides.yaml",
    "tempo": REPO / "manifests" / "telemetry-storage" / "tenants" / "tempo-overrides.yaml",
}


def _validator(component: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{component}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.fixture(scope="module", params=["loki", "tempo"])
def component(request):
    return request.param


def _errors(component: str, doc) -> list:
    return sorted(_validator(component).iter_errors(doc), key=lambda e: list(e.absolute_path))


# Minimal valid tenant entries, used as the base of the table-driven cases.
LOKI_TENANT = {"retention_period": "168h", "ingestion_rate_mb": 4}
TEMPO_TENANT = {"ingestion": {"rate_limit_bytes": 15000000, "burst_size_bytes": 20000000}}


def _loki(**tenants):
    return {"overrides": tenants or {"tenant-a": copy.deepcopy(LOKI_TENANT)}}


def _tempo(**tenants):
    return {"overrides": tenants or {"tenant-a": copy.deepcopy(TEMPO_TENANT)}}


def _with(base: dict, path: list, value) -> dict:
    """A copy of `base` with `value` set at `path` (dict keys), creating dicts on the way."""
    doc = copy.deepcopy(base)
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return doc


# ---------------------------------------------------------------------------------------------
# The schemas themselves


def test_schemas_are_valid_draft_2020_12(component):
    schema = json.loads((SCHEMAS / f"{component}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"overrides"}
    assert "overrides" in schema["description"]


def _walk(node, where="#"):
    """Yield (json-pointer-ish location, schema node) for every schema object in the tree."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key in ("properties", "$defs", "patternProperties"):
                for name, sub in value.items():
                    yield from _walk(sub, f"{where}/{key}/{name}")
            elif key in ("items", "additionalProperties", "propertyNames", "not"):
                yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _walk(sub, f"{where}/{i}")


def test_every_object_node_refuses_unknown_keys(component):
    schema = json.loads((SCHEMAS / f"{component}.schema.json").read_text(encoding="utf-8"))
    for where, node in _walk(schema):
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"


def test_every_property_has_a_description(component):
    schema = json.loads((SCHEMAS / f"{component}.schema.json").read_text(encoding="utf-8"))
    for where, node in _walk(schema):
        for name, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{where}/properties/{name} has no description"


def test_loki_schema_covers_the_common_limits_broadly():
    schema = json.loads((SCHEMAS / "loki.schema.json").read_text(encoding="utf-8"))
    keys = set(schema["$defs"]["limits"]["properties"])
    assert len(keys) >= 30
    assert {
        "retention_period", "retention_stream", "ingestion_rate_mb", "ingestion_burst_size_mb",
        "max_global_streams_per_user", "per_stream_rate_limit", "per_stream_rate_limit_burst",
        "max_query_lookback", "max_query_series", "max_entries_limit_per_query", "query_timeout",
        "otlp_config", "allow_structured_metadata", "deletion_mode",
    } <= keys


def test_tempo_schema_has_every_nested_group():
    schema = json.loads((SCHEMAS / "tempo.schema.json").read_text(encoding="utf-8"))
    assert set(schema["$defs"]["limits"]["properties"]) == {
        "ingestion", "read", "compaction", "metrics_generator", "forwarders", "global",
        "storage", "cost_attribution",
    }


# ---------------------------------------------------------------------------------------------
# The shipped tenant files


def test_shipped_tenant_files_validate(component):
    doc = yaml.safe_load(TENANT_FILES[component].read_text(encoding="utf-8"))
    assert [e.message for e in _errors(component, doc)] == []


def test_shipped_tenant_files_carry_at_least_two_tenants(component):
    doc = yaml.safe_load(TENANT_FILES[component].read_text(encoding="utf-8"))
    named = [t for t in doc["overrides"] if t != "*"]
    assert len(named) >= 2


def test_shipped_loki_tenants_differ_in_retention_and_say_there_is_no_wildcard():
    text = TENANT_FILES["loki"].read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    periods = {t: v["retention_period"] for t, v in doc["overrides"].items()}
    assert len(set(periods.values())) == len(periods), periods
    assert "*" not in doc["overrides"]
    assert "no wildcard" in text.lower()
    for limits in doc["overrides"].values():
        assert limits["retention_stream"], "each shipped tenant shows a retention_stream rule"


def test_shipped_tempo_file_has_the_wildcard_and_full_ingestion_limits():
    doc = yaml.safe_load(TENANT_FILES["tempo"].read_text(encoding="utf-8"))
    assert "*" in doc["overrides"]
    for tenant, limits in doc["overrides"].items():
        ingestion = limits["ingestion"]
        assert ingestion["rate_limit_bytes"] > 0 and ingestion["burst_size_bytes"] > 0, tenant
        assert ingestion["max_traces_per_user"] > 0, tenant
        assert limits["global"]["max_bytes_per_trace"] > 0, tenant
        assert limits["compaction"]["block_retention"], tenant


# ---------------------------------------------------------------------------------------------
# Bad documents: each must fail, and the first error must point at the offending key so the
# manifest validator can report file / tenant / key / line.

LONG_ID = "t" * 151

BAD = [
    # (id, component, document, expected absolute_path of an error)
    ("loki-unknown-key", "loki", _with(_loki(), ["overrides", "tenant-a", "retention_perod"], "1d"),
     ["overrides", "tenant-a"]),
    ("tempo-unknown-key", "tempo", _with(_tempo(), ["overrides", "tenant-a", "ingestion", "rate_limit"], 1),
     ["overrides", "tenant-a", "ingestion"]),
    ("tempo-legacy-flat-key", "tempo", _with(_tempo(), ["overrides", "tenant-a", "ingestion_rate_limit_bytes"], 1),
     ["overrides", "tenant-a"]),
    ("loki-dotdot", "loki", _loki(**{"..": dict(LOKI_TENANT)}), ["overrides"]),
    ("tempo-dotdot", "tempo", _tempo(**{"..": copy.deepcopy(TEMPO_TENANT)}), ["overrides"]),
    ("loki-dot", "loki", _loki(**{".": dict(LOKI_TENANT)}), ["overrides"]),
    ("tempo-dot", "tempo", _tempo(**{".": copy.deepcopy(TEMPO_TENANT)}), ["overrides"]),
    ("loki-pipe", "loki", _loki(**{"a|b": dict(LOKI_TENANT)}), ["overrides"]),
    ("tempo-pipe", "tempo", _tempo(**{"a|b": copy.deepcopy(TEMPO_TENANT)}), ["overrides"]),
    ("loki-slash", "loki", _loki(**{"a/b": dict(LOKI_TENANT)}), ["overrides"]),
    ("tempo-space", "tempo", _tempo(**{"a b": copy.deepcopy(TEMPO_TENANT)}), ["overrides"]),
    ("loki-151-chars", "loki", _loki(**{LONG_ID: dict(LOKI_TENANT)}), ["overrides"]),
    ("tempo-151-chars", "tempo", _tempo(**{LONG_ID: copy.deepcopy(TEMPO_TENANT)}), ["overrides"]),
    ("loki-empty-id", "loki", _loki(**{"": dict(LOKI_TENANT)}), ["overrides"]),
    ("loki-wildcard", "loki", _loki(**{"*": dict(LOKI_TENANT)}), ["overrides"]),
    ("loki-negative", "loki", _with(_loki(), ["overrides", "tenant-a", "max_global_streams_per_user"], -1),
     ["overrides", "tenant-a", "max_global_streams_per_user"]),
    ("tempo-negative", "tempo", _with(_tempo(), ["overrides", "tenant-a", "ingestion", "max_traces_per_user"], -5),
     ["overrides", "tenant-a", "ingestion", "max_traces_per_user"]),
    ("loki-zero-rate", "loki", _with(_loki(), ["overrides", "tenant-a", "ingestion_rate_mb"], 0),
     ["overrides", "tenant-a", "ingestion_rate_mb"]),
    ("tempo-zero-burst", "tempo", _with(_tempo(), ["overrides", "tenant-a", "ingestion", "burst_size_bytes"], 0),
     ["overrides", "tenant-a", "ingestion", "burst_size_bytes"]),
    ("loki-zero-stream-rate", "loki", _with(_loki(), ["overrides", "tenant-a", "per_stream_rate_limit"], "0MB"),
     ["overrides", "tenant-a", "per_stream_rate_limit"]),
    ("loki-fraction-duration", "loki", _with(_loki(), ["overrides", "tenant-a", "retention_period"], "1.5h"),
     ["overrides", "tenant-a", "retention_period"]),
    ("loki-unordered-units", "loki", _with(_loki(), ["overrides", "tenant-a", "max_query_lookback"], "1h1d"),
     ["overrides", "tenant-a", "max_query_lookback"]),
    ("loki-no-unit", "loki", _with(_loki(), ["overrides", "tenant-a", "retention_period"], "30"),
     ["overrides", "tenant-a", "retention_period"]),
    ("loki-duration-number", "loki", _with(_loki(), ["overrides", "tenant-a", "retention_period"], 0),
     ["overrides", "tenant-a", "retention_period"]),
    ("tempo-days-go-field", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "metrics_generator", "collection_interval"], "30d"),
     ["overrides", "tenant-a", "metrics_generator", "collection_interval"]),
    ("tempo-days-retention", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "compaction", "block_retention"], "30d"),
     ["overrides", "tenant-a", "compaction", "block_retention"]),
    ("tempo-weeks", "tempo", _with(_tempo(), ["overrides", "tenant-a", "read", "max_search_duration"], "1w"),
     ["overrides", "tenant-a", "read", "max_search_duration"]),
    ("tempo-fraction-in-prom-field", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "compaction", "block_retention"], "1.5h"),
     ["overrides", "tenant-a", "compaction", "block_retention"]),
    ("tempo-negative-duration", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "metrics_generator", "collection_interval"], "-15s"),
     ["overrides", "tenant-a", "metrics_generator", "collection_interval"]),
    ("loki-string-for-number", "loki", _with(_loki(), ["overrides", "tenant-a", "ingestion_rate_mb"], "4"),
     ["overrides", "tenant-a", "ingestion_rate_mb"]),
    ("tempo-string-for-number", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "global", "max_bytes_per_trace"], "5MB"),
     ["overrides", "tenant-a", "global", "max_bytes_per_trace"]),
    ("tempo-float-for-integer", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "ingestion", "rate_limit_bytes"], 1.5),
     ["overrides", "tenant-a", "ingestion", "rate_limit_bytes"]),
    ("loki-unknown-top-level", "loki", {**_loki(), "configs": {}}, []),
    ("tempo-unknown-top-level", "tempo", {**_tempo(), "defaults": {}}, []),
    ("loki-missing-overrides", "loki", {}, []),
    ("tempo-missing-ingestion", "tempo", _tempo(**{"tenant-a": {"compaction": {"block_retention": "168h"}}}),
     ["overrides", "tenant-a"]),
    ("tempo-missing-burst", "tempo", _tempo(**{"*": {"ingestion": {"rate_limit_bytes": 10}}}),
     ["overrides", "*", "ingestion"]),
    ("loki-bad-retention-stream", "loki",
     _with(_loki(), ["overrides", "tenant-a", "retention_stream"], [{"selector": "service_name=x", "period": "1d"}]),
     ["overrides", "tenant-a", "retention_stream", 0, "selector"]),
    ("loki-retention-stream-no-period", "loki",
     _with(_loki(), ["overrides", "tenant-a", "retention_stream"], [{"selector": '{a="b"}', "priority": 1}]),
     ["overrides", "tenant-a", "retention_stream", 0]),
    ("loki-bad-enum", "loki", _with(_loki(), ["overrides", "tenant-a", "deletion_mode"], "delete-everything"),
     ["overrides", "tenant-a", "deletion_mode"]),
    ("tempo-bad-processor", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "metrics_generator", "processors"], ["span-metrics", "bogus"]),
     ["overrides", "tenant-a", "metrics_generator", "processors", 1]),
    ("loki-bad-otlp-regex", "loki",
     _with(_loki(), ["overrides", "tenant-a", "otlp_config"],
           {"log_attributes": [{"action": "drop", "regex": "(unclosed"}]}),
     ["overrides", "tenant-a", "otlp_config", "log_attributes", 0, "regex"]),
    ("loki-index-label-on-log-attrs", "loki",
     _with(_loki(), ["overrides", "tenant-a", "otlp_config"],
           {"log_attributes": [{"action": "index_label", "attributes": ["x"]}]}),
     ["overrides", "tenant-a", "otlp_config", "log_attributes", 0, "action"]),
    ("tenant-not-a-mapping", "loki", _loki(**{"tenant-a": ["retention_period"]}), ["overrides", "tenant-a"]),
]


@pytest.mark.parametrize("case_id, component, doc, path", BAD, ids=[c[0] for c in BAD])
def test_bad_documents_fail_at_the_offending_key(case_id, component, doc, path):
    errors = _errors(component, doc)
    assert errors, f"{case_id}: expected a schema error"
    assert path in [list(e.absolute_path) for e in errors], (
        f"{case_id}: no error at {path}: {[(list(e.absolute_path), e.message) for e in errors]}"
    )


def test_a_bad_tenant_id_error_names_the_tenant():
    """propertyNames errors carry no path below the map: the key itself is the error's instance."""
    errors = _errors("tempo", _tempo(**{"a|b": copy.deepcopy(TEMPO_TENANT)}))
    assert [e.instance for e in errors] == ["a|b"]


# ---------------------------------------------------------------------------------------------
# Good edge cases

GOOD = [
    ("tempo-wildcard", "tempo", _tempo(**{"*": copy.deepcopy(TEMPO_TENANT)})),
    ("loki-0s", "loki", _with(_loki(), ["overrides", "tenant-a", "max_query_lookback"], "0s")),
    ("loki-bare-zero", "loki", _with(_loki(), ["overrides", "tenant-a", "max_query_length"], "0")),
    ("tempo-0s", "tempo", _with(_tempo(), ["overrides", "tenant-a", "compaction", "block_retention"], "0s")),
    ("tempo-1h30m", "tempo", _with(_tempo(), ["overrides", "tenant-a", "compaction", "block_retention"], "1h30m")),
    ("tempo-1h30m-go-field", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "metrics_generator", "ingestion_time_range_slack"], "1h30m")),
    ("tempo-fraction-go-field", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "metrics_generator", "collection_interval"], "1.5m")),
    ("tempo-500ms", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "ingestion", "artificial_delay"], "500ms")),
    ("tempo-micro", "tempo",
     _with(_tempo(), ["overrides", "tenant-a", "ingestion", "artificial_delay"], "250\u00b5s")),
    ("loki-2w", "loki", _with(_loki(), ["overrides", "tenant-a", "retention_period"], "2w")),
    ("loki-2y", "loki", _with(_loki(), ["overrides", "tenant-a", "retention_period"], "2y")),
    ("loki-1d12h", "loki", _with(_loki(), ["overrides", "tenant-a", "retention_period"], "1d12h")),
    ("loki-1m30s500ms", "loki", _with(_loki(), ["overrides", "tenant-a", "query_timeout"], "1m30s500ms")),
    ("loki-150-chars", "loki", _loki(**{"t" * 150: dict(LOKI_TENANT)})),
    ("tempo-150-chars", "tempo", _tempo(**{"t" * 150: copy.deepcopy(TEMPO_TENANT)})),
    ("tempo-all-special-chars", "tempo", _tempo(**{"a!-_.*'()Z9": copy.deepcopy(TEMPO_TENANT)})),
    ("loki-dots-inside", "loki", _loki(**{"team.a..b": dict(LOKI_TENANT)})),
    ("loki-empty-tenant", "loki", _loki(**{"tenant-a": {}})),
    ("loki-empty-overrides", "loki", {"overrides": {}}),
    ("loki-bytes-int", "loki", _with(_loki(), ["overrides", "tenant-a", "per_stream_rate_limit"], 3145728)),
    ("loki-bytes-units", "loki", _with(_loki(), ["overrides", "tenant-a", "max_line_size"], "1.5MiB")),
    ("loki-max-line-size-zero", "loki", _with(_loki(), ["overrides", "tenant-a", "max_line_size"], 0)),
    ("loki-otlp-config", "loki", _with(_loki(), ["overrides", "tenant-a", "otlp_config"], {
        "resource_attributes": {"ignore_defaults": False,
                                "attributes_config": [{"action": "index_label", "attributes": ["k8s.namespace.name"]}]},
        "log_attributes": [{"action": "drop", "regex": "^debug\\..*"}],
    })),
    ("tempo-zero-limits-allowed", "tempo", _tempo(**{"tenant-a": {
        "ingestion": {"rate_limit_bytes": 1, "burst_size_bytes": 1, "max_traces_per_user": 0},
        "global": {"max_bytes_per_trace": 0},
    }})),
    ("tempo-full-groups", "tempo", _tempo(**{"tenant-a": {
        "ingestion": {"rate_strategy": "global", "rate_limit_bytes": 1, "burst_size_bytes": 2,
                      "max_global_traces_per_user": 100, "tenant_shard_size": 3},
        "read": {"max_bytes_per_tag_values_query": 5000000, "max_search_duration": "720h"},
        "compaction": {"block_retention": "720h", "compaction_window": "1h"},
        "metrics_generator": {
            "processors": ["service-graphs", "span-metrics"],
            "max_active_series": 1000, "collection_interval": "15s",
            "generate_native_histograms": "both",
            "remote_write_headers": {"X-Scope-OrgID": "tenant-a"},
            "forwarder": {"queue_size": 100, "workers": 2},
            "processor": {
                "service_graphs": {"dimensions": ["http.method"], "histogram_buckets": [0.1, 1, 10]},
                "span_metrics": {"intrinsic_dimensions": {"status_message": True},
                                 "filter_policies": [{"include": {"match_type": "strict", "attributes": [
                                     {"key": "kind", "value": "SPAN_KIND_SERVER"}]}}]},
                "local_blocks": {"max_live_traces": 100, "max_block_duration": "5m"},
            },
        },
        "forwarders": ["otlp-archive"],
        "global": {"max_bytes_per_trace": 5000000},
        "storage": {"parquet_dedicated_columns": [{"scope": "span", "name": "http.url", "type": "string"}]},
        "cost_attribution": {"max_cardinality": 10000, "dimensions": {"service.name": "service"}},
    }})),
]


@pytest.mark.parametrize("case_id, component, doc", GOOD, ids=[c[0] for c in GOOD])
def test_good_edge_cases_pass(case_id, component, doc):
    assert [(list(e.absolute_path), e.message) for e in _errors(component, doc)] == []


# ---------------------------------------------------------------------------------------------
# Duration syntaxes, checked directly against each duration definition.

LOKI_DURATIONS_OK = ["0", "0s", "30d", "1w", "2y", "168h", "1h30m", "1d12h", "500ms", "1y2w3d4h5m6s7ms", "720h"]
LOKI_DURATIONS_BAD = ["", "1.5h", "30", "1h1d", "1d1d", "-1h", "1H", "1 h", "1h 30m", "5us", "P1D", "1mo"]
TEMPO_GO_OK = ["0", "0s", "168h", "1h30m", "1.5h", ".5s", "500ms", "100us", "100\u00b5s", "100\u03bcs", "10ns", "1m1h"]
TEMPO_GO_BAD = ["", "30d", "1w", "2y", "-1h", "+1h", "1", "1 h", "h", "1.5.h", "1H"]
TEMPO_MODEL_OK = ["0", "0s", "168h", "720h", "1h30m", "90m", "1h0m0s", "500ms"]
TEMPO_MODEL_BAD = ["30d", "1w", "1.5h", "1m1h", "100us", "-1h", "1"]


def _def_validator(component: str, name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{component}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator({**schema["$defs"][name], "$defs": schema["$defs"]})


DURATION_CASES = (
    [("loki", "lokiDuration", v, True) for v in LOKI_DURATIONS_OK]
    + [("loki", "lokiDuration", v, False) for v in LOKI_DURATIONS_BAD]
    + [("tempo", "goDuration", v, True) for v in TEMPO_GO_OK]
    + [("tempo", "goDuration", v, False) for v in TEMPO_GO_BAD]
    + [("tempo", "modelDuration", v, True) for v in TEMPO_MODEL_OK]
    + [("tempo", "modelDuration", v, False) for v in TEMPO_MODEL_BAD]
)


@pytest.mark.parametrize("component,definition,value,valid", DURATION_CASES)
def test_duration_syntax(component, definition, value, valid):
    assert _def_validator(component, definition).is_valid(value) is valid


def test_every_tempo_duration_key_refuses_days():
    """Whatever Go/Prometheus type a Tempo key has upstream, the schema never lets `30d` through."""
    schema = json.loads((SCHEMAS / "tempo.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    paths = []
    for where, node in _walk(schema):
        if node.get("$ref") in ("#/$defs/goDuration", "#/$defs/modelDuration"):
            paths.append(where)
    assert len(paths) >= 10
    for where in paths:
        keys = [p for p in where.split("/") if p not in ("#", "properties", "$defs", "limits")]
        tenant = copy.deepcopy(TEMPO_TENANT)
        doc = _with({"overrides": {"t": tenant}}, ["overrides", "t", *keys], "30d")
        assert not validator.is_valid(doc), where
        ok = _with({"overrides": {"t": tenant}}, ["overrides", "t", *keys], "720h")
        assert validator.is_valid(ok), where
