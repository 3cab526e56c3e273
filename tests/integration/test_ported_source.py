"""Issue 12, item 1 end to end: a real docker-registry as the SOURCE, on a loopback port (127.0.0.1:PORT, no
--mirror: the bundle's canonical references carry the port), pushed by the real CLI to a real site registry.

The site serves every image under SITE/PREFIX/127.0.0.1_PORT/... (skopeo checks the digests), and every
output that names the site — the install's own report, the compose file, the chart's values as `helm template`
renders them, COMMANDS.txt — names exactly what the push put there (skopeo resolves each). The in-process
counterpart with fault injection: tests/unit/test_site_names.py; a name the site would refuse:
tests/adversarial/test_site_names_refused.py."""

import json
import re
from pathlib import Path

import pytest
import yaml
from tests.helpers.charts import helm, make_chart
from tests.helpers.craft import read_entries
from tests.helpers.images import make_image, make_index, push, skopeo_inspect_digest
from tests.helpers.registry import start_registry

pytestmark = pytest.mark.usefixtures("no_credentials")

PLATS = (("linux", "amd64"), ("linux", "arm64"))


@pytest.fixture(scope="module")
def world(tmp_path_factory, ob, keydir):
    """A source registry on a port holding an image and an index; a bundle of both, a local chart whose values
    name the image, and a compose file naming both. (source, bundle archive, bundle.json, helm home)"""
    base = tmp_path_factory.mktemp("sitenames")
    src = start_registry(base / "src", kind="plain")
    lay = base / "layout"
    make_image(lay, "app", [{"bin/app": b"the app\n"}])
    make_index(lay, "multi", platforms=PLATS)
    push(lay, "app", src, "acme/app:1.0")
    push(lay, "multi", src, "acme/multi:2.0")
    m = base / "m"
    app, multi = "%s/acme/app:1.0" % src.host, "%s/acme/multi:2.0" % src.host
    make_chart(m / "charts", "web", "0.3.0", {"main": app})
    (m / "compose.yaml").write_text("services:\n  app:\n    image: %s\n  multi:\n    image: \"%s\"\n" % (app, multi))
    (m / "m.yaml").write_text(
        "apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata:\n  name: ported\n  version: \"1.0.0\"\n"
        "  created: \"2026-11-26T00:00:00Z\"\nspec:\n  images:\n    - ref: \"%s\"\n    - ref: \"%s\"\n"
        "  charts:\n    - path: charts/web\n      images:\n"
        "        - {values: main.image, ref: \"%s\", style: repository-tag}\n"
        "  files:\n    - source: compose.yaml\n      target: compose/app.yaml\n" % (app, multi, app))
    r = ob("build", m / "m.yaml", "--key", keydir / "ed" / "bundle.key", "--out", base / "out",
           "--cache", base / "cache", "--insecure-registry", src.host, "--json")
    assert r.rc == 0, r
    archive = Path(r.json["result"]["archive"])
    meta = json.loads(read_entries(archive)[2].data)
    yield src, archive, meta, base / "helm-home"
    src.stop()


@pytest.fixture
def site(tmp_path):
    reg = start_registry(tmp_path / "site", kind="plain", accesslog=True)
    yield reg
    reg.stop()


def on_site(ref: str, site) -> str:
    """SITE/repo[:tag]@digest as skopeo takes it relative to ``site``: repo@digest (skopeo refuses tag and digest)."""
    assert ref.startswith(site.host + "/"), ref
    rest = ref[len(site.host) + 1:]
    name, _, digest = rest.partition("@")
    if digest:
        name = re.sub(r":[^/:]+$", "", name)
        return "%s@%s" % (name, digest)
    return name


def test_a_source_on_a_port_lands_as_host_underscore_port_and_every_output_names_it(ob, world, pub, tmp_path,
                                                                                     site):
    src, archive, meta, home = world
    ported = src.host.replace(":", "_")                      # 127.0.0.1_PORT
    assert [i["ref"] for i in meta["images"]] == ["%s/acme/app:1.0" % src.host, "%s/acme/multi:2.0" % src.host]
    kit = tmp_path / "kit"
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", site.host + "/airgap",
           "--insecure-registry", site.host, "--json")
    assert r.rc == 0, r

    # (1) the site serves each image, index and chart under its new name, with the bundle's digests
    for image in meta["images"]:
        name = "airgap/%s/%s" % (ported, image["ref"].split("/", 1)[1])
        assert skopeo_inspect_digest(name, site) == image["digest"], name
    [chart] = meta["charts"]
    assert skopeo_inspect_digest("airgap/charts/web:0.3.0", site) == chart["oci"]["digest"]
    pushed = [q for q in site.requests() if q.method in ("PUT", "POST", "PATCH")]
    assert pushed and all("/v2/airgap/%s/acme/" % ported in q.path or "/v2/airgap/charts/web/" in q.path
                          for q in pushed)
    refused = [q for q in site.requests() if q.status >= 400 and not (q.method == "HEAD" and q.status == 404)]
    assert refused == []                                     # only "not there yet" answers on the way

    # (2) what install reports is where the images are
    deploy = r.json["result"]["deploy"]
    assert deploy["images"] == ["%s/airgap/%s/%s@%s" % (site.host, ported, i["ref"].split("/", 1)[1], i["digest"])
                                for i in meta["images"]]
    for ref in deploy["images"] + [c[len("oci://"):] for c in deploy["charts"]]:
        assert skopeo_inspect_digest(on_site(ref, site), site) == ref.rsplit("@", 1)[1]

    # (3) the deploy outputs name the same repositories, pinned by digest, and never the source's port
    outputs = kit / r.json["result"]["outputs"]["folder"]
    compose = yaml.safe_load((outputs / "compose" / "app.yaml").read_text())
    refs = [compose["services"]["app"]["image"], compose["services"]["multi"]["image"]]
    assert refs == ["%s/airgap/%s/%s@%s" % (site.host, ported, i["ref"].split("/", 1)[1].rsplit(":", 1)[0],
                                            i["digest"]) for i in meta["images"]]
    for ref in refs:
        assert skopeo_inspect_digest(on_site(ref, site), site) == ref.rsplit("@", 1)[1]
    values = outputs / "values" / "web.yaml"
    assert json.loads(values.read_text())["main"]["image"]["repository"] == "%s/airgap/%s/acme/app" % (site.host,
                                                                                                      ported)
    tgz = tmp_path / "web.tgz"
    tgz.write_bytes((kit / "current" / "ported" / chart["path"]).read_bytes())
    rendered = helm(["template", "x", str(tgz), "-f", str(values)], home)
    [image] = re.findall(r'image: "([^"]+)"', rendered)
    assert image == "%s/airgap/%s/acme/app:1.0@%s" % (site.host, ported, meta["images"][0]["digest"])
    assert skopeo_inspect_digest(on_site(image, site), site) == meta["images"][0]["digest"]
    commands = (outputs / "COMMANDS.txt").read_text()
    assert "oci://%s/airgap/charts/web@%s" % (site.host, chart["oci"]["digest"]) in commands
    for text in (commands, (outputs / "compose" / "app.yaml").read_text(), values.read_text()):
        assert src.host not in text

    # (4) the kit records the tags it owns under the same names; a second install writes nothing
    owners = json.loads((kit / ".state" / "owners.json").read_text())["sites"][site.host]
    assert sorted(owners) == ["airgap/%s/acme/app:1.0" % ported, "airgap/%s/acme/multi:2.0" % ported,
                              "airgap/charts/web:0.3.0"]
    mark = site.mark()
    again = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", site.host + "/airgap",
               "--insecure-registry", site.host, "--json")
    assert again.rc == 0 and again.json["result"]["outcome"] == "already-installed", again
    assert site.writes(site.requests_since(mark)) == []
