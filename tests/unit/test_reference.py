"""Image references normalise as Docker does; --mirror matches whole path components."""

import pytest

from installer.errors import InvalidInput, UsageError
from installer.format.reference import (apply_mirrors, chart_repository, parse, parse_mirror, site_host,
                                        site_name_problem, site_reference, site_repository, site_tag_problem)

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text,expected", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("prom/prometheus:v3.5.0", "docker.io/prom/prometheus:v3.5.0"),
    ("docker.io/prom/prometheus:v3.5.0", "docker.io/prom/prometheus:v3.5.0"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("registry-1.docker.io/grafana/loki:3.5.3", "docker.io/grafana/loki:3.5.3"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("localhost/x", "localhost/x:latest"),
    ("localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"),
    ("127.0.0.1:5000/x@" + D, "127.0.0.1:5000/x@" + D),
    ("ghcr.io/o/r:t@" + D, "ghcr.io/o/r:t@" + D),
    ("quay.io/a_b/c-d.e__f", "quay.io/a_b/c-d.e__f:latest"),
])
def test_normalisation(text, expected):
    assert str(parse(text)) == expected
    assert str(parse(expected)) == expected  # idempotent


def test_parts_and_endpoint():
    ref = parse("prom/prometheus:v3.5.0")
    assert (ref.host, ref.path, ref.tag, ref.digest) == ("docker.io", "prom/prometheus", "v3.5.0", None)
    assert ref.endpoint == "registry-1.docker.io" and parse("ghcr.io/a/b").endpoint == "ghcr.io"


@pytest.mark.parametrize("text", [
    "", " busybox", "busybox\n", "a//b", "Busybox", "x:y:z", "busybox@sha256:abc", "busybox@sha512:" + "a" * 128,
    "busybox@sha256:" + "A" * 64, "a b", "-a/b", "a/b:" + "t" * 129, "a/b:-t", "host:port/x", "x" * 600,
])
def test_invalid_references(text):
    with pytest.raises(InvalidInput):
        parse(text)


def test_mirrors_match_whole_components_and_longest_wins():
    mirrors = [parse_mirror("docker.io=127.0.0.1:5000/mirror"), parse_mirror("docker.io/prom=127.0.0.1:6000"),
               parse_mirror("index.docker.io/grafana=10.0.0.1:7000/g")]
    assert apply_mirrors(parse("prom/prometheus:v1"), mirrors)[:2] == ("127.0.0.1:6000", "prometheus")
    assert apply_mirrors(parse("promx/a"), mirrors)[:2] == ("127.0.0.1:5000", "mirror/promx/a")
    assert apply_mirrors(parse("busybox"), mirrors)[:2] == ("127.0.0.1:5000", "mirror/library/busybox")
    assert apply_mirrors(parse("grafana/loki"), mirrors)[:2] == ("10.0.0.1:7000", "g/loki")
    assert apply_mirrors(parse("ghcr.io/x/y"), mirrors)[:2] == ("ghcr.io", "x/y")
    assert apply_mirrors(parse("busybox"), [])[:2] == ("registry-1.docker.io", "library/busybox")
    used = apply_mirrors(parse("prom/prometheus"), mirrors)[2]
    assert used.to_json() == {"source": "docker.io/prom", "mirror": "127.0.0.1:6000"}


@pytest.mark.parametrize("spec", ["docker.io", "=x", "docker.io=", "a=b=c", "docker.io=host/UPPER", "docker.io=/x"])
def test_bad_mirrors_are_usage_errors(spec):
    with pytest.raises(UsageError):
        parse_mirror(spec)


def test_site_repository_naming():
    ref = parse("prom/prometheus:v3.5.0")
    assert site_repository(ref, "", False) == "docker.io/prom/prometheus"
    assert site_repository(ref, "team/x", False) == "team/x/docker.io/prom/prometheus"
    assert site_repository(ref, "", True) == "prom/prometheus"
    assert site_repository(parse("busybox"), "", False) == "docker.io/library/busybox"


# --- names on the site (issue 12, item 1) -----------------------------------------------------------

@pytest.mark.parametrize("text, site", [
    ("127.0.0.1:5000/acme/app:1.0", "127.0.0.1_5000/acme/app"),
    ("registry.corp:8443/team/app", "registry.corp_8443/team/app"),
    ("Registry.Corp:8443/team/app", "registry.corp_8443/team/app"),   # lower-cased: DNS ignores case
    ("localhost:5000/app", "localhost_5000/app"),
    ("localhost/app", "localhost/app"),
    ("ghcr.io/org/app@sha256:" + "a" * 64, "ghcr.io/org/app"),
    ("busybox", "docker.io/library/busybox"),
    ("[::1]:5000/acme/app", "__1_5000/acme/app"),                     # no valid name: refused by the check below
])
def test_the_source_host_is_written_as_one_path_component(text, site):
    ref = parse(text)
    assert site_repository(ref, "", False) == site
    assert site_repository(ref, "corp/air-gap", False) == "corp/air-gap/" + site
    assert site_repository(ref, "", True) == ref.path
    assert site_host(ref.host) == site.split("/")[0]


def test_two_hosts_never_meet_in_one_component_but_by_case():
    hosts = ["a.b:1", "a.b", "a.b1", "a:1", "a1", "a.b.1", "127.0.0.1:5000", "127.0.0.15:000", "127.0.0.1:50"]
    assert len({site_host(h) for h in hosts}) == len(hosts)
    assert site_host("REG.corp:1") == site_host("reg.CORP:1") == "reg.corp_1"


def test_charts_and_references_on_the_site():
    assert chart_repository("", "loki") == "charts/loki"
    assert chart_repository("corp/x", "loki") == "corp/x/charts/loki"
    assert site_reference("site:5000", "corp/127.0.0.1_5000/acme/app") == "site:5000/corp/127.0.0.1_5000/acme/app"
    assert site_reference("site", "a/b", "1.0") == "site/a/b:1.0"
    assert site_reference("site", "a/b", digest="sha256:" + "0" * 64) == "site/a/b@sha256:" + "0" * 64
    assert site_reference("site", "a/b", "1.0", "sha256:" + "0" * 64) == "site/a/b:1.0@sha256:" + "0" * 64


@pytest.mark.parametrize("repository", [
    "a", "a/b", "127.0.0.1_5000/acme/app", "registry.corp_8443/team/app", "a__b", "a-b", "a---b", "a.b_c-d",
    "docker.io/library/busybox", "corp/air-gap/charts/loki", "0/1/2",
    "x" * (255 - len("site.test:5000/")),                                 # exactly 255 with the host
])
def test_names_the_distribution_grammar_accepts(repository):
    assert site_name_problem("site.test:5000", repository) is None


@pytest.mark.parametrize("repository, why", [
    ("127.0.0.1:5000/acme/app", "the path component '127.0.0.1:5000' is not"),
    ("__1_5000/acme/app", "the path component '__1_5000' is not"),
    ("Acme/app", "the path component 'Acme' is not"),
    ("a/b./c", "the path component 'b.' is not"),
    ("a/-b", "the path component '-b' is not"),
    ("a___b", "the path component 'a___b' is not"),
    ("a._b", "the path component 'a._b' is not"),
    ("a..b", "the path component 'a..b' is not"),
    ("a//b", "the path component '' is not"),
    ("a/", "the path component '' is not"),
    ("charts/web-.x", "the path component 'web-.x' is not"),
    ("x" * (256 - len("site.test:5000/")), "256 characters with the registry host, more than the 255"),
])
def test_names_the_distribution_grammar_refuses(repository, why):
    problem = site_name_problem("site.test:5000", repository)
    assert problem is not None and problem.startswith(why), problem


@pytest.mark.parametrize("tag, ok", [
    ("1.0", True), ("v3.5.0", True), ("1.2.3_build.4", True), ("_x", True), ("x" * 128, True),
    ("x" * 129, False), (".1", False), ("-1", False), ("1+2", False), ("", False), ("a b", False),
])
def test_tags_on_the_site(tag, ok):
    assert (site_tag_problem(tag) is None) is ok
