"""SitePush (installer/site/push.py) against an in-memory site registry: blobs, manifests and indexes by digest,
tags moved last, a re-push that writes nothing, and each fault with what the retry policy decides. The same
against the real registry: tests/integration/test_images_install.py, tests/adversarial/test_registry_faults.py."""

import re

import pytest
from tests.helpers.membundle import build_bundle, install_into, seed_chart
from tests.helpers.memregistry import (MemRegistry, Sleeps, digest_header, quick_policy, reset, status, timeout,
                                 untrusted)

from installer.errors import ContentMismatch, RegistryError
from installer.site.push import PushReport, SitePush, planned_tags, site_repositories

SITE = "site.test"

pytestmark = pytest.mark.usefixtures("no_credentials")


@pytest.fixture(scope="module")
def installed(tmp_path_factory, keydir):
    """A bundle with a single-platform image, a two-platform index sharing its base layer, a digest-only image
    and an OCI chart, built from an in-memory source and installed (no registry): (tree, meta, source)."""
    base = tmp_path_factory.mktemp("site-push")
    source = MemRegistry("src.test")
    source.seed_image("team/app", "1.0", [b"shared base layer\n", b"the app\n" * 100])
    source.seed_index("team/multi", "2.0", [("linux", "amd64"), ("linux", "arm64")])
    pinned = source.seed_image("team/pinned", None, [b"pinned only by digest\n"])
    seed_chart(source, "charts/web", "web", "0.3.0")
    archive = build_bundle(source, base, keydir / "ed" / "bundle.key",
                           images=["src.test/team/app:1.0", "src.test/team/multi:2.0",
                                   "src.test/team/pinned@" + pinned.digest],
                           charts=[("oci://src.test/charts/web", "0.3.0")])
    result, inst = install_into(archive, base / "kit", keydir / "ed" / "bundle.pub")
    return result.path, result.meta, source


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def site():
    return MemRegistry(SITE)


def pusher(installed, site, sleeps, **kw) -> SitePush:
    tree, meta, _ = installed
    kw.setdefault("insecure", (site.host,))
    return SitePush(tree, meta, site.host, transport=site, retry=quick_policy(sleeps), **kw)


def expected(installed):
    """What a complete push leaves on the site: {repo: (blobs, manifests, tags)}, from the source's own content."""
    _, meta, source = installed
    out = {}
    for repo in site_repositories(meta, "", False).values():
        upstream = repo[len("src.test/"):]
        out[repo] = (source.blobs(upstream), source.manifests(upstream), {})
    out["charts/web"] = (source.blobs("charts/web"), source.manifests("charts/web"), {})
    for repo, tag, digest, _ in planned_tags(meta, "", False):
        out[repo][2][tag] = digest
    return out


def content(site: MemRegistry):
    return {repo: (site.blobs(repo), site.manifests(repo), site.tags(repo)) for repo in site.repositories()}


def full_push(p: SitePush) -> PushReport:
    p.push_content()
    return p.move_tags()


def is_tag_put(seen) -> bool:
    return seen.method == "PUT" and "/manifests/" in seen.path and not seen.path.rsplit("/", 1)[1].startswith("sha256:")


def test_a_push_puts_blobs_then_manifests_children_first_all_by_digest_and_no_tag(installed, site, sleeps):
    report = pusher(installed, site, sleeps).push_content()
    want = expected(installed)
    assert {repo: (b, m) for repo, (b, m, _) in content(site).items()} == {r: (b, m) for r, (b, m, _) in want.items()}
    assert all(site.tags(repo) == {} for repo in want)  # phase 3 moves no tag
    writes = site.writes()
    puts = [i for i, s in enumerate(writes) if s.method == "PUT" and "/manifests/" in s.path]
    uploads = [i for i, s in enumerate(writes) if "/blobs/uploads/" in s.path]
    assert puts and uploads and max(uploads) < min(puts)  # every blob before any manifest
    assert not any(is_tag_put(s) for s in writes)
    order = [s.path.rsplit("/", 1)[1] for s in writes if s.method == "PUT" and "/manifests/" in s.path]
    index = installed[2].tags("team/multi")["2.0"]
    children = installed[2].manifests("team/multi") - {index}
    assert len(children) == 2 and all(order.index(c) < order.index(index) for c in children)  # index last
    blobs = sum(len(b) for b, _, _ in want.values())
    assert report.blobs_pushed + report.blobs_mounted == blobs and report.blobs_present == 0
    assert report.manifests_pushed == sum(len(m) for _, m, _ in want.values())
    assert report.blobs_mounted == 1  # the base layer team/app and team/multi share: mounted, not sent twice
    assert [s for s in site.requests("POST") if "mount=" in s.target and s.status == 201]
    assert sleeps.calls == []


def test_tags_move_last_and_only_there(installed, site, sleeps):
    p = pusher(installed, site, sleeps)
    p.push_content()
    before = len(site.writes())
    report = p.move_tags()
    tag_writes = site.writes()[before:]
    assert tag_writes and all(is_tag_put(s) for s in tag_writes)
    assert content(site) == expected(installed)
    assert site.tags("src.test/team/pinned") == {}  # a digest-only reference has no tag to move
    assert site.tags("charts/web") == {"0.3.0": installed[1].charts[0].oci.digest}
    assert (report.tags_moved, report.tags_current) == (3, 0)


def test_a_second_push_writes_nothing(installed, site, sleeps):
    full_push(pusher(installed, site, sleeps))
    before = len(site.writes())
    report = full_push(pusher(installed, site, sleeps))
    assert site.writes()[before:] == []
    assert report.blobs_pushed == report.blobs_mounted == report.manifests_pushed == report.tags_moved == 0
    assert report.blobs_present == sum(len(b) for b, _, _ in expected(installed).values())
    assert report.tags_current == 3


def test_a_tag_moved_elsewhere_is_moved_back_and_only_it(installed, site, sleeps):
    full_push(pusher(installed, site, sleeps))
    intruder = site.seed_image("src.test/team/app", "1.0", [b"someone else's image\n"])
    assert site.tags("src.test/team/app")["1.0"] == intruder.digest
    report = pusher(installed, site, sleeps).move_tags()
    assert (report.tags_moved, report.tags_current) == (1, 2)
    assert content(site)["src.test/team/app"][2] == expected(installed)["src.test/team/app"][2]


def test_a_prefix_and_strip_source_host(installed, site, sleeps):
    tree, meta, _ = installed
    p = SitePush(tree, meta, SITE + "/corp", strip_source_host=True, insecure=(SITE,), transport=site,
                 retry=quick_policy(sleeps))
    full_push(p)
    assert site.repositories() == ["corp/charts/web", "corp/team/app", "corp/team/multi", "corp/team/pinned"]
    assert p.report.images[0].startswith(SITE + "/corp/team/")


@pytest.mark.parametrize("fault, method, path, waits", [
    (status(503), "PUT", r"/blobs/uploads/", [0.5]),
    (status(500), "PUT", r"/manifests/sha256:", [0.5]),
    (status(504), "PUT", r"/manifests/(?!sha256:)", [0.5]),
    (status(429, retry_after=3), "HEAD", r"/blobs/", [3.0]),
    (status(429, retry_after=600), "POST", r"/blobs/uploads/", [60.0]),
    (reset(), "PUT", r"/blobs/uploads/", [0.5]),
    (reset(), "POST", r"mount=", [0.5]),
    (reset(after=True), "POST", r"/blobs/uploads/$", [0.5]),  # an upload opened, its answer lost: another is opened
    (reset(after=True), "PUT", r"/manifests/", [0.5]),  # a manifest PUT is idempotent
    (timeout(), "HEAD", r"/manifests/", [0.5]),
])
def test_a_fault_once_is_retried_and_the_site_ends_complete(installed, site, sleeps, fault, method, path, waits):
    rule = site.fail(fault, method=method, path=path, nth=1)
    full_push(pusher(installed, site, sleeps))
    assert rule.fired == 1
    assert sleeps.calls == waits
    assert content(site) == expected(installed)


def test_a_blob_upload_that_keeps_failing_is_exit_7_and_no_manifest_or_tag_is_written(installed, site, sleeps):
    layer = installed[2].blobs("team/app") - installed[2].blobs("team/multi")
    victim = sorted(layer)[0].split(":")[1]
    site.fail(status(500), method="PUT", path=victim)
    with pytest.raises(RegistryError) as caught:
        full_push(pusher(installed, site, sleeps))
    assert caught.value.exit_code == 7
    assert caught.value.message == ("site.test is not reachable or keeps failing: site.test answered HTTP 500 "
                                    "(INJECTED: fault injected by the test)")
    assert len(site.requests("PUT", victim)) == 6 and sleeps.calls == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert all(site.manifests(repo) == set() and site.tags(repo) == {} for repo in site.repositories())


def test_a_status_the_policy_does_not_retry_fails_at_once(installed, site, sleeps):
    site.fail(status(400), method="PUT", path=r"/manifests/")
    with pytest.raises(RegistryError, match=r"PUT site.test/v2/.*/manifests/sha256:.* failed with HTTP 400: INJECTED: "
                                            r"fault injected by the test$"):
        full_push(pusher(installed, site, sleeps))
    assert sleeps.calls == [] and len(site.requests("PUT", r"/manifests/")) == 1


def test_an_upload_finished_but_its_answer_lost_fails_and_the_next_run_completes_it(installed, site, sleeps):
    """The registry stored the blob and closed the upload; the retried PUT finds no upload (404): exit 7, as with
    the real registry. The run after that finds the blob present and finishes the push without sending it."""
    site.fail(reset(after=True), method="PUT", path=r"/blobs/uploads/", nth=1)
    with pytest.raises(RegistryError, match=r"not found: PUT site.test/v2/.*/blobs/uploads/"):
        full_push(pusher(installed, site, sleeps))
    [lost] = [s for s in site.requests("PUT", r"/blobs/uploads/") if s.fault]
    digest = re.search(r"digest=sha256%3A([0-9a-f]{64})", lost.target).group(1)
    before = len(site.writes())
    report = full_push(pusher(installed, site, sleeps))
    assert content(site) == expected(installed)
    assert not [s for s in site.writes()[before:] if s.method == "PUT" and digest in s.target]  # not sent again
    assert report.blobs_present >= 1


def test_a_site_that_stores_a_manifest_under_another_digest_is_exit_5(installed, site, sleeps):
    site.fail(digest_header("sha256:" + "0" * 64), method="PUT", path=r"/manifests/")
    with pytest.raises(ContentMismatch, match="stored .* as sha256:0000"):
        full_push(pusher(installed, site, sleeps))


def test_a_plain_site_not_named_insecure_is_refused_before_any_write(installed, site, sleeps):
    with pytest.raises(RegistryError, match="does not speak TLS; if it is a plain-HTTP registry, name it with "
                                            "--insecure-registry site.test"):
        full_push(pusher(installed, site, sleeps, insecure=()))
    assert site.writes() == [] and sleeps.calls == []


def test_an_untrusted_certificate_is_refused_before_any_write(installed, sleeps):
    site = MemRegistry(SITE, tls=True)
    site.fail(untrusted())
    with pytest.raises(RegistryError, match="cannot verify the TLS certificate of site.test"):
        full_push(pusher(installed, site, sleeps, insecure=()))
    assert site.writes() == [] and sleeps.calls == []


def test_a_token_site_with_the_environment_credentials(installed, sleeps, monkeypatch):
    site = MemRegistry(SITE, tls=True, auth="bearer")
    monkeypatch.setenv("BUNDLE_REGISTRY_USER", site.username)
    monkeypatch.setenv("BUNDLE_REGISTRY_PASSWORD", site.password)
    full_push(pusher(installed, site, sleeps, insecure=()))
    assert content(site) == expected(installed)
    assert {scope for _, scope in site.token_requests} >= {"repository:%s:pull,push" % r for r in expected(installed)}
    assert all(user == site.username for user, _ in site.token_requests)


def test_a_token_site_refusing_the_credentials_is_exit_7_without_the_password(installed, sleeps, monkeypatch):
    site = MemRegistry(SITE, tls=True, auth="bearer")
    monkeypatch.setenv("BUNDLE_REGISTRY_USER", site.username)
    monkeypatch.setenv("BUNDLE_REGISTRY_PASSWORD", "not-the-password-xyz")
    with pytest.raises(RegistryError) as caught:
        full_push(pusher(installed, site, sleeps, insecure=()))
    assert caught.value.message == "authentication to site.test failed: the token service refused the credentials"
    assert "not-the-password-xyz" not in repr(caught.value) and site.writes() == []
