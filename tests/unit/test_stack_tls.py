"""Issue 13 point 1: the stack's TLS is switched on where it listens, under Helm as under compose.

Before, the charts' values mounted the certificates but Loki, Tempo and Prometheus served plain HTTP under Helm,
and Prometheus served plain HTTP under compose: a collector configured like otel-collector.yaml (https to Loki,
TLS to Tempo's OTLP) could not connect, and anyone in the cluster could query. Each test below fails on those
values. The chart paths are the ones grafana/loki 6.29.0, grafana/tempo 1.23.3 and prometheus-community/
prometheus 27.19.0 render (tests/integration/test_k8s_validate.py renders the real charts where they can be had).
"""

from pathlib import Path

import yaml

STACK = Path(__file__).resolve().parents[2] / "manifests" / "telemetry-storage"
TLS = {"cert_file": "/etc/telemetry/tls/tls.crt", "key_file": "/etc/telemetry/tls/tls.key",
       "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "/etc/telemetry/tls/ca.crt"}
RECEIVER_TLS = {"cert_file": "/etc/telemetry/tls/tls.crt", "key_file": "/etc/telemetry/tls/tls.key",
                "client_ca_file": "/etc/telemetry/tls/ca.crt"}


def load(name):
    return yaml.safe_load((STACK / name).read_text())


def mounted_tls(values_mounts):
    return any(m["mountPath"] == "/etc/telemetry/tls" for m in values_mounts)


# --- Helm -------------------------------------------------------------------------------------------------------
def test_loki_serves_mutual_tls_and_keeps_grpc_inside_the_pod():
    values = load("helm/loki-values.yaml")
    loki = values["loki"]
    assert loki["server"]["http_tls_config"] == TLS
    assert loki["server"]["grpc_listen_address"] == "127.0.0.1"
    # the rings advertise where gRPC listens: one replica, rings in memory (as config/loki.yaml)
    assert loki["commonConfig"]["instance_addr"] == "127.0.0.1"
    assert loki["commonConfig"]["ring"]["kvstore"]["store"] == "inmemory"
    assert loki["memberlistConfig"] == {"bind_addr": ["127.0.0.1"]}
    assert mounted_tls(values["singleBinary"]["extraVolumeMounts"])


def test_tempo_serves_mutual_tls_and_takes_otlp_only_with_client_certificates():
    values = load("helm/tempo-values.yaml")
    tempo = values["tempo"]
    assert tempo["server"]["http_tls_config"] == TLS
    assert tempo["server"]["grpc_listen_address"] == "127.0.0.1"
    assert tempo["ingester"]["lifecycler"]["address"] == "127.0.0.1"
    protocols = tempo["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["tls"] == RECEIVER_TLS and protocols["http"]["tls"] == RECEIVER_TLS
    # the chart's default Jaeger/OpenCensus receivers (no TLS) are not rendered: its config takes otlp only
    assert '(pick .Values.tempo.receivers "otlp")' in values["config"]
    assert yaml.safe_load(values["config"].split("multitenancy_enabled")[0])["memberlist"]["bind_addr"] == \
        ["127.0.0.1"]
    assert "toYaml .Values.tempo.receivers |" not in values["config"]
    assert mounted_tls(tempo["extraVolumeMounts"])


def test_prometheus_serves_https_with_client_certificates_as_compose_does():
    values = load("helm/prometheus-values.yaml")
    assert "web.config.file=/etc/config/web.yml" in values["server"]["extraFlags"]
    assert values["serverFiles"]["web.yml"] == load("prometheus-web.yaml")
    assert values["serverFiles"]["web.yml"]["tls_server_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
    jobs = values["serverFiles"]["prometheus.yml"]["scrape_configs"]
    assert [j["job_name"] for j in jobs] == ["prometheus"] and jobs[0]["scheme"] == "https"
    assert jobs[0]["tls_config"]["cert_file"] == "/etc/telemetry/tls/tls.crt"


def test_every_probe_works_without_a_client_certificate():
    """The kubelet cannot present one: an HTTP(S) probe of a port that requires it would fail its handshake."""
    loki = load("helm/loki-values.yaml")["loki"]["readinessProbe"]
    assert loki["httpGet"] is None and loki["tcpSocket"] == {"port": "http-metrics"}
    tempo = load("helm/tempo-values.yaml")["tempo"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert tempo[probe]["httpGet"] is None and tempo[probe]["tcpSocket"] == {"port": 3200}
    assert load("helm/prometheus-values.yaml")["server"]["tcpSocketProbeEnabled"] is True


def test_tempo_keeps_blocks_and_limits_as_compose_does():
    values = load("helm/tempo-values.yaml")["tempo"]
    compose = load("tempo.yaml")
    assert values["retention"] == compose["compactor"]["compaction"]["block_retention"] == "168h"
    assert values["overrides"] == compose["overrides"]


# --- compose ----------------------------------------------------------------------------------------------------
def test_compose_configs_serve_mutual_tls_with_grpc_on_loopback():
    for name in ("loki.yaml", "tempo.yaml"):
        server = load(name)["server"]
        assert server["http_tls_config"] == TLS and server["grpc_listen_address"] == "127.0.0.1", name
    assert load("tempo.yaml")["ingester"]["lifecycler"]["address"] == "127.0.0.1"
    assert load("loki.yaml")["common"]["instance_addr"] == "127.0.0.1"
    for name in ("loki.yaml", "tempo.yaml"):  # no other container can gossip itself into a ring
        assert load(name)["memberlist"]["bind_addr"] == ["127.0.0.1"], name
    tempo = load("tempo.yaml")["distributor"]["receivers"]
    assert set(tempo) == {"otlp"} and all(p["tls"] == RECEIVER_TLS for p in tempo["otlp"]["protocols"].values())


def test_compose_prometheus_serves_https_and_scrapes_itself_with_its_certificate():
    service = load("compose/docker-compose.telemetry-storage.yaml")["services"]["prometheus"]
    assert "--web.config.file=/etc/prometheus/web.yml" in service["command"]
    assert "../config/prometheus-web.yaml:/etc/prometheus/web.yml:ro" in service["volumes"]
    web = load("prometheus-web.yaml")["tls_server_config"]
    assert {k: web[k] for k in TLS} == TLS and web["min_version"] == "TLS12"
    jobs = {j["job_name"]: j for j in load("prometheus.yaml")["scrape_configs"]}
    assert all(j.get("scheme") == "https" and "cert_file" in j["tls_config"] for j in jobs.values()), jobs


def test_the_collector_reaches_loki_and_tempo_over_tls_with_its_certificate():
    exporters = load("otel-collector.yaml")["exporters"]
    assert exporters["otlphttp/loki"]["endpoint"].startswith("https://")
    for name in ("otlp/tempo", "otlphttp/loki"):
        assert exporters[name]["tls"]["cert_file"] == "/etc/telemetry/tls/tls.crt"
        assert exporters[name]["tls"].get("insecure") is not True


def test_every_compose_container_gets_the_secrets_group():
    """Issue 13 point 5: the containers keep their own users and get the group install --secrets-group made."""
    for name in ("docker-compose.telemetry-storage.yaml", "docker-compose.telemetry.yaml"):
        for service, spec in load("compose/" + name)["services"].items():
            assert len(spec["group_add"]) == 1 and spec["group_add"][0].startswith("${TELEMETRY_SECRETS_GID:?"), \
                service
            assert "user" not in spec, service
