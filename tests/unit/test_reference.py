"""Image references normalise as Docker does; --mirror matches whole path components."""

import pytest

from installer.errors import InvalidInput, UsageError
from installer.format.reference import apply_mirrors, parse, parse_mirror, site_repository

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
