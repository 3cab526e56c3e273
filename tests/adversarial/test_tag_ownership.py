"""Issue 10 point 2: a key trusted only for `sandbox-*` must not change what another bundle deploys.

The attacker holds a signing key the kit trusts for `sandbox-*` bundles only. They sign a bundle named
`sandbox-evil` that carries a chart named `obs` 1.0.0 and an image `docker.io/team/app:stable` of their
own, and install it to the same site registry as the real `obs` bundle. Before the fix the tags
`SITE/charts/obs:1.0.0` and `SITE/docker.io/team/app:stable` moved to the attacker's content, and the
`obs` bundle's COMMANDS.txt (`helm ... --version 1.0.0`) pulled the attacker's chart.
"""

import json
import os

import pytest
from conftest import write_manifest
from tests.helpers.charts import make_chart
from tests.helpers.images import make_image, push, skopeo_inspect_digest
from tests.helpers.registry import start_registry


@pytest.fixture
def world(ob, keydir, tmp_path):
    """A source and a site registry; bundle obs (signed by ed) and sandbox-evil (signed by other), each with
    a chart named obs 1.0.0 and the image docker.io/team/app:stable, with different content."""
    src = start_registry(tmp_path / "src", kind="plain")
    site = start_registry(tmp_path / "site", kind="plain")
    lay = tmp_path / "lay"
    make_image(lay, "good", [{"app": b"the real app\n"}])
    make_image(lay, "evil", [{"app": b"the attacker's app\n"}])
    archives = {}
    for name, key, tag, marker in (("obs", "ed", "good", "real"), ("sandbox-evil", "other", "evil", "evil")):
        push(lay, tag, src, "team/app:stable")
        folder = tmp_path / name
        chart = make_chart(folder / "charts", "obs", "1.0.0", {})
        (chart / "templates" / "marker.yaml").write_text("# %s\n" % marker)
        m = write_manifest(folder, name=name, version="1.0.0", tenants=False,
                           extra="  images:\n    - ref: docker.io/team/app:stable\n"
                                 "  charts:\n    - path: charts/obs\n")
        r = ob("build", m, "--key", keydir / key / "bundle.key", "--out", tmp_path / "out", "--cache",
               tmp_path / ("cache-" + name), "--mirror", "docker.io=%s" % src.host, "--insecure-registry", src.host,
               "--json")
        assert r.rc == 0, r
        archives[name] = r.json["result"]["archive"]
    kit = tmp_path / "kit"
    assert ob("trust", "add", keydir / "ed" / "bundle.pub", "--names", "obs", "--kit", kit).rc == 0
    assert ob("trust", "add", keydir / "other" / "bundle.pub", "--names", "sandbox-*", "--kit", kit).rc == 0
    yield kit, site, archives
    site.stop()
    src.stop()


def install(ob, archive, kit, site, *extra):
    return ob("install", archive, "--kit", kit, "--registry", site.host, "--insecure-registry", site.host,
              "--json", *extra)


def test_a_sandbox_key_cannot_move_the_tags_of_another_bundle(ob, world):
    kit, site, archives = world
    r = install(ob, archives["obs"], kit, site)
    assert r.rc == 0, r
    chart_tag = skopeo_inspect_digest("charts/obs:1.0.0", site)
    image_tag = skopeo_inspect_digest("docker.io/team/app:stable", site)
    r = install(ob, archives["sandbox-evil"], kit, site)
    assert r.rc == 4, r
    error = r.json["error"]
    assert "nothing was changed" in error["message"]
    text = " ".join(error["problems"])
    assert "charts/obs:1.0.0 belongs to bundle obs" in text
    assert "docker.io/team/app:stable belongs to bundle obs" in text
    assert "sandbox-evil" in text  # both bundles are named
    # the tags still serve the real bundle's content, and nothing of the attacker's bundle was installed
    assert skopeo_inspect_digest("charts/obs:1.0.0", site) == chart_tag
    assert skopeo_inspect_digest("docker.io/team/app:stable", site) == image_tag
    assert not (kit / "bundles" / "sandbox-evil").exists()
    assert not (kit / "current" / "sandbox-evil").exists()


def test_a_key_trusted_for_both_names_may_move_them(ob, world, keydir):
    kit, site, archives = world
    assert install(ob, archives["obs"], kit, site).rc == 0
    # widen the sandbox key's scope to obs too: now the move is the signer's right, and ownership follows it
    assert ob("trust", "add", keydir / "other" / "bundle.pub", "--names", "sandbox-*", "--names", "obs",
              "--kit", kit).rc == 0
    r = install(ob, archives["sandbox-evil"], kit, site)
    assert r.rc == 0, r
    owners = json.loads((kit / ".state" / "owners.json").read_text())["sites"][site.host.lower()]
    assert owners["charts/obs:1.0.0"]["name"] == "sandbox-evil"


def test_deploy_outputs_name_charts_and_images_by_digest(ob, world):
    kit, site, archives = world
    r = install(ob, archives["obs"], kit, site)
    assert r.rc == 0, r
    meta = json.loads((kit / "current" / "obs" / "bundle.json").read_text())
    chart_digest = meta["charts"][0]["oci"]["digest"]
    commands = (kit / r.json["result"]["outputs"]["folder"] / "COMMANDS.txt").read_text()
    helm = next(line for line in commands.splitlines() if line.startswith("helm "))
    assert "oci://%s/charts/obs@%s" % (site.host, chart_digest) in helm
    assert "--version" not in helm  # a tag is not what is deployed
    values = json.loads((kit / r.json["result"]["outputs"]["folder"] / "values" / "obs.yaml").read_text())
    assert values == {}  # a chart without image values: nothing to pin, nothing unpinned
    pulls = r.json["result"]["deploy"]["charts"]
    assert pulls == ["oci://%s/charts/obs@%s" % (site.host, chart_digest)]
    assert all("@sha256:" in i for i in r.json["result"]["deploy"]["images"])
    assert os.path.isfile(kit / ".state" / "owners.json")
