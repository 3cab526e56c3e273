"""The install phases that talk to a site registry (3: push by digest; 6: move tags), in-process against an
in-memory site injected through DeployOptions(transport=...), faults included: what the kit, its receipts and
the site hold after each. The same with the real CLI and registry: tests/integration/test_images_install.py,
tests/adversarial/test_registry_faults.py, test_crash_safety.py."""

import pytest
from tests.helpers.membundle import build_bundle, install_into
from tests.helpers.memregistry import MemRegistry, Sleeps, quick_policy, reset, status

from installer.errors import RegistryError
from installer.install import DeployOptions
from installer.kit.layout import Kit

SITE = "site.test"
TAG_PUT = r"/manifests/(?!sha256:)"

pytestmark = pytest.mark.usefixtures("no_credentials")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, keydir):
    """(archive, public key, the source registry): two images (one an index) built from an in-memory source."""
    source = MemRegistry("src.test")
    source.seed_image("team/app", "1.0", [b"base\n", b"app\n" * 50])
    source.seed_index("team/multi", "2.0", [("linux", "amd64"), ("linux", "arm64")])
    archive = build_bundle(source, tmp_path_factory.mktemp("phases"), keydir / "ed" / "bundle.key",
                           images=["src.test/team/app:1.0", "src.test/team/multi:2.0"])
    return archive, keydir / "ed" / "bundle.pub", source


@pytest.fixture
def site():
    return MemRegistry(SITE)


@pytest.fixture
def sleeps():
    return Sleeps()


def install(bundle, kit, site, sleeps, **kw):
    archive, pub, _ = bundle
    deploy = DeployOptions(registry=SITE, insecure=(SITE,), transport=site, retry=quick_policy(sleeps), **kw)
    return install_into(archive, kit, pub, deploy)[0]


def wanted_tags(bundle):
    source = bundle[2]
    return {"src.test/team/app": source.tags("team/app"), "src.test/team/multi": source.tags("team/multi")}


def site_tags(site):
    return {repo: site.tags(repo) for repo in site.repositories()}


def last_receipt(kit):
    return Kit(str(kit)).receipts_list("demo")[-1].to_dict()


def phase(receipt, number):
    return next(p for p in receipt["phases"] if p["phase"] == number)


def test_install_pushes_in_phase_3_and_moves_tags_in_phase_6(bundle, site, sleeps, tmp_path):
    result = install(bundle, tmp_path / "kit", site, sleeps)
    assert result.outcome == "installed" and result.current == "1.0.0"
    assert site_tags(site) == wanted_tags(bundle)
    writes = site.writes()
    first_tag = next(i for i, s in enumerate(writes) if s.method == "PUT" and "/manifests/" in s.path
                     and not s.path.rsplit("/", 1)[1].startswith("sha256:"))
    assert all("/manifests/" in s.path and "sha256:" not in s.path for s in writes[first_tag:])  # tags last
    assert len(writes) - first_tag == 2
    receipt = last_receipt(tmp_path / "kit")
    assert receipt["outcome"] == "installed"
    assert phase(receipt, 3) == dict(phase(receipt, 3), status="done", detail="site.test: 8 blobs pushed, 0 mounted, "
                                     "0 already there; 4 manifests pushed, 0 already there")
    assert phase(receipt, 6) == dict(phase(receipt, 6), status="done",
                                     detail="site.test: 2 tags moved, 0 already current")
    assert receipt["site_options"][SITE] == {"insecure": [SITE], "registry_ca": None, "strip_source_host": False}
    assert set(Kit(str(tmp_path / "kit")).owners()[SITE]) == {"src.test/team/app:1.0", "src.test/team/multi:2.0"}
    assert sleeps.calls == []


def test_installing_again_writes_nothing_to_the_site(bundle, site, sleeps, tmp_path):
    install(bundle, tmp_path / "kit", site, sleeps)
    before = len(site.writes())
    result = install(bundle, tmp_path / "kit", site, sleeps)
    assert result.outcome == "already-installed"
    assert site.writes()[before:] == []
    assert (result.push.tags_moved, result.push.tags_current) == (0, 2)
    assert phase(last_receipt(tmp_path / "kit"), 3)["detail"].startswith("site.test: 0 blobs pushed, 0 mounted")


@pytest.mark.parametrize("fault, method, path, waits", [
    (status(503), "PUT", r"/blobs/uploads/", [0.5]),                 # phase 3
    (status(429, retry_after=4), "HEAD", r"/blobs/", [4.0]),          # phase 3
    (reset(), "PUT", r"/manifests/sha256:", [0.5]),                   # phase 3
    (status(502), "PUT", TAG_PUT, [0.5]),                             # phase 6
    (reset(after=True), "PUT", TAG_PUT, [0.5]),                       # phase 6: moved, the answer lost
])
def test_a_fault_once_in_phase_3_or_6_is_retried_and_the_install_completes(bundle, site, sleeps, tmp_path, fault,
                                                                           method, path, waits):
    site.fail(fault, method=method, path=path, nth=1)
    result = install(bundle, tmp_path / "kit", site, sleeps)
    assert result.outcome == "installed" and sleeps.calls == waits
    assert site_tags(site) == wanted_tags(bundle)


def test_phase_3_failing_is_exit_7_and_leaves_current_and_the_site_tags_untouched(bundle, site, sleeps, tmp_path):
    site.fail(status(500), method="PUT", path=r"/blobs/uploads/")
    with pytest.raises(RegistryError) as caught:
        install(bundle, tmp_path / "kit", site, sleeps)
    assert caught.value.exit_code == 7 and "keeps failing: site.test answered HTTP 500" in caught.value.message
    kit = Kit(str(tmp_path / "kit"))
    assert kit.current_version("demo") is None
    receipt = last_receipt(tmp_path / "kit")
    assert receipt["outcome"] == "failed" and phase(receipt, 3)["status"] == "failed"
    assert [p["phase"] for p in receipt["phases"]] == [1, 2, 3]
    assert all(site.tags(repo) == {} and site.manifests(repo) == set() for repo in site.repositories())
    assert SITE not in kit.owners()
    # the same install again, the site healthy: it finishes the job
    site.clear_faults()
    result = install(bundle, tmp_path / "kit", site, sleeps)
    assert result.outcome == "already-installed" and result.current == "1.0.0"
    assert site_tags(site) == wanted_tags(bundle)


def test_phase_6_failing_leaves_the_version_current_and_deploy_incomplete_until_run_again(bundle, site, sleeps,
                                                                                         tmp_path):
    site.fail(status(503), method="PUT", path=TAG_PUT)
    with pytest.raises(RegistryError) as caught:
        install(bundle, tmp_path / "kit", site, sleeps)
    assert caught.value.exit_code == 7
    assert caught.value.message.endswith("(the version is installed and current; run the same install again to finish)")
    assert len(site.requests("PUT", TAG_PUT)) == 6 and sleeps.calls == [0.5, 1.0, 2.0, 4.0, 8.0]
    kit = Kit(str(tmp_path / "kit"))
    assert kit.current_version("demo") == "1.0.0"
    receipt = last_receipt(tmp_path / "kit")
    assert receipt["outcome"] == "deploy-incomplete"
    assert phase(receipt, 3)["status"] == phase(receipt, 5)["status"] == "done"
    assert phase(receipt, 6)["status"] == "failed"
    assert all(site.tags(repo) == {} for repo in site.repositories())  # content by digest, no tag
    assert all(site.manifests(repo) for repo in site.repositories())
    site.clear_faults()
    result = install(bundle, tmp_path / "kit", site, sleeps)
    assert result.outcome == "already-installed" and result.push.tags_moved == 2
    assert site_tags(site) == wanted_tags(bundle)
    assert phase(last_receipt(tmp_path / "kit"), 6)["status"] == "done"


def test_a_site_refusing_access_in_phase_3_fails_at_once(bundle, site, sleeps, tmp_path):
    site.fail(status(403), method="HEAD", path=r"/blobs/")
    with pytest.raises(RegistryError,
                       match=r"site.test refused access \(HEAD site.test/v2/src.test/team/.*: HTTP 403\)"):
        install(bundle, tmp_path / "kit", site, sleeps)
    assert sleeps.calls == [] and site.writes() == []
    assert Kit(str(tmp_path / "kit")).current_version("demo") is None


def test_without_a_registry_the_site_is_never_contacted(bundle, site, sleeps, tmp_path):
    archive, pub, _ = bundle
    result = install_into(archive, tmp_path / "kit", pub, DeployOptions(transport=site, retry=quick_policy(sleeps)))[0]
    assert result.outcome == "installed" and site.log == []
    receipt = last_receipt(tmp_path / "kit")
    assert phase(receipt, 3)["status"] == phase(receipt, 6)["status"] == "skipped"
