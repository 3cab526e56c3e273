"""Issue 12, item 1: a source registry with a port, and names a site registry would refuse.

The source host becomes one valid path component of the site repository (lower-cased, ':' written '_':
SITE/src.test_5000/team/app), rendered by one function (installer/format/reference.py site_repository) for the
push, the tags the kit owns, Docker's tags, compose files, chart values and COMMANDS.txt alike. Every site
repository name and tag is checked against the distribution grammar when install decides, before the kit
changes and before the site gets a single request (exit 3, listing each). In-process against in-memory
registries; the same with the real CLI, docker-registry and skopeo: tests/integration/test_ported_source.py,
tests/adversarial/test_site_names_refused.py."""

import dataclasses
import os
from types import SimpleNamespace

import pytest
from tests.helpers.membundle import build_bundle, install_into, seed_chart
from tests.helpers.memregistry import MemRegistry, Sleeps, quick_policy

from installer.deploy.render import SiteRefs, rewrite_compose
from installer.errors import InvalidInput
from installer.format.reference import parse, site_repository
from installer.install import DeployOptions
from installer.kit.layout import Kit
from installer.site.owners import docker_tags, registry_tags
from installer.site.push import SitePush, check_site_names, planned_tags, site_repositories

SITE = "site.test"
SOURCE = "src.test:5000"
LONG = "team/" + "a" * 235  # 249 characters with src.test: a valid source name, too long once nested on a site

pytestmark = pytest.mark.usefixtures("no_credentials")


@pytest.fixture(scope="module")
def ported(tmp_path_factory, keydir):
    """A bundle from a source registry on a port: an image, an index and an OCI chart. (archive, pub, source)"""
    source = MemRegistry(SOURCE)
    source.seed_image("team/app", "1.0", [b"base\n", b"app\n" * 50])
    source.seed_index("team/multi", "2.0", [("linux", "amd64"), ("linux", "arm64")])
    seed_chart(source, "charts/web", "web", "0.3.0")
    archive = build_bundle(source, tmp_path_factory.mktemp("ported"), keydir / "ed" / "bundle.key",
                           images=[SOURCE + "/team/app:1.0", SOURCE + "/team/multi:2.0"],
                           charts=[("oci://%s/charts/web" % SOURCE, "0.3.0")])
    return archive, keydir / "ed" / "bundle.pub", source


@pytest.fixture(scope="module")
def refused(tmp_path_factory, keydir):
    """A bundle whose names no site registry takes: a path that grows past 255 characters on the site, and a
    chart whose name has an empty part ("web..x"), built where helm is absent (the build's helm check, which
    refuses such a name as a release name, is skipped there and says so). (archive, pub)"""
    source = MemRegistry("src.test")
    source.seed_image(LONG, "1.0", [b"long\n"])
    source.seed_image("team/app", "1.0", [b"fine\n"])
    seed_chart(source, "charts/web", "web..x", "0.3.0")
    without_helm = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                                   if not os.path.exists(os.path.join(d, "helm")))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", without_helm)
        archive = build_bundle(source, tmp_path_factory.mktemp("refused"), keydir / "ed" / "bundle.key",
                               images=["src.test/%s:1.0" % LONG, "src.test/team/app:1.0"],
                               charts=[("oci://src.test/charts/web", "0.3.0")])
    return archive, keydir / "ed" / "bundle.pub"


def deploy(site: MemRegistry, registry: str = SITE, **kw) -> DeployOptions:
    return DeployOptions(registry=registry, insecure=(SITE,), transport=site, retry=quick_policy(Sleeps()), **kw)


def test_a_source_on_a_port_lands_as_host_underscore_port(ported, tmp_path):
    archive, pub, source = ported
    site = MemRegistry(SITE)
    result, _ = install_into(archive, tmp_path / "kit", pub, deploy(site, SITE + "/corp"))
    assert result.outcome == "installed"
    assert site.repositories() == ["corp/charts/web", "corp/src.test_5000/team/app", "corp/src.test_5000/team/multi"]
    for repo in ("team/app", "team/multi"):
        on_site = "corp/src.test_5000/" + repo
        assert site.tags(on_site) == source.tags(repo)
        assert site.manifests(on_site) == source.manifests(repo) and site.blobs(on_site) == source.blobs(repo)
    app = source.tags("team/app")["1.0"]
    assert result.push.images[0] == "site.test/corp/src.test_5000/team/app:1.0@" + app
    assert set(Kit(str(tmp_path / "kit")).owners()[SITE]) == {
        "corp/src.test_5000/team/app:1.0", "corp/src.test_5000/team/multi:2.0", "corp/charts/web:0.3.0"}
    commands = (tmp_path / "kit" / result.outputs.rendered.folder / "COMMANDS.txt").read_text()
    assert "oci://site.test/corp/charts/web@sha256:" in commands
    assert ":5000" not in commands


def test_every_renderer_names_the_same_site_repositories(ported, tmp_path):
    archive, pub, _ = ported
    result, _ = install_into(archive, tmp_path / "kit", pub)
    meta, tree = result.meta, result.path
    for prefix, strip in (("", False), ("corp/x", False), ("corp", True)):
        registry = SITE + ("/" + prefix if prefix else "")
        want = {i.ref: site_repository(parse(i.ref), prefix, strip) for i in meta.images}
        assert want == site_repositories(meta, prefix, strip)
        pusher = SitePush(tree, meta, registry, strip_source_host=strip, insecure=(SITE,), transport=MemRegistry(SITE))
        assert pusher.repos == want
        assert [pusher.target(i) for i in meta.images] == [
            "%s/%s:%s@%s" % (SITE, want[i.ref], parse(i.ref).tag, i.digest) for i in meta.images]
        assert set(pusher.site_tags().values()) == {"%s/%s:%s" % (SITE, want[i.ref], parse(i.ref).tag)
                                                    for i in meta.images}
        image_tags = {"%s:%s" % (want[i.ref], parse(i.ref).tag) for i in meta.images}
        assert image_tags <= set(registry_tags(meta, registry, strip))
        assert image_tags <= {repo + ":" + tag for repo, tag, _, _ in planned_tags(meta, prefix, strip)}
        assert {SITE + "/" + t for t in image_tags} <= set(docker_tags(meta, registry, strip))
        refs = SiteRefs(meta, SITE, prefix, strip)
        for image in meta.images:
            placed = refs.lookup(image.ref)
            assert placed is not None
            assert placed.repository == "%s/%s" % (SITE, want[image.ref])
            assert placed.pinned == "%s/%s@%s" % (SITE, want[image.ref], image.digest)
            assert "%s/%s" % (placed.registry, placed.path) == placed.repository
        compose = rewrite_compose("services:\n  app:\n    image: %s/team/app:1.0\n" % SOURCE, refs, tree, "c.yaml")
        app = next(i for i in meta.images if i.ref.endswith("/team/app:1.0"))
        assert compose == "services:\n  app:\n    image: %s/%s@%s\n" % (SITE, want[app.ref], app.digest)


def test_names_a_site_would_refuse_are_exit_3_before_the_site_or_the_kit_is_touched(refused, tmp_path):
    archive, pub = refused
    site = MemRegistry(SITE)
    with pytest.raises(InvalidInput) as caught:
        install_into(archive, tmp_path / "kit", pub, deploy(site, SITE + "/corp"))
    error = caught.value
    assert error.exit_code == 3
    assert error.message == ("demo 1.0.0 cannot be pushed to site.test: 2 repository names or tags do not fit the "
                             "distribution reference grammar; nothing was pushed")
    assert error.problems == [
        "site.test/corp/src.test/%s (image src.test/%s:1.0): 264 characters with the registry host, more than the "
        "255 a repository name may have" % (LONG, LONG),
        "site.test/corp/charts/web..x (chart web..x 0.3.0): the path component 'web..x' is not lower-case letters "
        "and digits joined by '.', '_', '__' or '-'"]
    assert site.log == []  # not one request, not even /v2/
    kit = Kit(str(tmp_path / "kit"))
    assert kit.current_version("demo") is None
    assert not os.path.exists(kit.version_dir("demo", "1.0.0"))
    assert os.listdir(os.path.join(str(tmp_path / "kit"), ".state", "staging")) == []
    receipt = kit.receipts_list("demo")[-1].to_dict()
    assert receipt["outcome"] == "failed" and receipt["error"]["class"] == "invalid-input"


def test_the_push_itself_refuses_them_before_its_first_request(refused, tmp_path):
    """Rollback and any other caller of SitePush get the same check (the installed tree, no site at install)."""
    archive, pub = refused
    result, _ = install_into(archive, tmp_path / "kit", pub)
    site = MemRegistry(SITE)
    with pytest.raises(InvalidInput, match="2 repository names or tags do not fit"):
        SitePush(result.path, result.meta, SITE, insecure=(SITE,), transport=site)
    assert site.log == []
    with pytest.raises(InvalidInput) as caught:  # without the source host the long path fits; the chart does not
        check_site_names(result.meta, SITE, True)
    assert [p.split(" ")[0] for p in caught.value.problems] == ["site.test/charts/web..x"]
    with pytest.raises(InvalidInput) as caught:  # under a long prefix it does not fit either
        check_site_names(result.meta, SITE + "/" + "p" * 20, True)
    assert [p.split(" ")[0] for p in caught.value.problems] == [
        "site.test/%s/%s" % ("p" * 20, LONG), "site.test/%s/charts/web..x" % ("p" * 20)]


def test_strip_source_host_collisions_name_the_site_repository(tmp_path, keydir):
    source = MemRegistry(SOURCE)
    source.seed_image("team/app", "1.0", [b"one\n"])
    archive = build_bundle(source, tmp_path / "b", keydir / "ed" / "bundle.key", images=[SOURCE + "/team/app:1.0"])
    result, _ = install_into(archive, tmp_path / "kit", keydir / "ed" / "bundle.pub")
    meta = result.meta
    twin = dataclasses.replace(meta.images[0], ref="src.test/team/app:1.0")
    doubled = SimpleNamespace(name=meta.name, version=meta.version, images=meta.images + (twin,), charts=())
    with pytest.raises(InvalidInput) as caught:
        check_site_names(doubled, SITE, True)
    assert caught.value.message == ("--strip-source-host would put src.test:5000/team/app and src.test/team/app "
                                    "into the same repository site.test/team/app")
    check_site_names(doubled, SITE, False)  # with the hosts kept they cannot collide
