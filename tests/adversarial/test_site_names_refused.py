"""Issue 12, item 1: a bundle whose site names a registry would refuse is exit 3 before the site gets a byte.

A site repository is [PREFIX/]<source host>/<path>: a source name that is valid where it comes from can be
too long once nested on the site (255 characters with the registry host, as clients parse a reference).
Distribution 2.8 answers such a name with a 500 (to the first HEAD, without a body): the install used to
promote the version, then retry that answer for ~16 s in phase 3 and say the site "keeps failing". Now it
refuses when it decides, listing every name, and the site's access log shows not one request. The remedy
the documentation names (--strip-source-host, or a shorter PREFIX) then works. A chart whose name no registry
takes as a path component ("web..x") is refused the same way: tests/unit/test_site_names.py (the build's helm
check already refuses such a local chart)."""

import pytest
from conftest import write_manifest
from tests.helpers.images import make_image, push, skopeo_inspect_digest
from tests.helpers.registry import start_registry

pytestmark = pytest.mark.usefixtures("no_credentials")

LONG = ("team/" + "a" * 230, "team/" + "b" * 230)  # with 127.0.0.1:PORT/ at most 251 characters: valid at the source


@pytest.fixture
def world(ob, keydir, tmp_path):
    """A source registry on a port with two images under long paths; a site registry logging every request; a
    bundle of both."""
    src = start_registry(tmp_path / "src", kind="plain")
    site = start_registry(tmp_path / "site", kind="plain", accesslog=True)
    lay = tmp_path / "lay"
    make_image(lay, "long", [{"app": b"a long name\n"}])
    digests = [push(lay, "long", src, "%s:1.0" % path) for path in LONG]
    extra = "  images:\n" + "".join("    - ref: %s/%s:1.0\n" % (src.host, path) for path in LONG)
    m = write_manifest(tmp_path / "m", name="long", version="1.0.0", tenants=False, extra=extra)
    r = ob("build", m, "--key", keydir / "ed" / "bundle.key", "--out", tmp_path / "out", "--cache",
           tmp_path / "cache", "--insecure-registry", src.host, "--json")
    assert r.rc == 0, r
    yield src, site, r.json["result"]["archive"], digests
    site.stop()
    src.stop()


def test_names_the_site_would_refuse_are_exit_3_and_the_site_sees_no_request(ob, world, pub, tmp_path):
    src, site, archive, _ = world
    kit = tmp_path / "kit"
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", site.host + "/airgap",
           "--insecure-registry", site.host, "--json")
    assert r.rc == 3, r
    error = r.json["error"]
    assert error["class"] == "invalid-input"
    assert error["message"] == ("long 1.0.0 cannot be pushed to %s: 2 repository names or tags do not fit the "
                                "distribution reference grammar; nothing was pushed" % site.host)
    ported = src.host.replace(":", "_")
    length = len(site.host) + len("/airgap/") + len(ported) + 1 + len(LONG[0])
    assert error["problems"] == [
        "%s/airgap/%s/%s (image %s/%s:1.0): %d characters with the registry host, more than the 255 a repository name "
        "may have" % (site.host, ported, path, src.host, path, length) for path in LONG]
    assert site.requests() == []  # not a single request, not even /v2/
    assert not (kit / "current" / "long").exists() and not (kit / "bundles" / "long").exists()
    text = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", site.host + "/airgap",
              "--insecure-registry", site.host)
    assert text.rc == 3, text
    lines = text.err.splitlines()
    assert len(lines) == 3 and "nothing was pushed" in lines[0], text  # the sentence, then one line per name
    assert site.requests() == []


def test_the_remedy_it_names_works(ob, world, pub, tmp_path):
    src, site, archive, digests = world
    ok = ob("install", archive, "--kit", tmp_path / "kit", "--trust", pub, "--registry", site.host,
            "--insecure-registry", site.host, "--strip-source-host", "--json")
    assert ok.rc == 0, ok
    for path, digest in zip(LONG, digests):
        assert skopeo_inspect_digest("%s:1.0" % path, site) == digest
