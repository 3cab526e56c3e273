"""installer/deploy/k8s.py against the real kubectl (v1.35, .tools/bin/kubectl; scripts/setup.sh installs it).

Every object we build is compared, as parsed data, with what `kubectl create ... --dry-run=client`
prints (both -o json and -o yaml) for the same input files: the seed's bootstrap commands
(the seed's settings), as the default manifest's `spec.deploy` section declares them, with the bundle's
real tenant and scrape files, plus text and binary edge cases.
A missing kubectl is a FAILURE, not a skip.

There is no API server here. `kubectl apply --dry-run=client -f` and `kubectl create --dry-run=client -f`
need one (API discovery maps kind -> resource before anything else), so our files are shown to be
accepted in two ways: fully offline with `kubectl kustomize` and `kubectl label --local`, and with
the real `kubectl apply --dry-run=client` against a discovery-only stub server that answers 404 to
every object GET and refuses every write (a supplement, not the only check).
"""

import base64
import json
import os
import shutil
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from bundler.plan.manifest import load_manifest
from installer.deploy import k8s
from installer.errors import InvalidInput, LocalEnvironmentError

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
STACK = REPO / "manifests" / "telemetry-storage"
TENANTS = {"loki": STACK / "tenants" / "loki-overrides.yaml", "tempo": STACK / "tenants" / "tempo-overrides.yaml"}
SCRAPE = STACK / "prometheus-additional.yaml"
NS = "observability"

# The seed's objects are the default manifest's data now: read them from there.
DEPLOY = load_manifest(str(REPO / "manifests" / "telemetry-storage.yaml")).deploy
KUBE = DEPLOY.kubernetes
assert DEPLOY.namespace == NS
TENANT_CONFIGMAPS = {e.ref: (o.name, e.key) for o in KUBE.configmaps for e in o.data if e.source == "tenant"}
TLS_SECRET, TOKEN_SECRET, SCRAPE_SECRET, S3_SECRET = [o.name for o in KUBE.secrets]

# Small dummy TLS material and token: the bytes are what matters, not their validity as PKI.
TLS = {
    "tls.crt": b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUCollectorStage\n-----END CERTIFICATE-----\n",
    "tls.key": (b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49SECRETKEYMATERIAL\n"
                b"-----END PRIVATE KEY-----\n"),
    "ca.crt": b"-----BEGIN CERTIFICATE-----\nMIIBrTCCAVOgAwIBAgIUCollectorCA\n-----END CERTIFICATE-----\n",
}
TOKEN = b"eyJhbGciOiJFZERTQSJ9.dummy-prometheus-stage-token.c2lnbmF0dXJl"
S3 = {"access_key_id": b"TEMPOACCESSKEYSTAGE01", "secret_access_key": b"tempo-secret-access-key-stage/XYZ0123456789"}


# --- running the real kubectl --------------------------------------------------------------------
def require_kubectl(path: Path) -> None:
    if not (path.is_file() and os.access(str(path), os.X_OK)):
        pytest.fail("%s is missing: run scripts/setup.sh (it installs helm and kubectl into .tools/bin)" % path)


@pytest.fixture(scope="session")
def kubectl(tmp_path_factory):
    """Run the pinned kubectl with no kubeconfig and a private HOME (nothing from this host leaks in)."""
    require_kubectl(KUBECTL)
    home = tmp_path_factory.mktemp("kubectl-home")

    def run(*args, kubeconfig=None, check=True, timeout=120):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home),
               "KUBECONFIG": str(kubeconfig or home / "no-such-kubeconfig")}
        proc = subprocess.run([str(KUBECTL)] + [str(a) for a in args], capture_output=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, "kubectl %s: rc=%d\n%s" % (" ".join(map(str, args)), proc.returncode,
                                                                   proc.stderr.decode(errors="replace"))
        return proc
    version = run("version", "--client", "-o", "json")
    assert json.loads(version.stdout)["clientVersion"]["minor"] == "35", version.stdout
    return run


def kubectl_object(kubectl, *args) -> dict:
    """What `kubectl ARGS --dry-run=client` prints, parsed from -o json and from -o yaml (they must agree)."""
    as_json = json.loads(kubectl(*args, "--dry-run=client", "-o", "json").stdout)
    as_yaml = yaml.safe_load(kubectl(*args, "--dry-run=client", "-o", "yaml").stdout)
    assert as_json == as_yaml
    return as_json


def from_files(tmp_path, files: dict) -> list:
    """Write files to disk and return the matching --from-file=KEY=PATH arguments."""
    folder = tmp_path / "inputs"
    folder.mkdir(exist_ok=True)
    args = []
    for i, (key, data) in enumerate(sorted(files.items())):
        path = folder / ("f%d" % i)
        path.write_bytes(data)
        args.append("--from-file=%s=%s" % (key, path))
    return args


def as_file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def seed_objects(tenant_files, scrape_config, tls, token, s3=S3):
    """k8s.build_objects for the default manifest's deploy section, from bytes in memory: the tenant files by
    component, the scrape file, the site's TLS folder (None: no folder), token (None: no file) and object store
    credentials folder (None: no folder)."""
    def bundle_file(entry):
        return tenant_files[entry.ref] if entry.source == "tenant" else {SCRAPE_TARGET: scrape_config}[entry.ref]

    def site_file(entry):
        if entry.site_folder == "tls":
            return None if tls is None else tls.get(entry.site_file)
        if entry.site_folder == "s3":
            return None if s3 is None else s3.get(entry.site_file)
        return token
    return k8s.build_objects(KUBE, NS, bundle_file, site_file)


SCRAPE_TARGET = "config/prometheus-additional.yaml"


# --- objects equal kubectl's, field for field ----------------------------------------------------
def test_namespace_equals_kubectl(kubectl):
    ours = k8s.namespace(NS)
    assert ours == kubectl_object(kubectl, "create", "namespace", NS)
    assert ours == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}, "spec": {}, "status": {}}
    assert "creationTimestamp" not in ours["metadata"]  # kubectl 1.35 no longer prints creationTimestamp: null


@pytest.mark.parametrize("component", sorted(TENANT_CONFIGMAPS))
def test_tenant_configmaps_equal_the_seed_command(kubectl, tmp_path, component):
    """kubectl -n observability create configmap NAME --from-file=KEY=<tenant file>, byte for byte."""
    name, key = TENANT_CONFIGMAPS[component]
    raw = as_file_bytes(TENANTS[component])
    expected = kubectl_object(kubectl, "-n", NS, "create", "configmap", name,
                              "--from-file=%s=%s" % (key, TENANTS[component]))
    ours = k8s.configmap_from_files(name, NS, {key: raw})
    assert ours == expected
    assert ours["data"][key].encode("utf-8") == raw
    assert "binaryData" not in ours
    configmaps, _secrets, _skipped = seed_objects({c: as_file_bytes(p) for c, p in TENANTS.items()},
                                                  as_file_bytes(SCRAPE), TLS, TOKEN)
    assert [cm for cm in configmaps if cm["metadata"]["name"] == name] == [expected]


TEXT_CASES = {
    "tabs-trailing-space": b"overrides:\n\ttenant-a:   \n  \t retention_period: 168h\t\n\n   \n",
    "crlf-no-final-newline": b"a: 1\r\nb: 2\r\n  c: 3   ",
    "nul-is-valid-utf8": b"\x00a\x00\n",
    "bom-and-non-ascii": b"\xef\xbb\xbfcaf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80\n",
    "empty": b"",
}
BINARY_CASES = {
    "png-header": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
    "latin1": b"caf\xe9\n",
    "utf16-surrogate-encoded": b"\xed\xa0\x80",
    "above-u10ffff": b"\xf4\x90\x80\x80",
    "overlong-slash": b"\xc0\xaf",
    "truncated-sequence": b"ok \xe2\x82",
    "random": bytes(range(256)),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_text_files_go_to_data_like_kubectl(kubectl, tmp_path, case):
    files = {"cfg.yaml": TEXT_CASES[case]}
    expected = kubectl_object(kubectl, "create", "configmap", "edge", "-n", NS, *from_files(tmp_path, files))
    ours = k8s.configmap_from_files("edge", NS, files)
    assert ours == expected
    assert ours["data"]["cfg.yaml"] == TEXT_CASES[case].decode("utf-8")
    assert "binaryData" not in ours


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_non_utf8_files_go_to_binarydata_like_kubectl(kubectl, tmp_path, case):
    files = {"blob.bin": BINARY_CASES[case], "readme.txt": b"plain text\n"}
    expected = kubectl_object(kubectl, "create", "configmap", "edge", "-n", NS, *from_files(tmp_path, files))
    ours = k8s.configmap_from_files("edge", NS, files)
    assert ours == expected
    assert base64.b64decode(ours["binaryData"]["blob.bin"]) == BINARY_CASES[case]
    assert ours["data"] == {"readme.txt": "plain text\n"}


def test_kubectl_yaml_output_loses_nel_but_its_json_and_ours_keep_it(kubectl, tmp_path):
    """U+0085 (NEL) is valid UTF-8, so it is text; kubectl -o yaml writes it as a plain space (its
    YAML emitter), -o json keeps it. We match -o json, and our file reads back exact as YAML too."""
    files = {"nel.txt": "a\u0085b \u0085 c".encode("utf-8")}
    args = ["create", "configmap", "nel", "-n", NS, "--dry-run=client"] + from_files(tmp_path, files)
    as_json = json.loads(kubectl(*args, "-o", "json").stdout)
    as_yaml = yaml.safe_load(kubectl(*args, "-o", "yaml").stdout)
    ours = k8s.configmap_from_files("nel", NS, files)
    assert ours == as_json
    assert as_yaml["data"]["nel.txt"] != ours["data"]["nel.txt"]
    assert yaml.safe_load(k8s.to_json(ours)) == ours


def test_configmap_without_namespace_and_without_files_equals_kubectl(kubectl, tmp_path):
    assert k8s.configmap_from_files("bare", None, {}) == kubectl_object(kubectl, "create", "configmap", "bare")
    files = {"only.bin": b"\xff"}
    assert k8s.configmap_from_files("bin", None, files) == kubectl_object(
        kubectl, "create", "configmap", "bin", *from_files(tmp_path, files))


def test_seed_secrets_equal_the_seed_commands(kubectl, tmp_path):
    _cms, secrets, skipped = seed_objects({c: as_file_bytes(p) for c, p in TENANTS.items()},
                                          as_file_bytes(SCRAPE), TLS, TOKEN)
    assert skipped == []
    by_name = {s["metadata"]["name"]: s for s in secrets}
    assert [s["metadata"]["name"] for s in secrets] == [TLS_SECRET, TOKEN_SECRET, SCRAPE_SECRET, S3_SECRET]
    (tmp_path / "tls").mkdir()
    (tmp_path / "s3").mkdir()
    for key, data in S3.items():
        (tmp_path / "s3" / key).write_bytes(data)
    for key, data in TLS.items():
        (tmp_path / "tls" / key).write_bytes(data)
    (tmp_path / "prometheus-stage.token").write_bytes(TOKEN)
    seed_commands = {
        TLS_SECRET: ["--from-file=tls.crt=%s" % (tmp_path / "tls" / "tls.crt"),
                         "--from-file=tls.key=%s" % (tmp_path / "tls" / "tls.key"),
                         "--from-file=ca.crt=%s" % (tmp_path / "tls" / "ca.crt")],
        TOKEN_SECRET: ["--from-file=token=%s" % (tmp_path / "prometheus-stage.token")],
        SCRAPE_SECRET: ["--from-file=prometheus-additional.yaml=%s" % SCRAPE],
        # issue 13 point 2: the site's object store keys, as env variable names for Tempo's extraEnvFrom
        S3_SECRET: ["--from-file=AWS_ACCESS_KEY_ID=%s" % (tmp_path / "s3" / "access_key_id"),
                    "--from-file=AWS_SECRET_ACCESS_KEY=%s" % (tmp_path / "s3" / "secret_access_key")],
    }
    for name, args in seed_commands.items():
        expected = kubectl_object(kubectl, "-n", NS, "create", "secret", "generic", name, *args)
        assert by_name[name] == expected, name
        assert "type" not in expected  # `create secret generic` without --type prints no type
    assert base64.b64decode(by_name[SCRAPE_SECRET]["data"]["prometheus-additional.yaml"]) == SCRAPE.read_bytes()


@pytest.mark.parametrize("secret_type", ["Opaque", "kubernetes.io/tls"])
def test_secret_type_equals_kubectl_type_flag(kubectl, tmp_path, secret_type):
    files = {"tls.crt": TLS["tls.crt"], "tls.key": TLS["tls.key"], "bin": bytes(range(256))}
    expected = kubectl_object(kubectl, "create", "secret", "generic", "typed", "-n", NS,
                              "--type=%s" % secret_type, *from_files(tmp_path, files))
    assert k8s.secret_from_files("typed", NS, files, type=secret_type) == expected


def test_empty_secret_equals_kubectl(kubectl):
    assert k8s.secret_from_files("empty", None, {}) == kubectl_object(kubectl, "create", "secret", "generic", "empty")


@pytest.mark.parametrize("key", ["a b", "..a", "a/b", ".", "..", "x" * 254, "k\u00e9y"])
def test_keys_kubectl_refuses_are_refused(kubectl, tmp_path, key):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    for kind in (["configmap"], ["secret", "generic"]):
        proc = kubectl("create", *kind, "k", "--from-file=%s=%s" % (key, path), "--dry-run=client", "-o", "json",
                       check=False)
        assert proc.returncode != 0, (kind, key)
    with pytest.raises(InvalidInput):
        k8s.configmap_from_files("k", NS, {key: b"x"})
    with pytest.raises(InvalidInput):
        k8s.secret_from_files("k", NS, {key: b"x"})


@pytest.mark.parametrize("key", ["a", "A_b-c.d", ".hidden", "x" * 253])
def test_keys_kubectl_accepts_are_accepted(kubectl, tmp_path, key):
    files = {key: b"v"}
    assert k8s.configmap_from_files("k", NS, files) == kubectl_object(
        kubectl, "create", "configmap", "k", "-n", NS, *from_files(tmp_path, files))


def test_names_the_api_server_would_refuse_are_refused_early():
    for bad in ("Bad_Name", "-x", "a/b", "", "x" * 254):
        with pytest.raises(InvalidInput):
            k8s.configmap_from_files(bad, NS, {})
        with pytest.raises(InvalidInput):
            k8s.secret_from_files(bad, NS, {})
    for bad in ("Observability", "a.b", "x" * 64):
        with pytest.raises(InvalidInput):
            k8s.namespace(bad)
    with pytest.raises(InvalidInput):
        k8s.configmap_from_files("too-big", NS, {"a": b"x" * (k8s.MAX_OBJECT_DATA + 1)})


# --- build_objects: what is skipped and why -------------------------------------------------------
def test_missing_secret_inputs_are_skipped_with_a_reason_and_no_content():
    tenants = {c: as_file_bytes(p) for c, p in TENANTS.items()}
    cms, secrets, skipped = seed_objects(tenants, as_file_bytes(SCRAPE), None, None, None)
    assert [c["metadata"]["name"] for c in cms] == ["stellaops-loki-tenant-overrides", "tempo-tenant-overrides"]
    assert [s["metadata"]["name"] for s in secrets] == [SCRAPE_SECRET]
    assert len(skipped) == 3
    assert skipped[0] == ("secret %s: missing or empty: KIT/secrets/tls/tls.crt, KIT/secrets/tls/tls.key, "
                          "KIT/secrets/tls/ca.crt — add them and install again" % TLS_SECRET)
    assert skipped[1] == ("secret %s: missing or empty: KIT/secrets/token/token — add it and install again"
                          % TOKEN_SECRET)
    assert skipped[2] == ("secret %s: missing or empty: KIT/secrets/s3/access_key_id, KIT/secrets/s3/secret_access_key"
                          " — add them and install again" % S3_SECRET)

    partial = {"tls.crt": TLS["tls.crt"], "tls.key": b""}
    _cms, secrets, skipped = seed_objects(tenants, b"", partial, b"", {"access_key_id": b"AK"})
    assert secrets == []
    assert "secret_access_key" in "\n".join(skipped) and "AK" not in "\n".join(skipped)
    text = "\n".join(skipped)
    assert "tls.key" in text and "ca.crt" in text and "tls.crt" not in text
    assert "the bundle's config/prometheus-additional.yaml" in text  # an empty bundle file skips its Secret too
    assert TLS["tls.crt"].decode() not in text and "MIIB" not in text


def test_objects_follow_the_deploy_section_and_nothing_else():
    """Another product's section: its own names, keys and order; a ConfigMap may take several files."""
    from installer.format.deployspec import DeploySpec

    spec = DeploySpec.from_dict({"namespace": "shop", "kubernetes": {
        "configmaps": [{"name": "shop.config", "data": [{"key": "b.yaml", "file": "config/b.yaml"},
                                                        {"key": "a.yaml", "tenant": "web"}]}],
        "secrets": [{"name": "shop-db", "data": [{"key": "password", "site": "token/db"},
                                                 {"key": "ca.pem", "site": "tls/root.crt"}]}]}}, "test")
    files = {"config/b.yaml": b"b: 1\n", "web": b"a: 1\n"}
    site = {"token/db": b"pw", "tls/root.crt": b"CA"}
    cms, secrets, skipped = k8s.build_objects(spec.kubernetes, spec.namespace, lambda e: files[e.ref],
                                              lambda e: site.get(e.ref))
    assert cms == [k8s.configmap_from_files("shop.config", "shop", {"a.yaml": b"a: 1\n", "b.yaml": b"b: 1\n"})]
    assert secrets == [k8s.secret_from_files("shop-db", "shop", {"password": b"pw", "ca.pem": b"CA"})]
    assert skipped == []
    _cms, secrets, skipped = k8s.build_objects(spec.kubernetes, spec.namespace, lambda e: files[e.ref],
                                               lambda e: None, "/k/secrets")
    assert secrets == [] and skipped == ["secret shop-db: missing or empty: /k/secrets/token/db, "
                                         "/k/secrets/tls/root.crt — add them and install again"]


# --- writing: layout, modes, atomicity ------------------------------------------------------------
def _seed_set():
    cms, secrets, skipped = seed_objects({c: as_file_bytes(p) for c, p in TENANTS.items()},
                                         as_file_bytes(SCRAPE), TLS, TOKEN)
    assert skipped == []
    return cms, secrets, k8s.namespace(NS)


SECRET_NEEDLES = [v for v in TLS.values()] + [TOKEN] + list(S3.values()) + [
    base64.b64encode(v) for v in list(TLS.values()) + [TOKEN] + list(S3.values())]


def _assert_no_secret_in(folder: Path):
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b'"Secret"' not in data, path
            for needle in SECRET_NEEDLES:
                assert needle not in data, path


@pytest.fixture
def umask_000():
    old = os.umask(0)
    yield
    os.umask(old)


def test_write_manifests_layout_modes_and_content(tmp_path, umask_000):
    cms, secrets, ns = _seed_set()
    deploy = tmp_path / "kit" / "deploy" / "telemetry-storage" / "2026.11.0" / "site"
    secret_dir = tmp_path / "kit" / "secrets" / "telemetry-storage" / "2026.11.0" / "site"
    written = k8s.write_manifests(str(deploy), str(secret_dir), cms, secrets, ns)
    assert [Path(p).name for p in written] == [
        "00-namespace-observability.json",
        "01-configmap-stellaops-loki-tenant-overrides.json",
        "02-configmap-tempo-tenant-overrides.json",
        "03-secret-stellaops-otel-tls-stage.json",
        "04-secret-stellaops-prometheus-token.json",
        "05-secret-stellaops-prometheus-scrape.json",
        "06-secret-stellaops-tempo-s3.json",
    ]
    assert [Path(p).parent for p in written] == [deploy] * 3 + [secret_dir] * 4
    assert sorted(os.listdir(deploy)) == [Path(p).name for p in written[:3]]
    assert sorted(os.listdir(secret_dir)) == [Path(p).name for p in written[3:]]
    # modes under umask 000: every created secrets folder 0700, secret files 0600
    for folder in (secret_dir, secret_dir.parent, secret_dir.parent.parent, secret_dir.parent.parent.parent):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    for path in written[3:]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for path in written[:3]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
    _assert_no_secret_in(tmp_path / "kit" / "deploy")
    # no return value carries secret content
    assert not any(n.decode(errors="replace") in "".join(written) for n in SECRET_NEEDLES)
    # each file is the object, read as JSON and as YAML alike
    for path, obj in zip(written, [ns] + cms + secrets):
        raw = Path(path).read_bytes()
        assert json.loads(raw) == obj
        assert yaml.safe_load(raw) == obj


def test_secrets_folder_is_tightened_and_stale_manifests_are_removed(tmp_path, umask_000):
    cms, secrets, ns = _seed_set()
    deploy, secret_dir = tmp_path / "deploy", tmp_path / "secrets"
    secret_dir.mkdir(mode=0o777)
    (secret_dir / "07-secret-left-over.json").write_text("{}")
    (secret_dir / "notes.txt").write_text("not ours")
    first = k8s.write_manifests(str(deploy), str(secret_dir), cms, secrets, ns)
    assert stat.S_IMODE(os.stat(secret_dir).st_mode) == 0o700
    assert not (secret_dir / "07-secret-left-over.json").exists()
    assert (secret_dir / "notes.txt").exists()
    inode = os.stat(first[-1]).st_ino
    # a second render without the token: its manifest goes, the others are replaced by rename
    _cms, fewer, skipped = seed_objects({c: as_file_bytes(p) for c, p in TENANTS.items()},
                                        as_file_bytes(SCRAPE), TLS, None)
    assert len(skipped) == 1
    second = k8s.write_manifests(str(deploy), str(secret_dir), cms, fewer, ns)
    assert sorted(os.listdir(secret_dir)) == sorted([Path(p).name for p in second[3:]] + ["notes.txt"])
    assert not any("prometheus-token" in name for name in os.listdir(secret_dir))
    assert os.stat(second[-1]).st_ino != inode
    assert not [n for n in os.listdir(secret_dir) + os.listdir(deploy) if ".tmp-" in n]


def test_a_failed_write_leaves_the_old_file_and_says_nothing_secret(tmp_path, monkeypatch):
    cms, secrets, ns = _seed_set()
    deploy, secret_dir = tmp_path / "deploy", tmp_path / "secrets"
    written = k8s.write_manifests(str(deploy), str(secret_dir), cms, secrets, ns)
    before = {p: Path(p).read_bytes() for p in written}

    def refuse(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", refuse)
    changed = [dict(s, data={k: base64.b64encode(b"NEW-" + base64.b64decode(v)).decode() for k, v in s["data"].items()})
               for s in secrets]
    with pytest.raises(LocalEnvironmentError) as err:
        k8s.write_manifests(str(deploy), str(secret_dir), cms, changed, ns)
    message = str(err.value)
    assert "No space left" in message
    assert not any(n.decode(errors="replace") in message for n in SECRET_NEEDLES)
    assert "BEGIN" not in message and "NEW-" not in message
    monkeypatch.undo()
    assert {p: Path(p).read_bytes() for p in written} == before
    assert not [n for n in os.listdir(secret_dir) + os.listdir(deploy) if ".tmp-" in n]


def test_secrets_never_go_to_the_deploy_folder(tmp_path):
    cms, secrets, ns = _seed_set()
    deploy = tmp_path / "deploy"
    with pytest.raises(InvalidInput) as err:
        k8s.write_manifests(str(deploy), str(tmp_path / "secrets"), cms + secrets[:1], [], ns)
    assert "MII" not in str(err.value)
    assert not deploy.exists()
    with pytest.raises(LocalEnvironmentError):
        k8s.write_manifests(str(deploy), str(deploy / "secrets"), cms, secrets, ns)
    with pytest.raises(LocalEnvironmentError):
        k8s.write_manifests(str(deploy), str(deploy), cms, secrets, ns)
    with pytest.raises(LocalEnvironmentError):  # even with no Secret to write (its stale ones are pruned)
        k8s.write_manifests(str(deploy), str(deploy), cms, [], ns)
    with pytest.raises(LocalEnvironmentError):
        k8s.write_manifests(str(deploy / "x" / ".."), str(tmp_path / "deploy" / "s"), cms, secrets, ns)
    assert not deploy.exists()


def test_json_is_read_back_the_same_as_yaml_even_with_awkward_characters():
    text = "nel\u0085 ls\u2028 ps\u2029 bom\ufeff c1\u009b del\u007f emoji\U0001F600 nul\u0000 tab\t"
    obj = k8s.configmap_from_files("awkward", NS, {"a.txt": text.encode("utf-8")})
    raw = k8s.to_json(obj)
    assert json.loads(raw) == obj
    assert yaml.safe_load(raw) == obj


# --- kubectl accepts our files ---------------------------------------------------------------------
@pytest.fixture
def written_set(tmp_path):
    cms, secrets, ns = _seed_set()
    extra = k8s.configmap_from_files("edge-cases", NS, {"tabs.yaml": TEXT_CASES["tabs-trailing-space"],
                                                        "blob.bin": BINARY_CASES["random"]})
    deploy, secret_dir = tmp_path / "deploy", tmp_path / "secrets"
    objects = [ns] + cms + [extra] + secrets
    written = k8s.write_manifests(str(deploy), str(secret_dir), cms + [extra], secrets, ns)
    return deploy, secret_dir, written, objects


def test_kubectl_kustomize_reads_our_files_offline(kubectl, tmp_path, written_set):
    _deploy, _secret_dir, written, objects = written_set
    root = tmp_path / "kustomize"
    root.mkdir()
    for path in written:
        shutil.copy(path, root)
    names = [Path(p).name for p in written]
    (root / "kustomization.yaml").write_text("resources:\n" + "".join("- %s\n" % n for n in names))
    out = kubectl("kustomize", root).stdout
    rendered = [d for d in yaml.safe_load_all(out) if d is not None]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731  kustomize orders by kind
    assert sorted(rendered, key=key) == sorted(objects, key=key)


def test_kubectl_local_mode_reads_each_file(kubectl, written_set):
    _deploy, _secret_dir, written, objects = written_set
    for path, obj in zip(written, objects):
        got = json.loads(kubectl("label", "--local", "-f", path, "probe=1", "-o", "json").stdout)
        assert got["metadata"].pop("labels") == {"probe": "1"}
        assert got == obj, path


def test_kubectl_apply_and_create_need_a_server(kubectl, written_set):
    """Documents the finding: with no cluster, `apply/create --dry-run=client -f` fail at API discovery."""
    _deploy, _secret_dir, written, _objects = written_set
    for verb in (["apply"], ["create"]):
        proc = kubectl(*verb, "--dry-run=client", "--validate=false", "-f", written[0], "-o", "json",
                       check=False, timeout=60)
        assert proc.returncode != 0
        assert b"unable to recognize" in proc.stderr or b"connection refused" in proc.stderr, proc.stderr


class _Discovery(BaseHTTPRequestHandler):
    """API discovery for core/v1 namespaces, configmaps and secrets; every object is absent; no writes."""

    RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        {"name": n, "singularName": n[:-1], "namespaced": n != "namespaces", "kind": k,
         "verbs": ["create", "delete", "get", "list", "patch", "update"]}
        for n, k in (("namespaces", "Namespace"), ("configmaps", "ConfigMap"), ("secrets", "Secret"))]}
    requests = []

    def log_message(self, *args):
        pass

    def _send(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.requests.append(("GET", self.path))
        path = self.path.split("?")[0]
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if path == "/api/v1":
            return self._send(200, self.RESOURCES)
        self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                         "code": 404, "message": "not found"})

    def _refuse(self):
        self.requests.append((self.command, self.path))
        self._send(500, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
                         "message": "this stub takes no writes"})

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse


@pytest.fixture
def discovery_stub(tmp_path):
    _Discovery.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "stub.kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub", "users": [],
        "clusters": [{"name": "stub", "cluster": {"server": "http://127.0.0.1:%d" % server.server_address[1]}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub"}}]}))
    yield config, _Discovery.requests
    server.shutdown()
    server.server_close()


def test_kubectl_apply_dry_run_accepts_our_folders(kubectl, written_set, discovery_stub):
    """`kubectl apply --dry-run=client -f deploy/ -f secrets/` as an operator runs it; only discovery is faked."""
    deploy, secret_dir, _written, objects = written_set
    config, requests = discovery_stub
    proc = kubectl("apply", "--dry-run=client", "--validate=false", "-f", deploy, "-f", secret_dir, "-o", "json",
                   kubeconfig=config)
    items = json.loads(proc.stdout)["items"]
    assert [(i["kind"], i["metadata"]["name"]) for i in items] == [(o["kind"], o["metadata"]["name"]) for o in objects]
    for item, obj in zip(items, objects):
        applied = json.loads(item["metadata"]["annotations"].pop("kubectl.kubernetes.io/last-applied-configuration"))
        assert applied["metadata"].pop("annotations") == {}
        assert applied == obj
        assert item["metadata"].pop("annotations") == {}
        assert item == obj
    assert [m for m, _p in requests if m != "GET"] == []  # a client dry run: nothing was written

    proc = kubectl("create", "--dry-run=client", "--validate=false", "-f", deploy, "-f", secret_dir, "-o", "json",
                   kubeconfig=config)
    assert _json_stream(proc.stdout.decode("utf-8")) == objects  # one JSON document per object
    assert [m for m, _p in requests if m != "GET"] == []


def _json_stream(text: str) -> list:
    decoder, docs, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        doc, end = decoder.raw_decode(text, len(text) - len(text[at:].lstrip()))
        docs.append(doc)
        at = end
    return docs


def test_a_missing_kubectl_is_a_failure_not_a_skip(tmp_path):
    with pytest.raises(pytest.fail.Exception):
        require_kubectl(tmp_path / "no-kubectl")


def test_modes_hold_for_an_unprivileged_user_under_umask_000(world_tmp):
    """As root chmod proves little: write as `nobody` with the system python3 -I and a copy of the
    standard-library-only installer package, umask 000, then check what landed."""
    user, system_python = "nobody", "/usr/bin/python3"
    assert os.path.exists(system_python), "the system python3 is needed (scripts/setup.sh installs it)"
    lib = world_tmp / "lib"
    shutil.copytree(Path(k8s.__file__).parent.parent, lib / "installer", ignore=shutil.ignore_patterns("__pycache__"))
    kit = world_tmp / "kit"
    kit.mkdir()
    subprocess.run(["chmod", "-R", "a+rX", str(lib)], check=True)
    subprocess.run(["chown", user, str(kit)], check=True)
    section = DEPLOY.to_dict()
    section["kubernetes"]["configmaps"] = section["kubernetes"]["configmaps"][:1]  # the loki ConfigMap only
    script = (
        "import os, sys; sys.path.insert(0, %r); os.umask(0)\n"
        "from installer.deploy import k8s\n"
        "from installer.format.deployspec import DeploySpec\n"
        "spec = DeploySpec.from_dict(%r, 'deploy')\n"
        "files = {'loki': b'overrides: {}\\n', 'config/prometheus-additional.yaml': b'- job_name: x\\n'}\n"
        "site = {'tls/tls.crt': b'C', 'tls/tls.key': b'K', 'tls/ca.crt': b'A', 'token/token': b'T'}\n"
        "cms, secrets, skipped = k8s.build_objects(spec.kubernetes, spec.namespace, lambda e: files[e.ref],\n"
        "    lambda e: site.get(e.ref))\n"
        "k8s.write_manifests(%r, %r, cms, secrets, k8s.namespace(spec.namespace))\n"
        % (str(lib), section, str(kit / "deploy" / "n" / "v" / "s"), str(kit / "secrets" / "n" / "v" / "s")))
    proc = subprocess.run(["runuser", "-u", user, "--", system_python, "-I", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    secret_root = kit / "secrets"
    for folder in [secret_root] + [p for p in secret_root.rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    files = sorted(p for p in secret_root.rglob("*") if p.is_file())
    assert [p.name for p in files] == ["02-secret-stellaops-otel-tls-stage.json",
                                       "03-secret-stellaops-prometheus-token.json",
                                       "04-secret-stellaops-prometheus-scrape.json"]
    for path in files:
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid != 0, path
    deploy_files = sorted(p.name for p in (kit / "deploy").rglob("*") if p.is_file())
    assert deploy_files == ["00-namespace-observability.json", "01-configmap-stellaops-loki-tenant-overrides.json"]
    _assert_no_secret_in(kit / "deploy")
