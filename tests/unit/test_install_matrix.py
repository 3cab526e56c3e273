"""Issue 13 point 8: every combination of the install options the README lists — a site registry, Docker, both,
neither; --apply or not; a first install and a reinstall — for a bundle with images, one with a chart, and one
with only files, gives a result whose text and JSON render (no traceback), say what happened, and exit 0. In
process: an in-memory source and site registry, a fake Docker engine that holds what it is given, no kubeconfig
(so --apply prints the Kubernetes commands instead of running them). The real components: tests/integration."""

import itertools
import json

import pytest
from tests.helpers.fakeengine import fake_engine
from tests.helpers.membundle import build_bundle, seed_chart
from tests.helpers.memregistry import MemRegistry, Sleeps, quick_policy

from installer.cli.install import install_json, text_install
from installer.errors import UsageError
from installer.install import DeployOptions, Installer

pytestmark = pytest.mark.usefixtures("no_credentials")
SITE = "site.test"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keydir):
    """{kind: (archive, config digest of its image or None)} for images, a chart, and only files."""
    source = MemRegistry("src.test")
    image = source.seed_image("team/app", "1.0", [b"base\n", b"app\n"])
    seed_chart(source, "charts/web", "web", "0.3.0")
    key = keydir / "ed" / "bundle.key"
    base = tmp_path_factory.mktemp("matrix")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", "/usr/bin:/bin")  # no helm: the chart is not rendered at build time here
        return {
            "images": (build_bundle(source, base / "i", key, images=["src.test/team/app:1.0"], name="imgs"),
                       image.blobs[0]),
            "chart": (build_bundle(source, base / "c", key, charts=[("oci://src.test/charts/web", "0.3.0")],
                                   name="chart"), None),
            "files": (build_bundle(source, base / "f", key, name="files"), None),
        }


SITES = {"neither": (False, False), "registry": (True, False), "docker": (False, True), "both": (True, True)}


@pytest.mark.parametrize("kind, site, apply", list(itertools.product(("images", "chart", "files"), SITES,
                                                                     (False, True))))
def test_every_install_combination_renders_its_text_and_json(bundles, keydir, tmp_path, monkeypatch, kind, site,
                                                             apply):
    archive, config = bundles[kind]
    registry, docker = SITES[site]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    sock = tmp_path / "d.sock"
    engine = fake_engine(sock, [{"stream": "Loaded image"}], config or "sha256:" + "0" * 64, "20.10.24")
    monkeypatch.setenv("DOCKER_HOST", "unix://%s" % sock)
    site_registry = MemRegistry(SITE)
    try:
        for attempt in ("install", "reinstall"):
            deploy = DeployOptions(registry=SITE if registry else None, insecure=(SITE,), docker=docker,
                                   apply=apply, transport=site_registry, retry=quick_policy(Sleeps()))
            inst = Installer(str(archive), str(tmp_path / "kit"), trust=[str(keydir / "ed" / "bundle.pub")],
                             show_progress=False, deploy=deploy)
            if apply and not (registry or docker):
                with pytest.raises(UsageError, match="--apply needs a site"):
                    inst.run()
                assert not (tmp_path / "kit" / "bundles").exists() or not any((tmp_path / "kit" / "bundles").iterdir())
                return
            result = inst.run()
            text = "\n".join(text_install(result))
            doc = json.loads(json.dumps(install_json(result)))
            assert result.outcome == ("installed" if attempt == "install" else "already-installed"), attempt
            assert "Traceback" not in text and doc["current"] == "1.0.0"
            if apply:
                applied = doc["deploy"]["apply"]
                assert applied, doc["deploy"]
                if kind != "chart" and registry:  # nothing to render: said so, not an error
                    assert "nothing to apply" in applied["kubernetes"]
            if registry and kind != "files":
                assert doc["deploy"]["site"] == SITE and ("site %s:" % SITE) in text
            if docker and kind == "images":
                assert [i["id"] for i in doc["docker"]["images"]] == [config] and "docker (" in text
    finally:
        engine.shutdown()
