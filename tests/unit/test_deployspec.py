"""installer/format/deployspec.py: the `deploy` object, parsed strictly (exit 3, one sentence, its JSON path).

Every name in a signed deploy section is hostile until checked: it ends up in file names, JSON documents,
COMMANDS.txt and environment variables. Each bad case is refused by the model with one sentence that names
the path and never repeats the bad value; the same document is refused by parse_meta (bundle.json) and by the
manifest's schema and loader (tests/unit/test_manifest.py covers the located messages).
"""

import copy
import json

import pytest
from conftest import REPO

from bundler.plan.manifest import load_manifest
from installer.errors import InvalidInput
from installer.format.deployspec import (MAX_DATA, MAX_ENV, MAX_OBJECTS, MAX_SERVICES, DataEntry, DeploySpec,
                                         KubeObject, TlsSpec, default_namespace, namespace_of, parse_deploy)
from installer.format.meta import canonical_json, parse_meta

DEFAULT = load_manifest(str(REPO / "manifests" / "telemetry-storage.yaml")).deploy


def small() -> dict:
    return {
        "namespace": "shop",
        "compose": {"env": {"SHOP_TLS_DIR": "tls", "SHOP_TOKEN_DIR": "token"}},
        "tls": {"services": ["web", "db"], "ca": {"file": "root", "cn": "Shop Dev Root"}},
        "kubernetes": {
            "configmaps": [{"name": "shop-config", "data": [{"key": "shop.yaml", "file": "config/shop.yaml"},
                                                            {"key": "tenants.yaml", "tenant": "web"}]}],
            "secrets": [{"name": "shop-tls", "data": [{"key": "tls.crt", "site": "tls/tls.crt"}]},
                        {"name": "shop-token", "data": [{"key": "token", "site": "token/token"}]},
                        {"name": "shop-extra", "data": [{"key": "x", "file": "config/shop.yaml"}]}]},
    }


def refused(obj, where="bundle.json: deploy") -> str:
    with pytest.raises(InvalidInput) as info:
        DeploySpec.from_dict(obj, where)
    err = info.value
    assert err.exit_code == 3 and err.problems == []
    assert "\n" not in err.message and err.message.startswith(where)
    return err.message


# --- the model ----------------------------------------------------------------------------------
def test_the_default_manifest_declares_what_the_code_used_to_hard_code():
    d = DEFAULT
    assert d.namespace == "observability"
    assert d.env == (("TELEMETRY_S3_DIR", "s3"), ("TELEMETRY_SECRETS_GID", "secrets-gid"),
                     ("TELEMETRY_TLS_DIR", "tls"), ("TELEMETRY_TOKEN_DIR", "token"))
    assert d.tls.services == ("otel-collector", "prometheus", "tempo", "loki")
    assert (d.tls.ca.file, d.tls.shared.file, d.tls.client.file) == ("ca", "tls", "client")
    assert d.tls.in_use == ("ca.crt", "tls.crt", "tls.key")
    assert [(o.name, [(e.key, e.source, e.ref) for e in o.data]) for o in d.kubernetes.configmaps] == [
        ("stellaops-loki-tenant-overrides", [("overrides.yaml", "tenant", "loki")]),
        ("tempo-tenant-overrides", [("tempo-overrides.yaml", "tenant", "tempo")])]
    assert [o.name for o in d.kubernetes.secrets] == [
        "stellaops-otel-tls-stage", "stellaops-prometheus-token", "stellaops-prometheus-scrape", "stellaops-tempo-s3"]
    assert [e.ref for e in d.kubernetes.secrets[0].data] == ["tls/tls.crt", "tls/tls.key", "tls/ca.crt"]


@pytest.mark.parametrize("doc", [small(), DEFAULT.to_dict(), {"namespace": "x"}])
def test_round_trip_model_dict_json(doc):
    spec = DeploySpec.from_dict(doc, "deploy")
    again = DeploySpec.from_dict(json.loads(canonical_json(spec.to_dict())), "deploy")
    assert again == spec and again.to_dict() == spec.to_dict()


def test_defaults_and_the_canonical_form():
    spec = DeploySpec.from_dict(small(), "deploy")
    out = spec.to_dict()
    assert out["tls"]["shared"] == {"file": "tls", "cn": "offline-bundle dev TLS"}  # defaults are written out
    assert out["tls"]["ca"] == {"file": "root", "cn": "Shop Dev Root"}
    bare = DeploySpec.from_dict({"namespace": "x"}, "deploy")
    assert bare.to_dict() == {"namespace": "x"} and bare.tls is None and bare.kubernetes.empty
    assert bare.dev_tls == TlsSpec() and bare.dev_tls.in_use == ("ca.crt", "tls.crt", "tls.key")
    assert spec.kubernetes.secrets[0].data[0] == DataEntry("tls.crt", "site", "tls/tls.crt")
    assert (spec.kubernetes.secrets[0].data[0].site_folder, spec.kubernetes.secrets[0].data[0].site_file) == \
        ("tls", "tls.crt")


def test_namespace_without_a_deploy_section():
    assert namespace_of(None, "shop") == "shop" == default_namespace("shop")
    assert default_namespace("shop-") == "default"  # a bundle name may end with '-'; a DNS label may not
    assert namespace_of(DEFAULT, "whatever") == "observability"


# --- hostile sections: refused at parse time, one sentence, the path named, the value never echoed -------
def _set(doc, path, value):
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


HOSTILE = [
    # (path to change, new value, the path the message names, what it says)
    (("namespace",), "Observability", "deploy.namespace", "is not a DNS label"),
    (("namespace",), "a.b", "deploy.namespace", "is not a DNS label"),
    (("namespace",), "x" * 64, "deploy.namespace", "is not a DNS label"),
    (("namespace",), "ns\n", "deploy.namespace", "is not a DNS label"),
    (("namespace",), "-ns", "deploy.namespace", "is not a DNS label"),
    (("namespace",), 7, "deploy.namespace", "is not a DNS label"),
    (("kubernetes", "configmaps", 0, "name"), "../../etc/passwd", "deploy.kubernetes.configmaps[0].name",
     "is not a Kubernetes name"),
    (("kubernetes", "secrets", 1, "name"), "a/b", "deploy.kubernetes.secrets[1].name", "is not a Kubernetes name"),
    (("kubernetes", "secrets", 1, "name"), "x" * 201, "deploy.kubernetes.secrets[1].name", "is not a Kubernetes name"),
    (("kubernetes", "secrets", 1, "name"), "$(reboot)", "deploy.kubernetes.secrets[1].name",
     "is not a Kubernetes name"),
    (("kubernetes", "configmaps", 0, "data", 0, "key"), "../k", "deploy.kubernetes.configmaps[0].data[0].key",
     "is not a Kubernetes key"),
    (("kubernetes", "configmaps", 0, "data", 0, "key"), "a b", "deploy.kubernetes.configmaps[0].data[0].key",
     "is not a Kubernetes key"),
    (("kubernetes", "configmaps", 0, "data", 0, "file"), "../../secrets/tls/tls.key",
     "deploy.kubernetes.configmaps[0].data[0].file", "is not a bundle file path"),
    (("kubernetes", "configmaps", 0, "data", 0, "file"), "/etc/shadow",
     "deploy.kubernetes.configmaps[0].data[0].file", "is not a bundle file path"),
    (("kubernetes", "configmaps", 0, "data", 1, "tenant"), "Web;", "deploy.kubernetes.configmaps[0].data[1].tenant",
     "is not a tenant component name"),
    (("kubernetes", "secrets", 0, "data", 0, "site"), "tls/../../tls.key", "deploy.kubernetes.secrets[0].data[0].site",
     "is not tls/FILE, token/FILE or s3/FILE"),
    (("kubernetes", "secrets", 0, "data", 0, "site"), "tls/..", "deploy.kubernetes.secrets[0].data[0].site",
     "is not tls/FILE, token/FILE or s3/FILE"),
    (("kubernetes", "secrets", 0, "data", 0, "site"), "etc/passwd", "deploy.kubernetes.secrets[0].data[0].site",
     "is not tls/FILE, token/FILE or s3/FILE"),
    (("kubernetes", "configmaps", 0, "data", 0), {"key": "k", "site": "token/token"},
     "deploy.kubernetes.configmaps[0].data[0]", "has an unknown field site"),
    (("kubernetes", "secrets", 0, "data", 0), {"key": "k", "file": "config/shop.yaml", "site": "tls/x"},
     "deploy.kubernetes.secrets[0].data[0]", "needs exactly one of tenant, file, site"),
    (("kubernetes", "secrets", 2, "name"), "shop-config", "deploy.kubernetes.secrets[2].name",
     "repeats the object name shop-config"),
    (("kubernetes", "secrets", 2, "name"), "shop-tls", "deploy.kubernetes.secrets[2].name",
     "repeats the object name shop-tls"),
    (("kubernetes", "configmaps", 0, "data", 1, "key"), "shop.yaml", "deploy.kubernetes.configmaps[0].data[1].key",
     "repeats the key shop.yaml"),
    (("kubernetes", "secrets", 0, "data"), [], "deploy.kubernetes.secrets[0].data", "is empty"),
    (("compose", "env"), {"A\nB": "tls"}, "deploy.compose.env", "has a variable whose name is not"),
    (("compose", "env"), {"A;rm -rf /": "tls"}, "deploy.compose.env", "has a variable whose name is not"),
    (("compose", "env"), {"X=$(id)": "tls"}, "deploy.compose.env", "has a variable whose name is not"),
    (("compose", "env"), {"lower": "tls"}, "deploy.compose.env", "has a variable whose name is not"),
    (("compose", "env"), {"PATH": "tls"}, "deploy.compose.env", "has PATH, a variable the deploy tools"),
    (("compose", "env"), {"LD_PRELOAD": "token"}, "deploy.compose.env", "has LD_PRELOAD, a variable the deploy tools"),
    (("compose", "env"), {"DOCKER_HOST": "tls"}, "deploy.compose.env", "has DOCKER_HOST"),
    (("compose", "env"), {"SHOP_DIR": "/etc"}, "deploy.compose.env.SHOP_DIR", "is not tls, token or s3"),
    (("tls", "services"), ["web", "Web"], "deploy.tls.services[1]", "is not a service name"),
    (("tls", "services"), ["web", "root"], "deploy.tls.services[1]", "repeats the certificate file name root"),
    (("tls", "services"), ["tls"], "deploy.tls.services[0]", "repeats the certificate file name tls"),
    (("tls", "services"), ["web", "web"], "deploy.tls.services[1]", "repeats the certificate file name web"),
    (("tls", "ca", "cn"), "x/CN=evil", "deploy.tls.ca.cn", "is not a common name"),
    (("tls", "ca", "cn"), "x\ny", "deploy.tls.ca.cn", "is not a common name"),
    (("tls", "ca", "file"), "../ca", "deploy.tls.ca.file", "is not a file stem"),
    (("tls", "client"), {"file": "root", "cn": "c"}, "deploy.tls.client.file",
     "repeats the certificate file name root"),
    (("kubernetes", "jobs"), [], "deploy.kubernetes", "has an unknown field jobs"),
    (("kubernetes", "cronjobs\n"), [], "deploy.kubernetes", "has an unknown field (allowed"),
    (("kubernetes",), [], "deploy.kubernetes", "is not an object"),
    (("kubernetes", "configmaps"), {}, "deploy.kubernetes.configmaps", "is not a list"),
]


@pytest.mark.parametrize("path,value,where,says", HOSTILE, ids=[".".join(map(str, h[0])) + "=" + repr(h[1])[:30]
                                                                for h in HOSTILE])
def test_hostile_values_are_refused_with_one_sentence(path, value, where, says):
    message = refused(_set(small(), path, value))
    assert message.startswith("bundle.json: %s %s" % (where, says)), message
    if isinstance(value, str) and value not in ("shop-config", "shop-tls", "shop.yaml", "tls", "root", "web"):
        assert value not in message  # a bad value is never repeated


@pytest.mark.parametrize("path,limit", [(("kubernetes", "configmaps"), MAX_OBJECTS),
                                        (("kubernetes", "secrets"), MAX_OBJECTS),
                                        (("kubernetes", "configmaps", 0, "data"), MAX_DATA),
                                        (("tls", "services"), MAX_SERVICES)])
def test_oversized_lists_are_refused(path, limit):
    doc = small()
    node = doc
    for part in path[:-1]:
        node = node[part]
    item = {"configmaps": {"name": "n", "data": [{"key": "k", "file": "config/shop.yaml"}]},
            "secrets": {"name": "n", "data": [{"key": "k", "file": "config/shop.yaml"}]},
            "data": {"key": "k", "file": "config/shop.yaml"}, "services": "s"}[path[-1]]
    node[path[-1]] = [copy.deepcopy(item) for _ in range(limit + 1)]
    message = refused(doc)
    assert "has %d entries; at most %d are allowed" % (limit + 1, limit) in message


def test_too_many_environment_variables():
    doc = small()
    doc["compose"]["env"] = {"V%d" % i: "tls" for i in range(MAX_ENV + 1)}
    assert "at most %d" % MAX_ENV in refused(doc)


def test_wrong_shapes():
    for doc in ([], "x", None, {}, {"namespace": "x", "extra": 1}, {"namespace": "x", "compose": {"env": []}},
                {"namespace": "x", "tls": {"services": "web"}}, {"namespace": "x", "tls": {"ca": {"file": "c"}}}):
        refused(doc)
    assert refused({}) == "bundle.json: deploy.namespace is missing"


def test_model_classes_refuse_on_their_own():
    with pytest.raises(InvalidInput):
        KubeObject.from_dict({"name": "n", "data": [{"key": "k", "site": "tls/x"}]}, "cm", allow_site=False)
    assert KubeObject.from_dict({"name": "n", "data": [{"key": "k", "site": "tls/x"}]}, "s", allow_site=True).data[0] \
        == DataEntry("k", "site", "tls/x")


# --- in bundle.json: parse_meta checks the section and its references ---------------------------------
def bundle(deploy) -> bytes:
    members = [{"path": "config/shop.yaml", "size": 3}, {"path": "tenants/web.yaml", "size": 2}]
    return canonical_json({
        "format": 1, "name": "shop", "version": "1.0.0", "created": "2026-11-26T00:00:00Z",
        "tool": {"name": "offline-bundle", "version": "0.1.0"}, "members": members, "total_size": 5,
        "files": [{"target": "config/shop.yaml", "source": "s", "sha256": "0" * 64, "size": 3, "executable": False}],
        "tenants": {"web": {"path": "tenants/web.yaml", "source": "t", "sha256": "0" * 64, "size": 2}},
        "images": [], "charts": [], "mirrors": [], "lock": {"status": "none"}, "deploy": deploy})


def test_parse_meta_carries_the_section():
    meta = parse_meta(bundle(small()))
    assert meta.deploy == DeploySpec.from_dict(small(), "x")
    doc = json.loads(bundle(small()))
    del doc["deploy"]
    assert parse_meta(canonical_json(doc)).deploy is None and parse_deploy(doc) is None


def test_parse_meta_refuses_a_hostile_section():
    doc = small()
    doc["kubernetes"]["configmaps"][0]["name"] = "../x"
    with pytest.raises(InvalidInput) as info:
        parse_meta(bundle(doc))
    assert info.value.message.startswith("bundle.json: deploy.kubernetes.configmaps[0].name is not a Kubernetes name")


@pytest.mark.parametrize("change,says", [
    (("file", "config/other.yaml"), "deploy.kubernetes.configmaps[0].data[0].file names config/other.yaml, which is "
                                    "not one of the bundle's files"),
    (("file", "tenants/web.yaml"), "which is not one of the bundle's files"),  # a member, but not a files[] target
    (("tenant", "db"), "deploy.kubernetes.configmaps[0].data[0].tenant names the tenant component db, which the "
                       "bundle has no file for"),
])
def test_parse_meta_refuses_references_to_files_the_bundle_does_not_have(change, says):
    doc = small()
    doc["kubernetes"]["configmaps"][0]["data"][0] = {"key": "k", change[0]: change[1]}
    with pytest.raises(InvalidInput) as info:
        parse_meta(bundle(doc))
    assert says in info.value.message and info.value.message.startswith("bundle.json: deploy.")
