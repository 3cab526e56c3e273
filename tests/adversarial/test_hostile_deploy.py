"""A signed `deploy` section with hostile names (issue 11, the stack as data).

The names of a deploy section become file names (NN-secret-NAME.json), JSON documents, COMMANDS.txt lines and
environment variables. A builder key the kit trusts signs a bundle whose deploy section holds path traversal in an
object name, a newline or shell metacharacters in an environment variable name, a namespace that is no DNS label,
duplicate object names or oversized lists. Each is refused when bundle.json is parsed — before the install
decides anything, before a payload byte is written — with exit 3 and one sentence naming the JSON path; the
hostile text reaches no file of the kit, no output and no command line.
"""

import json
import os
from pathlib import Path

import pytest
from conftest import write_manifest
from tests.helpers.craft import edit_meta, read_entries, resign, write_archive
from tests.helpers.deploysection import TENANT_OBJECTS

MARK = "PWNED-deploy"


@pytest.fixture(scope="module")
def signed(ob, keydir, tmp_path_factory):
    """A genuine bundle with a deploy section, and the (trusted) key that signed it."""
    base = tmp_path_factory.mktemp("hostile-deploy")
    m = write_manifest(base / "src", name="demo", extra=TENANT_OBJECTS)
    r = ob("build", m, "--key", keydir / "ed" / "bundle.key", "--out", base / "out", "--json")
    assert r.rc == 0, r
    return Path(r.json["result"]["archive"]), keydir / "ed" / "bundle.key"


def _cm(doc):
    return doc["deploy"]["kubernetes"]["configmaps"]


def _secrets(doc):
    return doc["deploy"]["kubernetes"]["secrets"]


CASES = {
    "object name traversal": (lambda d: _secrets(d)[0].update(name="../../../../tmp/%s" % MARK),
                              "deploy.kubernetes.secrets[0].name is not a Kubernetes name"),
    "object name with a slash": (lambda d: _cm(d)[0].update(name="a/%s" % MARK),
                                 "deploy.kubernetes.configmaps[0].name is not a Kubernetes name"),
    "env name with a newline": (lambda d: d["deploy"]["compose"]["env"].update({"X\n%s" % MARK: "tls"}),
                                "deploy.compose.env has a variable whose name is not an environment variable name"),
    "env name with shell metacharacters": (
        lambda d: d["deploy"]["compose"]["env"].update({"X=1; touch /tmp/%s #" % MARK: "token"}),
        "deploy.compose.env has a variable whose name is not an environment variable name"),
    "env name with a substitution": (
        lambda d: d["deploy"]["compose"]["env"].update({"$(touch %s)" % MARK: "tls"}),
        "deploy.compose.env has a variable whose name is not an environment variable name"),
    "env pointing anywhere": (lambda d: d["deploy"]["compose"]["env"].update({"DEMO_X": "/etc/%s" % MARK}),
                              "deploy.compose.env.DEMO_X is not tls, token or s3"),
    "namespace not a DNS label": (lambda d: d["deploy"].update(namespace="%s.example" % MARK.lower()),
                                  "deploy.namespace is not a DNS label"),
    "namespace with a newline": (lambda d: d["deploy"].update(namespace="demo\n%s" % MARK),
                                 "deploy.namespace is not a DNS label"),
    "duplicate object names": (lambda d: _secrets(d)[1].update(name=_cm(d)[0]["name"]),
                               "deploy.kubernetes.secrets[1].name repeats the object name demo-loki-overrides"),
    "oversized list": (lambda d: _secrets(d).extend([{"name": "s%d" % i, "data": [{"key": "k", "site": "token/t"}]}
                                                      for i in range(70)]),
                       "deploy.kubernetes.secrets has 72 entries; at most 64 are allowed"),
    "site file traversal": (lambda d: _secrets(d)[1]["data"][0].update(site="token/../../%s" % MARK),
                            "deploy.kubernetes.secrets[1].data[0].site is not tls/FILE, token/FILE or s3/FILE"),
    "a ConfigMap made from a site secret": (lambda d: _cm(d)[0]["data"][0].update(site="tls/tls.key"),
                                            "deploy.kubernetes.configmaps[0].data[0] has an unknown field site"),
    "a file the bundle does not have": (
        lambda d: _cm(d)[0]["data"].__setitem__(0, {"key": "k", "file": "config/%s" % MARK}),
        "deploy.kubernetes.configmaps[0].data[0].file names config/%s, which is not one of the bundle's files" % MARK),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_deploy_section_is_refused_at_parse_time(ob, pub, signed, tmp_path, case):
    archive, key = signed
    change, says = CASES[case]
    evil = write_archive(resign(edit_meta(read_entries(archive), change), key), tmp_path / "evil.bundle.tar.zst")
    kit = tmp_path / "kit"
    (kit / "secrets" / "token").mkdir(parents=True)
    (kit / "secrets" / "token" / "token").write_text("site-token\n")
    r = ob("install", evil, "--kit", kit, "--trust", pub, "--registry", "127.0.0.1:9", "--dev-tls", "--json",
           cwd=tmp_path)
    assert r.rc == 3, r
    error = r.json["error"]
    assert error["message"].startswith("bundle.json: " + says), error
    assert error["problems"] == [] and "\n" not in error["message"]
    # refused before anything was decided or written: no version, no outputs, no Secret, no dev TLS
    assert not (kit / "bundles" / "demo").exists() and not (kit / "deploy" / "demo").exists()
    assert not (kit / "secrets" / "demo").exists() and not (kit / "secrets" / "tls").exists()
    # the hostile text is nowhere: no file of the kit (receipts included), no output, no file it named
    if case != "a file the bundle does not have":  # that message names the (harmless, checked) path
        for root, _dirs, files in os.walk(kit):
            for f in files:
                assert MARK.encode() not in (Path(root) / f).read_bytes(), os.path.join(root, f)
                assert MARK.lower().encode() not in (Path(root) / f).read_bytes(), os.path.join(root, f)
        assert MARK not in r.out + r.err and MARK.lower() not in r.out + r.err
    assert not (tmp_path / MARK).exists() and not Path("/tmp/%s" % MARK).exists()
    # `verify` says the same
    assert ob("verify", evil, "--trust", pub).rc == 3


def test_the_genuine_bundle_installs(ob, pub, signed, tmp_path):
    """The cases above differ from an accepted bundle only by their one change."""
    archive, _key = signed
    kit = tmp_path / "kit"
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", "127.0.0.1:9", "--json")
    assert r.rc == 0, r
    names = sorted(os.listdir(kit / r.json["result"]["outputs"]["folder"] / "kubernetes"))
    assert names == ["00-namespace-demo.json", "01-configmap-demo-loki-overrides.json",
                     "02-configmap-demo-tempo-overrides.json"]
    assert json.loads((kit / "current" / "demo" / "bundle.json").read_text())["deploy"]["namespace"] == "demo"
