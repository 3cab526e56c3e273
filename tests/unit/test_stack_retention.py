"""Issue 13 point 3: Loki enforces retention under Helm as under compose. The tenants' retention_period and
retention_stream overrides only act when the compactor runs retention (retention_enabled, a
delete_request_store, a working directory), and the seed's per-tenant defaults must reach limits_config; the
chart (grafana/loki 6.29.0) renders loki.compactor and loki.limits_config into those blocks. One replica on a
filesystem (docs/STACK.md says why)."""

from pathlib import Path

import yaml

STACK = Path(__file__).resolve().parents[2] / "manifests" / "telemetry-storage"


def load(name):
    return yaml.safe_load((STACK / name).read_text())


def test_the_chart_values_run_retention_in_the_compactor():
    compactor = load("helm/loki-values.yaml")["loki"]["compactor"]
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == "filesystem" and compactor["working_directory"].startswith("/var/loki/")


def test_helm_and_compose_give_every_tenant_the_same_seed_limits():
    helm = load("helm/loki-values.yaml")["loki"]["limits_config"]
    compose = load("loki.yaml")["limits_config"]
    assert helm == compose and helm["retention_period"] == "744h"
    compactor = load("loki.yaml")["compactor"]
    assert compactor["retention_enabled"] is True and compactor["delete_request_store"] == "filesystem"


def test_one_loki_replica_on_a_filesystem_never_two():
    values = load("helm/loki-values.yaml")
    assert values["deploymentMode"] == "SingleBinary" and values["singleBinary"]["replicas"] == 1
    assert values["loki"]["storage"]["type"] == "filesystem"
    tenants = yaml.safe_load((STACK / "tenants" / "loki-overrides.yaml").read_text())
    assert any("retention_period" in limits or "retention_stream" in limits
               for limits in (tenants.get("overrides") or {}).values())
