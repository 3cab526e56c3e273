"""The build's pull side (bundler/pull/images.py Puller and BlobCache.download, bundler/pull/charts.py from_oci)
against an in-memory source registry: what lands in the cache, which platforms are chosen, and what each fault
does (bytes that are not their digest are refused, a body cut short is resumed or refused). The same against
real registries: tests/integration/test_images_build.py, tests/adversarial/test_registry_faults.py."""

import json
import os

import pytest
from tests.helpers.membundle import seed_chart
from tests.helpers.memregistry import (MemRegistry, Sleeps, corrupt, cut, digest_header, quick_policy, reset, status,
                                 truncate)

from bundler.pull.charts import ChartFetcher
from bundler.pull.images import BlobCache, Puller, pull_images
from installer.errors import ContentMismatch, InvalidInput, RegistryError
from installer.format.reference import parse_mirror

PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("linux", "s390x")]

pytestmark = pytest.mark.usefixtures("no_credentials")


@pytest.fixture
def src():
    return MemRegistry("src.test")


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def cache(tmp_path):
    return BlobCache(str(tmp_path / "cache"))


def puller(cache, src, sleeps, mirrors=("docker.io=src.test",)) -> Puller:
    return Puller(cache, [parse_mirror(m) for m in mirrors], None, [src.host], transport=src,
                  retry=quick_policy(sleeps))


def pull(p: Puller, *entries: dict):
    return pull_images(list(entries), ["spec.images[%d]" % i for i in range(len(entries))], p)


def leftovers(cache: BlobCache):
    return [n for n in os.listdir(cache.blobs) if n.startswith(".")]


def test_a_single_platform_image_lands_in_the_cache_verified(cache, src, sleeps):
    img = src.seed_image("team/app", "1.0", [b"base\n", b"app\n"])
    p = puller(cache, src, sleeps)
    [pulled] = pull(p, {"ref": "docker.io/team/app:1.0"})
    assert pulled.top.digest == img.digest and pulled.entry.fetched_from == "src.test/team/app"
    assert set(pulled.blobs) == {img.digest} | set(img.blobs)
    for digest in img.blobs:
        assert cache.has(digest) and open(cache.path(digest), "rb").read() == src.blob(digest)
    assert cache.read(img.digest) == img.data and cache.media_type(img.digest) == img.media_type
    assert [m.to_dict() for m in pulled.entry.manifests] == [{"digest": img.digest, "media_type": img.media_type,
                                                              "platform": "linux/amd64"}]
    # a second pull asks for the tag again (it may have moved) and downloads nothing
    before = len(src.requests("GET", r"/blobs/"))
    pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app:1.0"})
    assert len(src.requests("GET", r"/blobs/")) == before and src.requests("HEAD", r"/manifests/1.0")
    assert sleeps.calls == [] and leftovers(cache) == []


@pytest.mark.parametrize("wanted, kept, derived", [
    (None, ["linux/amd64", "linux/arm64", "linux/s390x"], False),          # no platforms: the index whole
    (["linux/amd64", "linux/arm64", "linux/s390x"], ["linux/amd64", "linux/arm64", "linux/s390x"], False),
    (["linux/arm64"], ["linux/arm64"], False),                              # one: the child itself
    (["linux/s390x", "linux/amd64"], ["linux/amd64", "linux/s390x"], True),  # a strict subset: a derived index
])
def test_platforms_chosen_from_an_index(cache, src, sleeps, wanted, kept, derived):
    index = src.seed_index("team/multi", "2.0", PLATFORMS)
    entry = {"ref": "docker.io/team/multi:2.0"}
    if wanted:
        entry["platforms"] = wanted
    [pulled] = pull(puller(cache, src, sleeps), entry)
    assert [m.platform for m in pulled.entry.manifests] == kept
    assert pulled.entry.derived is derived
    children = {c.platform: c for c in index.children}
    if kept == ["linux/arm64"]:
        assert pulled.top.digest == children["linux/arm64"].digest  # the upstream manifest, its digest kept
    elif not derived:
        assert pulled.top.digest == index.digest
    else:
        doc = json.loads(cache.read(pulled.top.digest))
        assert [m["digest"] for m in doc["manifests"]] == [children[k].digest for k in kept]
        assert pulled.entry.index_digest == index.digest
    for platform, child in children.items():
        config, _shared, own = child.blobs
        for digest in (child.digest, config, own):
            assert (digest in pulled.blobs) is (platform in kept) and cache.has(digest) is (platform in kept)


def test_a_platform_the_index_does_not_offer_is_exit_3(cache, src, sleeps):
    src.seed_index("team/multi", "2.0", PLATFORMS[:2])
    with pytest.raises(InvalidInput, match="offers linux/amd64, linux/arm64, not windows/amd64"):
        pull(puller(cache, src, sleeps), {"ref": "docker.io/team/multi:2.0", "platforms": ["windows/amd64"]})


def test_a_digest_pinned_index_with_a_subset_is_exit_3(cache, src, sleeps):
    index = src.seed_index("team/multi", "2.0", PLATFORMS)
    with pytest.raises(InvalidInput, match="pins an index by digest but platforms selects a subset"):
        pull(puller(cache, src, sleeps), {"ref": "docker.io/team/multi@" + index.digest, "platforms": ["linux/arm64"]})


def test_a_single_platform_image_of_another_platform_is_exit_3(cache, src, sleeps):
    src.seed_image("team/app", "1.0", [b"x\n"], platform=("linux", "arm64"))
    with pytest.raises(InvalidInput, match="is linux/arm64 only; platforms asks for linux/amd64"):
        pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app:1.0", "platforms": ["linux/amd64"]})


def test_a_layer_whose_bytes_are_not_its_digest_is_refused_and_not_cached(cache, src, sleeps):
    img = src.seed_image("team/app", "1.0", [b"base layer\n" * 100])
    layer = img.blobs[1]
    src.fail(corrupt(7), method="GET", path=r"/blobs/%s" % layer)
    with pytest.raises(ContentMismatch, match="blob %s has sha256 .*: the registry served other bytes" % layer):
        pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app:1.0"})
    assert not cache.has(layer) and leftovers(cache) == []
    assert len(src.requests("GET", r"/blobs/%s" % layer)) == 1 and sleeps.calls == []  # refused, not retried


@pytest.mark.parametrize("fault", [truncate(500), cut(500), reset(), status(502)])
def test_a_layer_cut_short_or_failed_once_is_fetched_again_and_verified(cache, src, sleeps, fault):
    img = src.seed_image("team/app", "1.0", [os.urandom(64 * 1024)])
    layer = img.blobs[1]
    src.fail(fault, method="GET", path=r"/blobs/%s" % layer, nth=1)
    pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app:1.0"})
    assert open(cache.path(layer), "rb").read() == src.blob(layer)
    gets = src.requests("GET", r"/blobs/%s" % layer)
    assert len(gets) == 2 and sleeps.calls == [0.5]
    if fault.kind in ("truncate", "cut"):
        assert gets[1].header("Range") == "bytes=500-"  # resumed where it stopped


def test_a_layer_that_is_always_cut_short_is_exit_7_and_nothing_is_cached(cache, src, sleeps):
    img = src.seed_image("team/app", "1.0", [os.urandom(64 * 1024)])
    layer = img.blobs[1]
    src.fail(truncate(0), method="GET", path=r"/blobs/%s" % layer)
    with pytest.raises(RegistryError, match=r"cannot download %s from src.test: connection lost after 0 of 65536 "
                                            r"bytes" % layer):
        pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app:1.0"})
    assert not cache.has(layer) and leftovers(cache) == []
    assert len(sleeps.calls) == 5


def test_blob_cache_download_keeps_nothing_of_a_refused_blob(cache, src, sleeps):
    data = b"exactly these bytes\n" * 50
    digest = src.put_blob("team/app", data)
    p = puller(cache, src, sleeps)
    reg = p.registry("src.test")
    src.fail(corrupt(0), method="GET", path=r"/blobs/", nth=1)
    with pytest.raises(ContentMismatch):
        cache.download(reg, "team/app", digest, len(data))
    assert not cache.has(digest) and leftovers(cache) == []
    cache.download(reg, "team/app", digest, len(data))
    assert cache.has(digest, len(data))


def test_a_manifest_the_registry_answers_with_another_digest_is_refused(cache, src, sleeps):
    img = src.seed_image("team/app", "1.0", [b"x\n"])
    src.fail(digest_header("sha256:" + "e" * 64), method="GET", path=r"/manifests/")
    with pytest.raises(ContentMismatch, match="Docker-Content-Digest says sha256:eeee"):
        pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app@" + img.digest})
    assert not cache.has(img.digest)


def test_a_tag_pinned_to_a_digest_must_still_point_there(cache, src, sleeps):
    src.seed_image("team/app", "1.0", [b"x\n"])
    other = "sha256:" + "a" * 64
    with pytest.raises(ContentMismatch, match="the tag 1.0 points at sha256:.*, not the pinned %s" % other):
        pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app:1.0@" + other})


def test_429_on_a_manifest_waits_what_retry_after_asks(cache, src, sleeps):
    src.seed_image("team/app", "1.0", [b"x\n"])
    src.fail(status(429, retry_after=2), method="HEAD", path=r"/manifests/", nth=1)
    src.fail(status(429, retry_after=120), method="GET", path=r"/manifests/", nth=1)
    pull(puller(cache, src, sleeps), {"ref": "docker.io/team/app:1.0"})
    assert sleeps.calls == [2.0, 60.0]


def test_an_oci_chart_is_pulled_byte_exact(cache, src, sleeps, tmp_path):
    digest = seed_chart(src, "charts/web", "web", "0.3.0")
    p = puller(cache, src, sleeps, mirrors=())
    fetcher = ChartFetcher(cache, p, [], None, [src.host], 0)
    chart = fetcher.from_oci({"ref": "oci://src.test/charts/web", "version": "0.3.0"}, "spec.charts[0]")
    assert (chart.name, chart.version, chart.entry.oci.digest) == ("web", "0.3.0", digest)
    assert open(cache.path(chart.tgz_digest), "rb").read() == src.blob(chart.tgz_digest)


def test_an_oci_chart_whose_layer_is_not_its_digest_is_refused(cache, src, sleeps):
    seed_chart(src, "charts/web", "web", "0.3.0")
    src.fail(corrupt(10), method="GET", path=r"/blobs/")
    fetcher = ChartFetcher(cache, puller(cache, src, sleeps, mirrors=()), [], None, [src.host], 0)
    with pytest.raises(ContentMismatch, match="the registry served other bytes"):
        fetcher.from_oci({"ref": "oci://src.test/charts/web", "version": "0.3.0"}, "spec.charts[0]")
    assert leftovers(cache) == []
