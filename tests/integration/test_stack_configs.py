"""The default bundle's real content: the telemetry stack's configs, compose files and manifest.

- prometheus.yaml and prometheus-additional.yaml are checked with the real `promtool check
  config` (Debian's prometheus package, 2.42). promtool stats every cert/key/token file a
  config names, so the configs are copied into a temp dir with those paths pointed at fixture
  files (a real CA, a certificate it signed and a token). A missing promtool is a FAILURE.
- Loki, Tempo and collector binaries are not available here: their configs are checked for
  structure and cross-file consistency, and the parts that are per-tenant limits are validated
  with the same JSON Schemas as the tenant files.
- The compose files must reference only the four pinned images, and every file they mount
  from the kit must be a file the default manifest installs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "manifests" / "telemetry-storage.yaml"
STACK = REPO / "manifests" / "telemetry-storage"
SCHEMAS = REPO / "schemas"

IMAGES = {
    "docker.io/prom/prometheus:v3.5.0",
    "docker.io/grafana/tempo:2.8.2",
    "docker.io/grafana/loki:3.5.3",
    "docker.io/otel/opentelemetry-collector-contrib:0.130.0",
}
COMPOSE_FILES = {
    "docker-compose.telemetry.yaml": {"otel-collector"},
    "docker-compose.telemetry-storage.yaml": {"prometheus", "tempo", "loki"},
}
TLS_FILES = ("/etc/telemetry/tls/ca.crt", "/etc/telemetry/tls/tls.crt", "/etc/telemetry/tls/tls.key")
TOKEN_FILE = "/etc/telemetry/auth/token"


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _manifest() -> dict:
    return _load(MANIFEST)


def _kit_files() -> dict[str, Path]:
    """Kit path -> source file, for everything the default manifest installs."""
    manifest = _manifest()
    kit = {f["target"]: MANIFEST.parent / f["source"] for f in manifest["spec"]["files"]}
    for component, source in manifest["spec"]["tenants"].items():
        kit[f"tenants/{component}.yaml"] = MANIFEST.parent / source
    return kit


# ---------------------------------------------------------------------------------------------
# promtool


def _promtool() -> str:
    """The promtool executable; its absence FAILS the calling test (it is not a skip)."""
    path = shutil.which("promtool")
    assert path, (
        "promtool is missing: install Debian's prometheus package "
        "(apt-get install -y --no-install-recommends prometheus)"
    )
    return path


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    """A real CA, a certificate it signed (server and client use) and a bearer token."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    root = tmp_path_factory.mktemp("telemetry")
    (root / "tls").mkdir()
    (root / "auth").mkdir()
    now = dt.datetime.now(dt.timezone.utc)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telemetry test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = ["otel-collector", "tempo", "loki", "prometheus", "localhost",
             "otel-collector.observability.svc"]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "otel-collector")]))
        .issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (root / "tls" / "ca.crt").write_bytes(ca.public_bytes(pem))
    (root / "tls" / "tls.crt").write_bytes(cert.public_bytes(pem))
    (root / "tls" / "tls.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (root / "auth" / "token").write_text("test-token\n", encoding="ascii")
    return root


def _relocate(text: str, root: Path) -> str:
    """Point the config's secret paths at the fixture files."""
    out = text.replace("/etc/telemetry/tls/", f"{root}/tls/").replace("/etc/telemetry/auth/", f"{root}/auth/")
    left = [s for s in _strings(yaml.safe_load(out)) if s.startswith("/etc/")]
    assert not left, f"paths not relocated: {left}"
    return out


def _promtool_check(promtool: str, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True,
                          timeout=60)


def test_prometheus_config_passes_promtool(secrets_dir, tmp_path):
    promtool = _promtool()
    config = tmp_path / "prometheus.yml"
    config.write_text(_relocate((STACK / "prometheus.yaml").read_text(encoding="utf-8"), secrets_dir),
                      encoding="utf-8")
    result = _promtool_check(promtool, config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_additional_scrape_config_passes_promtool_when_wrapped(secrets_dir, tmp_path):
    promtool = _promtool()
    jobs = yaml.safe_load(_relocate((STACK / "prometheus-additional.yaml").read_text(encoding="utf-8"),
                                    secrets_dir))
    assert isinstance(jobs, list) and jobs, "additional scrape config must be a bare list of jobs"
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": jobs}, sort_keys=False), encoding="utf-8")
    result = _promtool_check(promtool, config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_really_checks_the_secret_files_and_the_keys(secrets_dir, tmp_path):
    """Negative controls: the check above would catch a missing key file and an unknown option."""
    promtool = _promtool()
    text = _relocate((STACK / "prometheus.yaml").read_text(encoding="utf-8"), secrets_dir)
    missing = tmp_path / "missing.yml"
    missing.write_text(text.replace(f"{secrets_dir}/tls/tls.key", f"{secrets_dir}/tls/absent.key"),
                       encoding="utf-8")
    result = _promtool_check(promtool, missing)
    assert result.returncode != 0 and "absent.key" in result.stdout + result.stderr

    typo = tmp_path / "typo.yml"
    typo.write_text(text.replace("metrics_path:", "metric_path:", 1), encoding="utf-8")
    assert _promtool_check(promtool, typo).returncode != 0


def _collector_job(jobs: list, target: str) -> dict:
    [job] = [j for j in jobs if j["job_name"] == "otel-collector"]
    assert job["scheme"] == "https"
    assert job["static_configs"][0]["targets"] == [target]
    tls = job["tls_config"]
    assert (tls["ca_file"], tls["cert_file"], tls["key_file"]) == TLS_FILES
    assert job["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}
    return job


def test_prometheus_scrapes_the_collector_with_mtls_and_the_token():
    config = _load(STACK / "prometheus.yaml")
    _collector_job(config["scrape_configs"], "otel-collector:9464")
    for job in config["scrape_configs"]:
        assert "bearer_token_file" not in job and "bearer_token" not in job  # deprecated forms


def test_additional_scrape_config_targets_the_collector_service():
    jobs = _load(STACK / "prometheus-additional.yaml")
    _collector_job(jobs, "otel-collector.observability.svc:9464")
    # Tempo's and Loki's metrics under Kubernetes too, over their mutual-TLS API ports (issue 13 point 1)
    by_name = {j["job_name"]: j for j in jobs}
    for name, target in (("tempo", "tempo.observability.svc:3200"), ("loki", "loki.observability.svc:3100")):
        job = by_name[name]
        assert job["scheme"] == "https" and job["tls_config"]["cert_file"] == "/etc/telemetry/tls/tls.crt"
        assert job["static_configs"][0]["targets"] == [target]


# ---------------------------------------------------------------------------------------------
# The default manifest


def test_manifest_has_the_expected_shape():
    manifest = _manifest()
    assert manifest["apiVersion"] == "offline-bundle/v1"
    assert manifest["kind"] == "Bundle"
    assert manifest["metadata"] == {"name": "telemetry-storage", "version": "2026.11.0",
                                    "created": "2026-11-26T00:00:00Z"}
    assert set(manifest["spec"]) == {"charts", "files", "images", "tenants", "deploy"}
    charts = {c["name"]: c for c in manifest["spec"]["charts"]}
    assert set(charts) == {"prometheus", "loki", "tempo"}
    assert charts["prometheus"]["repo"] == "https://prometheus-community.github.io/helm-charts"
    assert charts["loki"]["repo"] == charts["tempo"]["repo"] == "https://grafana.github.io/helm-charts"
    # every chart takes its image from the bundle, and its values file exists and parses
    bundled = {i["ref"] for i in manifest["spec"]["images"]}
    for chart in charts.values():
        assert chart["images"] and all(i["ref"] in bundled for i in chart["images"])
        assert isinstance(_load(MANIFEST.parent / chart["values"]), dict)
    # the bundle carries exactly the images the compose files run
    compose_images = set()
    for name in COMPOSE_FILES:
        for svc in _load(STACK / "compose" / name)["services"].values():
            compose_images.add(svc["image"])
    assert {i["ref"] for i in manifest["spec"]["images"]} == compose_images
    assert all(i["platforms"] == ["linux/amd64", "linux/arm64"] for i in manifest["spec"]["images"])
    assert manifest["spec"]["tenants"] == {
        "loki": "telemetry-storage/tenants/loki-overrides.yaml",
        "tempo": "telemetry-storage/tenants/tempo-overrides.yaml",
    }
    for entry in manifest["spec"]["files"]:
        assert set(entry) == {"source", "target"}
        top, name = entry["target"].split("/")
        assert top in ("config", "compose"), entry
        assert name == posixpath.basename(entry["source"]), entry


def test_manifest_validates_against_the_manifest_schema():
    schema_path = SCHEMAS / "manifest.schema.json"
    assert schema_path.is_file(), "schemas/manifest.schema.json is missing"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(_manifest()))
    assert [e.message for e in errors] == []


def test_every_file_named_in_the_manifest_exists():
    for kit_path, source in _kit_files().items():
        assert source.is_file(), f"{kit_path}: {source} does not exist"


def test_every_shipped_stack_file_is_in_the_manifest():
    shipped = {p.resolve() for p in STACK.rglob("*") if p.is_file()}
    listed = {p.resolve() for p in _kit_files().values()}
    listed |= {(MANIFEST.parent / c["values"]).resolve() for c in _manifest()["spec"]["charts"]}
    assert shipped == listed


def test_tenant_files_validate_against_their_component_schema():
    for component, source in _manifest()["spec"]["tenants"].items():
        schema = json.loads((SCHEMAS / "tenants" / f"{component}.schema.json").read_text(encoding="utf-8"))
        doc = _load(MANIFEST.parent / source)
        errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(doc))
        assert [e.message for e in errors] == [], component


# ---------------------------------------------------------------------------------------------
# Compose files


def _compose(name: str) -> dict:
    return _load(STACK / "compose" / name)


def _mounts(service: dict) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), "use the short volume syntax"
        parts = volume.split(":")
        if parts[0].startswith("${"):  # ${VAR:?message}:target[:ro]
            end = volume.index("}")
            source, rest = volume[: end + 1], volume[end + 2:].split(":")
        else:
            source, rest = parts[0], parts[1:]
        out.append((source, rest[0]))
    return out


@pytest.mark.parametrize("name", sorted(COMPOSE_FILES))
def test_compose_file_structure(name):
    compose = _compose(name)
    assert set(compose["services"]) == COMPOSE_FILES[name]
    assert compose["networks"]["telemetry"]["name"] == "telemetry"
    for svc_name, service in compose["services"].items():
        assert service["image"] in IMAGES, f"{name}:{svc_name} uses {service['image']}"
        assert service["volumes"], f"{name}:{svc_name} mounts nothing"
        assert service["networks"] == ["telemetry"]
        for source, _ in _mounts(service):
            if source.startswith("${"):
                assert source.split(":")[0] in ("${TELEMETRY_TLS_DIR", "${TELEMETRY_TOKEN_DIR",
                                                "${TELEMETRY_S3_DIR"), source
                assert ":?" in source, f"{source}: an unset variable must be an error"
        for volume in service["volumes"]:
            if volume.split(":")[0].startswith("."):
                assert volume.endswith(":ro"), f"{volume}: kit files are mounted read-only"
    named = {s for svc in compose["services"].values() for s, _ in _mounts(svc)
             if not s.startswith((".", "/", "$"))}
    assert named == set(compose.get("volumes") or {}), "named volumes must be declared"


def test_compose_files_use_exactly_the_four_pinned_images():
    used = {svc["image"] for name in COMPOSE_FILES for svc in _compose(name)["services"].values()}
    assert used == IMAGES


def test_compose_ports_match_the_seed():
    def published(name, svc):
        return {p.split(":")[0] for p in _compose(name)["services"][svc].get("ports", [])}
    storage = "docker-compose.telemetry-storage.yaml"
    assert published(storage, "prometheus") == {"9090"}
    assert published(storage, "tempo") == {"3200"}
    assert published(storage, "loki") == {"3100"}
    assert {"4317", "4318", "9464"} <= published("docker-compose.telemetry.yaml", "otel-collector")


def _service_configs():
    """(compose file, service, {container path: kit path}, other mount targets, service dict)."""
    kit = _kit_files()
    for name in COMPOSE_FILES:
        for svc_name, service in _compose(name)["services"].items():
            files, dirs = {}, []
            for source, target in _mounts(service):
                if source.startswith("."):
                    kit_path = posixpath.normpath(posixpath.join("compose", source))
                    assert kit_path in kit, f"{name}:{svc_name} mounts {source}, which the kit does not hold"
                    files[target] = kit_path
                else:
                    dirs.append(target)
            yield name, svc_name, files, dirs, service


def test_every_kit_file_mounted_by_compose_is_installed_by_the_manifest():
    """...and every config/tenant file is used by some service (the Kubernetes-only
    prometheus-additional.yaml excepted)."""
    mounted = {kit_path for _n, _s, files, _d, _v in _service_configs() for kit_path in files.values()}
    expected = {p for p in _kit_files() if p.startswith(("config/", "tenants/"))}
    assert mounted == expected - {"config/prometheus-additional.yaml"}


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def test_every_path_a_config_names_is_mounted_into_its_container():
    """Each /etc/... path in a mounted config (and in the command line) exists in the container."""
    for name, svc_name, files, dirs, service in _service_configs():
        mounted_files = set(files)
        for kit_path in files.values():
            if not kit_path.startswith("config/"):
                continue
            config = _load(_kit_files()[kit_path])
            paths = [s for s in _strings(config) if s.startswith("/etc/")]
            paths += [arg.split("=", 1)[1] for arg in service.get("command", []) if "=/etc/" in arg]
            assert paths, f"{name}:{svc_name}: {kit_path} names no mounted path"
            for path in paths:
                assert path in mounted_files or any(path.startswith(d + "/") for d in dirs), (
                    f"{name}:{svc_name}: {kit_path} names {path}, which is not mounted")


def test_config_hosts_are_compose_services():
    services = {s for name in COMPOSE_FILES for s in _compose(name)["services"]}
    prometheus = _load(STACK / "prometheus.yaml")
    for job in prometheus["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                assert target.split(":")[0] in services | {"localhost"}, target
    collector = _load(STACK / "otel-collector.yaml")
    assert collector["exporters"]["otlp/tempo"]["endpoint"] == "tempo:4317"
    assert collector["exporters"]["otlphttp/loki"]["endpoint"] == "https://loki:3100/otlp"


def test_compose_config_accepted_by_docker_compose(tmp_path):
    """Debian's docker-compose v1 (`docker-compose config`); scripts/setup.sh installs it."""
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose)"
    env = dict(os.environ, TELEMETRY_TLS_DIR=str(tmp_path), TELEMETRY_TOKEN_DIR=str(tmp_path),
               TELEMETRY_S3_DIR=str(tmp_path), TELEMETRY_SECRETS_GID="4242")
    for name in COMPOSE_FILES:
        result = subprocess.run([tool, "-f", str(STACK / "compose" / name), "config"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        services = yaml.safe_load(result.stdout)["services"]
        # issue 13 point 5: every container gets the group that may read the secrets, and keeps its own user
        assert all(s.get("group_add") == ["4242"] and "user" not in s for s in services.values()), name
        for variable in ("TELEMETRY_TLS_DIR", "TELEMETRY_SECRETS_GID"):
            unset = dict(env)
            del unset[variable]
            result = subprocess.run([tool, "-f", str(STACK / "compose" / name), "config", "-q"],
                                    capture_output=True, text=True, env=unset, timeout=60)
            assert result.returncode != 0 and variable in result.stderr, (name, variable)


# ---------------------------------------------------------------------------------------------
# Loki, Tempo and collector configs (no binaries here: structure + schemas)


def _tenant_limits_validator(component: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "tenants" / f"{component}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator({"$ref": "#/$defs/limits", "$defs": schema["$defs"]},
                                format_checker=FormatChecker())


def _mount_target(service: str, kit_path: str) -> str:
    for _name, svc_name, files, _dirs, _service in _service_configs():
        if svc_name == service:
            return next(t for t, k in files.items() if k == kit_path)
    raise AssertionError(f"{service} not found")


def _assert_mtls_server(server: dict, port: int) -> None:
    assert server["http_listen_port"] == port
    tls = server["http_tls_config"]
    assert tls["client_auth_type"] == "RequireAndVerifyClientCert"
    assert (tls["client_ca_file"], tls["cert_file"], tls["key_file"]) == TLS_FILES


def test_loki_config():
    loki = _load(STACK / "loki.yaml")
    assert loki["auth_enabled"] is True
    _assert_mtls_server(loki["server"], 3100)
    assert loki["common"]["storage"]["filesystem"]
    [period] = loki["schema_config"]["configs"]
    assert (period["store"], period["schema"], period["object_store"]) == ("tsdb", "v13", "filesystem")
    assert period["index"]["period"] == "24h"
    compactor = loki["compactor"]
    assert compactor["retention_enabled"] is True and compactor["delete_request_store"] == "filesystem"
    assert loki["runtime_config"]["file"] == "/etc/telemetry/tenants/loki-overrides.yaml"
    assert loki["runtime_config"]["file"] == _mount_target("loki", "tenants/loki.yaml")
    assert "retention_period" in loki["limits_config"]
    errors = list(_tenant_limits_validator("loki").iter_errors(loki["limits_config"]))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_tempo_config():
    tempo = _load(STACK / "tempo.yaml")
    assert tempo["multitenancy_enabled"] is True
    _assert_mtls_server(tempo["server"], 3200)
    protocols = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    for proto in protocols.values():
        assert proto["tls"]["client_ca_file"] == TLS_FILES[0]
    trace = tempo["storage"]["trace"]
    assert trace["backend"] == "s3"
    assert trace["s3"]["bucket"] == "tempo-traces"
    assert "tempo-minio.observability.svc:9000" in trace["s3"]["endpoint"]
    assert not {"access_key", "secret_key"} & set(trace["s3"]), "S3 credentials come from the environment"
    overrides = tempo["overrides"]
    assert set(overrides) == {"per_tenant_override_config", "per_tenant_override_period", "defaults"}, (
        "only the current (non-legacy) overrides format")
    assert overrides["per_tenant_override_config"] == _mount_target("tempo", "tenants/tempo.yaml")
    errors = list(_tenant_limits_validator("tempo").iter_errors(overrides["defaults"]))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []
    command = _compose("docker-compose.telemetry-storage.yaml")["services"]["tempo"]["command"]
    assert "-config.expand-env=true" in command, "tempo.yaml reads ${TEMPO_S3_*}"


def _expand_env(text: str, env: dict) -> str:
    """What -config.expand-env does to ${VAR} and ${VAR:-default} before Tempo parses the YAML."""
    def sub(match):
        name, default = match.group(1), match.group(3)
        return env.get(name) or (default if default is not None else "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", sub, text)


@pytest.mark.parametrize("env, endpoint, insecure", [
    ({}, "tempo-minio.observability.svc:9000", False),
    ({"TEMPO_S3_ENDPOINT": "minio.site:9000", "TEMPO_S3_INSECURE": "true"}, "minio.site:9000", True),
])
def test_tempo_config_after_env_expansion(env, endpoint, insecure):
    text = (STACK / "tempo.yaml").read_text(encoding="utf-8")
    assert set(re.findall(r"\$\{([A-Za-z_0-9]+)", text)) == {"TEMPO_S3_ENDPOINT", "TEMPO_S3_INSECURE"}
    s3 = yaml.safe_load(_expand_env(text, env))["storage"]["trace"]["s3"]
    assert s3["endpoint"] == endpoint
    assert s3["insecure"] is insecure
    passed = _compose("docker-compose.telemetry-storage.yaml")["services"]["tempo"]["environment"]
    assert {"TEMPO_S3_ENDPOINT", "TEMPO_S3_INSECURE"} <= set(passed)


def _component_ids(section: dict) -> set[str]:
    return set(section or {})


def test_collector_config_is_consistent():
    otel = _load(STACK / "otel-collector.yaml")
    service = otel["service"]
    extensions = _component_ids(otel["extensions"])
    assert set(service["extensions"]) == extensions
    for kind in ("receivers", "processors", "exporters"):
        defined = _component_ids(otel[kind])
        used = {c for p in service["pipelines"].values() for c in p.get(kind, [])}
        assert used <= defined, f"{kind}: {used - defined} used but not defined"
        assert defined <= used, f"{kind}: {defined - used} defined but unused"
    for pipeline in service["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"
    for exporter in otel["exporters"].values():
        auth = exporter.get("auth", {}).get("authenticator")
        assert auth is None or auth in service["extensions"]
    assert set(service["pipelines"]) == {"traces", "metrics", "logs"}
    assert service["pipelines"]["traces"]["exporters"] == ["otlp/tempo"]
    assert service["pipelines"]["logs"]["exporters"] == ["otlphttp/loki"]
    assert service["pipelines"]["metrics"]["exporters"] == ["prometheus"]

    protocols = otel["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    for proto in protocols.values():
        assert proto["tls"] == {"cert_file": TLS_FILES[1], "key_file": TLS_FILES[2],
                                "client_ca_file": TLS_FILES[0]}
        assert proto["include_metadata"] is True

    [header] = otel["extensions"]["headers_setter"]["headers"]
    assert header["key"] == "X-Scope-OrgID" and header["from_context"] == "X-StellaOps-Tenant"
    assert otel["processors"]["batch"]["metadata_keys"] == ["X-StellaOps-Tenant"]
    for name in ("otlp/tempo", "otlphttp/loki"):
        exporter = otel["exporters"][name]
        assert exporter["tls"] == {"ca_file": TLS_FILES[0], "cert_file": TLS_FILES[1], "key_file": TLS_FILES[2]}
        assert exporter["auth"]["authenticator"] == "headers_setter"
    prom = otel["exporters"]["prometheus"]
    assert prom["endpoint"] == "0.0.0.0:9464"
    assert prom["tls"]["client_ca_file"] == TLS_FILES[0]
    token_auth = prom["auth"]["authenticator"]
    assert otel["extensions"][token_auth]["filename"] == TOKEN_FILE
