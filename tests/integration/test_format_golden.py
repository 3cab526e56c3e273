"""bundle.json stays byte-identical: the typed model (installer/format/model.py) writes what the dict writers
wrote before it (issue 11 point 2).

tests/golden/representative.bundle.json was captured from the builder BEFORE bundle.json was written through
the model. The representative bundle has every kind of entry bundle.json can hold: images (a single manifest, a
digest-pinned reference, an index kept whole, an index narrowed to one platform and to two — a derived index),
charts (from an HTTP repository through a URL mirror, and from a local folder, with values and image value
paths with and without a style), files (one executable), both tenants, and the mirrors used. Everything in it is
deterministic except the loopback ports, which are replaced by placeholders before comparing.
"""

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from conftest import REPO, write_manifest
from tests.helpers.charts import make_chart, serve_repo
from tests.helpers.craft import read_entries
from tests.helpers.images import RandomLayer, make_image, make_index, push
from tests.helpers.registry import start_registry

from installer import TOOL_NAME, __version__

GOLDEN = REPO / "tests" / "golden" / "representative.bundle.json"
PLATFORMS = (("linux", "amd64"), ("linux", "arm64"), ("linux", "arm", "v7"))

IMAGES = """  images:
    - ref: docker.io/team/app:1.0
    - ref: docker.io/team/whole:3.0
    - ref: docker.io/team/multi:2.0
      platforms: [linux/arm64, linux/amd64]
    - ref: docker.io/team/one:4.0
      platforms: [linux/arm64]
    - ref: docker.io/team/pinned@%s
"""
CHARTS = """  charts:
    - name: web
      repo: https://charts.example.org/stable
      version: 0.3.0
      values: web-values.yaml
      images:
        - {values: main.image, ref: docker.io/team/app:1.0, style: repository-tag}
        - {values: side.image, ref: docker.io/team/whole:3.0}
    - path: local/chart
      values: local-values.yaml
      images:
        - {values: main.image, ref: docker.io/team/multi:2.0, style: image}
"""


def deterministic_tgz(root: Path, dest: Path) -> Path:
    """A chart archive with fixed mtimes, owners and order (helm package stamps the time of day)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = tarfile.TarInfo("%s/%s" % (root.name, path.relative_to(root).as_posix()))
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw.getvalue())
    return dest


@pytest.fixture(scope="module")
def representative(tmp_path_factory):
    """(bundle.json bytes as built, the loopback hosts to normalise) for the representative manifest."""
    from conftest import run_cmd, _cli_base

    base = tmp_path_factory.mktemp("golden")
    reg = start_registry(base / "reg", kind="plain")
    lay = base / "layout"
    make_image(lay, "app", [{"bin/app": b"app\n"}])
    push(lay, "app", reg, "team/app:1.0")
    for tag, seed in (("whole", 3), ("multi", 2), ("one", 4)):
        make_index(lay, tag, platforms=PLATFORMS, shared_base=RandomLayer(4096, seed=seed),
                   layers=[{"etc/name": tag.encode()}])
    push(lay, "whole", reg, "team/whole:3.0")
    push(lay, "multi", reg, "team/multi:2.0")
    push(lay, "one", reg, "team/one:4.0")
    pinned = make_image(lay, "pinned", [{"bin/pinned": b"pinned\n"}])
    push(lay, "pinned", reg, "team/pinned:x")
    src = base / "src"
    charts = base / "chart-src"
    make_chart(charts, "web", "0.3.0", {"main": "docker.io/team/app:1.0", "side": "docker.io/team/whole:3.0"})
    served = base / "served"
    deterministic_tgz(charts / "web", served / "web-0.3.0.tgz")
    repo = serve_repo(served, base / "helm-home")
    m = write_manifest(src, name="representative", version="3.1.4-rc.1+build.5",
                       files={"cfg/app.yaml": b"listen: 9090\n", "cfg/run.sh": b"#!/bin/sh\necho hi\n"},
                       extra=IMAGES % pinned.manifest_digest + CHARTS)
    local = src / "local" / "chart"
    (local / "templates").mkdir(parents=True)
    (local / "Chart.yaml").write_text("apiVersion: v2\nname: local\nversion: 0.0.1\n")
    (local / "values.yaml").write_text("main:\n  image: docker.io/team/multi:2.0\n")
    (local / "templates" / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n"
        "    - name: main\n      image: \"{{ .Values.main.image }}\"\n")
    (src / "web-values.yaml").write_text("replicas: 2\n")
    (src / "local-values.yaml").write_text("local: {enabled: true}\n")
    keys = base / "keys"
    assert run_cmd(_cli_base() + ["keygen", "--out", keys]).rc == 0
    out = base / "out"
    r = run_cmd(_cli_base() + ["build", m, "--key", keys / "bundle.key", "--out", out, "--cache", out / "cache",
                               "--json", "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host,
                               "--insecure-registry", repo.host,
                               "--mirror", "https://charts.example.org/stable=%s" % repo.url])
    try:
        assert r.rc == 0, r
        entries = {e.path: e.data for e in read_entries(Path(r.json["result"]["archive"]))}
        yield entries["bundle.json"], {reg.host: "REGISTRY-HOST", repo.host: "CHART-HOST"}
    finally:
        repo.stop()
        reg.stop()


def normalised(data: bytes, hosts: dict) -> bytes:
    """The loopback ports and the tool's release version are the only things that vary between runs."""
    text = data.decode("ascii")
    for host, placeholder in hosts.items():
        text = text.replace(host, placeholder)
    tool = '"tool": {\n    "name": "%s",\n    "version": "%s"\n  }' % (TOOL_NAME, __version__)
    assert text.count(tool) == 1
    return text.replace(tool, tool.replace(__version__, "TOOL-VERSION")).encode("ascii")


def test_bundle_json_is_byte_identical_to_the_golden_copy(representative):
    data, hosts = representative
    doc = json.loads(data)
    assert {i["ref"] for i in doc["images"] if i["derived"]} == {"docker.io/team/multi:2.0"}
    assert [c["source"] for c in doc["charts"]] == ["path", "repo"] and doc["tenants"] and doc["files"]
    if os.environ.get("OFFLINE_BUNDLE_WRITE_GOLDEN") == "1":  # after a deliberate format change; review the diff
        GOLDEN.write_bytes(normalised(data, hosts))
    assert normalised(data, hosts) == GOLDEN.read_bytes()
