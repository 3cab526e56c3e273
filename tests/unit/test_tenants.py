"""Tenant override files: every error names file, line, tenant and key."""

import textwrap

import pytest
from conftest import REPO

from bundler.plan.tenants import check_tenant_files, tenant_problems
from installer.errors import InvalidInput


def _file(tmp_path, text):
    p = tmp_path / "t.yaml"
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_shipped_tenant_files_are_clean():
    for comp in ("loki", "tempo"):
        path = REPO / "manifests" / "telemetry-storage" / "tenants" / ("%s-overrides.yaml" % comp)
        assert tenant_problems(comp, str(path), path.name) == []


def test_loki_errors_name_file_line_tenant_and_key(tmp_path):
    path = _file(tmp_path, """\
        overrides:
          tenant-a:
            retention_period: 1.5h
            ingestion_rate_mb: -1
          tenant-b:
            retention_perod: 30d
    """)
    problems = tenant_problems("loki", path, "loki.yaml")
    assert len(problems) == 3
    assert problems[0].startswith("loki.yaml:3: tenant 'tenant-a', key retention_period: '1.5h'")
    assert problems[1].startswith("loki.yaml:4: tenant 'tenant-a', key ingestion_rate_mb:")
    assert problems[2].startswith("loki.yaml:6: tenant 'tenant-b', key retention_perod: unknown key")


@pytest.mark.parametrize("tenant", ["..", ".", "a|b", "x" * 151, "has space", "slash/es"])
def test_bad_tenant_ids_point_at_the_tenant_line(tmp_path, tenant):
    path = _file(tmp_path, """\
        overrides:
          ok-tenant:
            retention_period: 24h
          "%s":
            retention_period: 24h
    """ % tenant)
    problems = tenant_problems("loki", path, "loki.yaml")
    assert problems and problems[0].startswith("loki.yaml:4: tenant %r" % tenant)


def test_tempo_durations_are_go_durations(tmp_path):
    path = _file(tmp_path, """\
        overrides:
          "*":
            ingestion: {rate_limit_bytes: 1000, burst_size_bytes: 2000}
            compaction: {block_retention: 30d}
    """)
    problems = tenant_problems("tempo", path, "tempo.yaml")
    assert len(problems) == 1 and "tenant '*', key compaction.block_retention" in problems[0]
    assert problems[0].startswith("tempo.yaml:4:")


def test_check_tenant_files_collects_everything_into_one_exit_3(tmp_path):
    class E:
        def __init__(self, comp, path):
            self.component, self.source_path, self.source = comp, path, comp + ".yaml"
    bad = _file(tmp_path, "overrides:\n  t:\n    nope: 1\n")
    with pytest.raises(InvalidInput) as info:
        check_tenant_files([E("loki", bad), E("tempo", bad)])
    assert info.value.exit_code == 3 and len(info.value.problems) >= 2


def test_top_level_must_be_overrides(tmp_path):
    path = _file(tmp_path, "limits: {}\n")
    problems = tenant_problems("loki", path, "l.yaml")
    assert problems and "l.yaml:1:" in problems[0]
