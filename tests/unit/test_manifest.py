"""Manifest validation: every error names file, key path and line, and exits 3."""

import textwrap

import pytest
from conftest import write_manifest

from bundler.plan.manifest import load_manifest
from installer.errors import InvalidInput, UsageError

HEAD = """\
apiVersion: offline-bundle/v1
kind: Bundle
metadata:
  name: demo
  version: "1.0.0"
spec:
"""


def _write(tmp_path, body, head=HEAD, tail=""):
    """``body`` is the content of spec:, written at any indentation."""
    (tmp_path / "a.yaml").write_text("x: 1\n")
    p = tmp_path / "m.yaml"
    p.write_text(head + textwrap.indent(textwrap.dedent(body), "  ") + tail)
    return p


def _problems(path):
    with pytest.raises(InvalidInput) as info:
        load_manifest(str(path))
    assert info.value.exit_code == 3
    return info.value.message, info.value.problems


def test_valid_manifest_loads(tmp_path):
    m = load_manifest(str(write_manifest(tmp_path)))
    assert m.name == "demo" and m.version == "1.0.0"
    assert [f.target for f in m.files] == ["config/app.yaml", "config/run.sh"]
    assert [t.target for t in m.tenants] == ["tenants/loki.yaml", "tenants/tempo.yaml"]
    assert m.files[1].executable and not m.files[0].executable


def test_unknown_key_names_file_key_path_and_line(tmp_path):
    p = _write(tmp_path, """\
      files:
        - source: a.yaml
          target: config/a.yaml
          mode: 0644
    """)
    _, problems = _problems(p)
    assert problems == ["%s:10: spec.files[0].mode: unknown key (allowed: executable, sha256, source, target)" % p]


def test_unknown_top_level_and_metadata_keys(tmp_path):
    p = _write(tmp_path, "files: []\n", head=HEAD.replace("  name: demo\n", "  name: demo\n  owner: me\n"),
               tail="extra: 1\n")
    _, problems = _problems(p)
    assert any(":5: metadata.owner: unknown key (allowed: created, name, version)" in x for x in problems)
    assert any(":9: extra: unknown key" in x for x in problems)


@pytest.mark.parametrize("value", ["1.10", "2026.11", "3"])
def test_yaml_number_version_says_quote_the_version(tmp_path, value):
    p = _write(tmp_path, "  files: []\n", head=HEAD.replace('"1.0.0"', value))
    _, problems = _problems(p)
    assert len(problems) == 1 and "quote the version" in problems[0] and ":5: metadata.version" in problems[0]


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0-"])
def test_non_semver_string_is_refused(tmp_path, version):
    p = _write(tmp_path, "  files: []\n", head=HEAD.replace('"1.0.0"', '"%s"' % version))
    _, problems = _problems(p)
    assert "metadata.version" in problems[0]


@pytest.mark.parametrize("name", ["Demo", "-demo", "a" * 64, "de_mo"])
def test_bad_names(tmp_path, name):
    p = _write(tmp_path, "  files: []\n", head=HEAD.replace("name: demo", "name: %s" % name))
    _, problems = _problems(p)
    assert ":4: metadata.name" in problems[0]


def test_missing_source_key_and_missing_source_file(tmp_path):
    p = _write(tmp_path, """\
      files:
        - target: config/a.yaml
        - source: nothere.yaml
          target: config/b.yaml
    """)
    _, problems = _problems(p)
    assert any(":8: spec.files[0]: 'source' is required" in x for x in problems)
    # the schema error stops before the disk check; fix it and the missing file is reported
    p = _write(tmp_path, """\
      files:
        - source: nothere.yaml
          target: config/b.yaml
    """)
    _, problems = _problems(p)
    assert problems == ["%s:8: spec.files[0].source: source file 'nothere.yaml' does not exist" % p]


@pytest.mark.parametrize("target", ["images/x", "charts/c.tgz", "tenants/loki.yaml", "bundle.json",
                                    "SHA256SUMS", "SHA256SUMS.sig", "DELTA.json"])
def test_reserved_targets(tmp_path, target):
    p = _write(tmp_path, """\
      files:
        - source: a.yaml
          target: %s
    """ % target)
    _, problems = _problems(p)
    assert "reserves" in problems[0] and ":9: spec.files[0].target" in problems[0]


@pytest.mark.parametrize("target", ["../etc/x", "/etc/x", "a//b", "a/./b", "a b"])
def test_unsafe_targets(tmp_path, target):
    p = _write(tmp_path, """\
      files:
        - source: a.yaml
          target: "%s"
    """ % target)
    _, problems = _problems(p)
    assert "spec.files[0].target" in problems[0]


def test_case_duplicate_targets(tmp_path):
    p = _write(tmp_path, """\
      files:
        - {source: a.yaml, target: config/A.yaml}
        - {source: a.yaml, target: config/a.yaml}
    """)
    _, problems = _problems(p)
    assert "same target" in problems[0]


@pytest.mark.parametrize("source", ["../outside.yaml", "/etc/passwd"])
def test_sources_stay_inside_the_manifest_folder(tmp_path, source):
    (tmp_path / "outside.yaml").write_text("x")
    sub = tmp_path / "sub"
    sub.mkdir()
    p = _write(sub, """\
      files:
        - {source: "%s", target: config/a.yaml}
    """ % source)
    _, problems = _problems(p)
    assert "manifest's folder" in problems[0]


def test_symlink_escaping_the_folder_is_refused(tmp_path):
    (tmp_path / "secret").write_text("x")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "link.yaml").symlink_to(tmp_path / "secret")
    p = _write(sub, "  files:\n    - {source: link.yaml, target: config/a.yaml}\n")
    _, problems = _problems(p)
    assert "outside" in problems[0]


def test_unknown_tenant_component(tmp_path):
    p = _write(tmp_path, "  tenants:\n    mimir: a.yaml\n")
    _, problems = _problems(p)
    assert problems == ["%s:8: spec.tenants.mimir: 'mimir' is not allowed here (allowed: loki, tempo)" % p]


def test_charts_are_accepted_and_their_images_must_be_bundled(tmp_path):
    (tmp_path / "v.yaml").write_text("a: 1\n")
    p = _write(tmp_path, """\
      images:
        - ref: docker.io/prom/prometheus:v3.5.0
      charts:
        - name: prometheus
          repo: https://prometheus-community.github.io/helm-charts
          version: 27.19.0
          values: v.yaml
          images:
            - {values: server.image, ref: prom/prometheus:v3.5.0}
            - {values: reload.image, ref: quay.io/prometheus-operator/prometheus-config-reloader:v0.83.0}
        - path: charts/x
          values: nothere.yaml
    """)
    _, problems = _problems(p)
    assert any(":16: spec.charts[0].images[1].ref" in x and "not listed in spec.images" in x for x in problems)
    assert any("spec.charts[1].values" in x and "does not exist" in x for x in problems)
    assert len(problems) == 2  # prom/prometheus:v3.5.0 normalises to the bundled docker.io reference


def test_images_are_accepted(tmp_path):
    p = _write(tmp_path, """\
      images:
        - ref: docker.io/prom/prometheus:v3.5.0
          platforms: [linux/amd64, linux/arm64/v8]
        - ref: registry.example/team/tool:dev
          source: docker-daemon
    """)
    m = load_manifest(str(p))
    assert [i["ref"] for i in m.images] == ["docker.io/prom/prometheus:v3.5.0", "registry.example/team/tool:dev"]


def test_all_problems_are_reported_at_once_in_line_order(tmp_path):
    p = _write(tmp_path, """\
      files:
        - {source: a.yaml, target: config/a.yaml, bogus: 1}
        - {source: a.yaml}
      tenants:
        mimir: a.yaml
    """, head=HEAD.replace('"1.0.0"', "1.0"))
    _, problems = _problems(p)
    lines = [int(x.split(":")[1]) for x in problems]
    assert len(problems) == 4 and lines == sorted(lines)


def test_duplicate_yaml_keys_are_errors(tmp_path):
    p = _write(tmp_path, "files: []\nfiles: []\n")
    message, _ = _problems(p)
    assert "duplicate key 'files'" in message and ":8:" in message


def test_invalid_yaml_names_the_line(tmp_path):
    p = _write(tmp_path, "  files: [\n")
    message, _ = _problems(p)
    assert "not valid YAML" in message and str(p) in message


def test_unquoted_created_timestamp_is_refused(tmp_path):
    p = _write(tmp_path, "  files: []\n", head=HEAD + "")
    p.write_text(p.read_text().replace('  version: "1.0.0"\n', '  version: "1.0.0"\n  created: 2026-11-26T00:00:00Z\n'))
    _, problems = _problems(p)
    assert "metadata.created" in problems[0]


def test_missing_manifest_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        load_manifest(str(tmp_path / "nope.yaml"))


def test_empty_and_non_mapping_documents(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("")
    with pytest.raises(InvalidInput):
        load_manifest(str(p))
    p.write_text("- a\n- b\n")
    with pytest.raises(InvalidInput):
        load_manifest(str(p))


@pytest.mark.parametrize("field,value", [("name", '"demo\\n"'), ("version", '"1.0.0\\n"')])
def test_a_trailing_newline_is_not_a_valid_name_or_version(tmp_path, field, value):
    head = HEAD.replace("name: demo", "name: %s" % value) if field == "name" else HEAD.replace('"1.0.0"', value)
    p = _write(tmp_path, "files: []\n", head=head)
    _, problems = _problems(p)
    assert "metadata.%s" % field in problems[0]


# --- spec.deploy: the schema, then the loader's cross-checks, each located ---------------------------------
DEPLOY_BASE = """\
files:
  - source: a.yaml
    target: config/a.yaml
deploy:
  namespace: shop
"""


def test_a_deploy_section_loads_into_the_model(tmp_path):
    p = _write(tmp_path, DEPLOY_BASE + """\
  compose:
    env: {SHOP_TLS_DIR: tls}
  kubernetes:
    configmaps:
      - name: shop-config
        data: [{key: a.yaml, file: config/a.yaml}]
    secrets:
      - name: shop-tls
        data: [{key: tls.crt, site: tls/tls.crt}]
""")
    m = load_manifest(str(p))
    assert m.deploy.namespace == "shop" == m.namespace and m.deploy.env == (("SHOP_TLS_DIR", "tls"),)
    assert [o.name for o in m.deploy.kubernetes.configmaps + m.deploy.kubernetes.secrets] == ["shop-config", "shop-tls"]
    assert load_manifest(str(write_manifest(tmp_path / "plain", name="plain"))).namespace == "plain"


# (body under `deploy:`, the line and key path the problem names, what it says); the section starts on line 12
@pytest.mark.parametrize("body,line,path,says", [
    ("  namespace2: x\n", 12, "spec.deploy.namespace2", "unknown key (allowed: compose, kubernetes, namespace, tls)"),
    ("  kubernetes: {jobs: []}\n", 12, "spec.deploy.kubernetes.jobs", "unknown key (allowed: configmaps, secrets)"),
    ("  compose: {env: {PATH: tls}}\n", 12, "spec.deploy.compose.env.PATH",
     "'PATH' is not allowed here (an environment"),
    ("  compose: {env: {'A;B': tls}}\n", 12, "spec.deploy.compose.env.A;B", "'A;B' is not allowed here"),
    ("  compose: {env: {SHOP_DIR: /etc}}\n", 12, "spec.deploy.compose.env.SHOP_DIR",
     "'/etc' is not one of ['tls', 'token', 's3', 'secrets-gid']"),
    ("  tls: {services: [Web]}\n", 12, "spec.deploy.tls.services[0]",
     "'Web' does not match the required form (a DNS label"),
    ("  tls: {ca: {file: ca, cn: 'a/CN=b'}}\n", 12, "spec.deploy.tls.ca.cn",
     "'a/CN=b' does not match the required form"),
    ("  kubernetes:\n    configmaps:\n      - name: ../x\n        data: [{key: k, file: config/a.yaml}]\n", 14,
     "spec.deploy.kubernetes.configmaps[0].name", "'../x' does not match the required form (a Kubernetes object name"),
    ("  kubernetes:\n    configmaps:\n      - name: x\n        data: [{key: k, site: tls/tls.key}]\n", 15,
     "spec.deploy.kubernetes.configmaps[0].data[0]", "needs exactly one of: tenant, file"),
    ("  kubernetes:\n    secrets:\n      - name: x\n        data: [{key: k, file: config/a.yaml, site: tls/k}]\n", 15,
     "spec.deploy.kubernetes.secrets[0].data[0]", "needs exactly one of: tenant, file, site"),
    ("  kubernetes:\n    secrets:\n      - name: x\n        data: [{key: '..k', site: token/t}]\n", 15,
     "spec.deploy.kubernetes.secrets[0].data[0].key", "'..k' does not match the required form"),
    ("  kubernetes:\n    secrets:\n      - name: x\n        data: [{key: k, site: token/..}]\n", 15,
     "spec.deploy.kubernetes.secrets[0].data[0].site", "'token/..' does not match the required form"),
    # what the schema cannot see, from the loader
    ("  kubernetes:\n    configmaps:\n      - name: x\n        data: [{key: k, tenant: loki}]\n", 15,
     "spec.deploy.kubernetes.configmaps[0].data[0]", "tenant loki is not in spec.tenants"),
    ("  kubernetes:\n    configmaps:\n      - name: x\n        data: [{key: k, file: config/b.yaml}]\n", 15,
     "spec.deploy.kubernetes.configmaps[0].data[0]", "file config/b.yaml is not the target of any spec.files entry"),
    ("  kubernetes:\n    configmaps:\n      - name: x\n        data: [{key: k, file: config/a.yaml}]\n"
     "    secrets:\n      - name: x\n        data: [{key: k, file: config/a.yaml}]\n", 17,
     "spec.deploy.kubernetes.secrets[0].name",
     "x is also the name of spec.deploy.kubernetes.configmaps[0]; object names are unique"),
    ("  kubernetes:\n    configmaps:\n      - name: x\n        data: [{key: k, file: config/a.yaml},"
     " {key: k, file: config/a.yaml}]\n", 15, "spec.deploy.kubernetes.configmaps[0].data[1]",
     "the key k is given twice in x"),
    ("  tls:\n    services: [web, tls]\n", 13, "spec.deploy.tls.services[1]",
     "tls is already a certificate's file name"),
    ("  tls:\n    ca: {file: c, cn: c}\n    client: {file: c, cn: d}\n", 14, "spec.deploy.tls.client.file",
     "c is already a certificate's file name"),
])
def test_deploy_problems_are_located(tmp_path, body, line, path, says):
    p = _write(tmp_path, DEPLOY_BASE + body)
    _, problems = _problems(p)
    wanted = "%s:%d: %s: %s" % (p, line, path, says)
    assert any(x.startswith(wanted) for x in problems), (wanted, problems)
