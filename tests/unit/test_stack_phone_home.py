"""Issue 13 point 4: the default bundle's stack never phones home. The upstream charts report usage by default
(grafana/tempo 1.23.3: tempo.reportingEnabled true, rendered into usage_report.reporting_enabled; grafana/loki
6.29.0: loki.analytics rendered into Loki's analytics block, whose reporting_enabled defaults to true); the
shipped chart values and the compose configs turn each off."""

from pathlib import Path

import yaml

STACK = Path(__file__).resolve().parents[2] / "manifests" / "telemetry-storage"


def load(name):
    return yaml.safe_load((STACK / name).read_text())


def test_the_chart_values_turn_usage_reporting_off():
    assert load("helm/tempo-values.yaml")["tempo"]["reportingEnabled"] is False
    assert load("helm/loki-values.yaml")["loki"]["analytics"]["reporting_enabled"] is False


def test_the_compose_configs_turn_usage_reporting_off():
    assert load("tempo.yaml")["usage_report"]["reporting_enabled"] is False
    assert load("loki.yaml")["analytics"]["reporting_enabled"] is False
