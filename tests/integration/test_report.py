"""`offline-bundle report` as a reviewer uses it (issue 14, points 3 and 4): on a real bundle (an Alpine-shaped image
whose SBOM syft makes, files and tenants), verified, written as one page, printed by the real headless Chromium
(offline) and read back with pdftotext.

- The PDF's first line is the verdict; it carries the signer's fingerprint, the bundle_id, the archive's sha256,
  every file's sha256, every image digest, the SBOM's packages and licenses, the provenance, and the by-hand
  commands of docs/VERIFY.md for this archive (which run, and pass).
- A tampered archive: exit code as verify's, the page still written, its first line "FAILED (exit N): why".
- `report --kit`: what the kit installed, after its integrity check; a damaged installed file is FAILED, exit 5.
- `--json` carries the same facts.
"""

import json
import subprocess
from pathlib import Path

import pytest
from conftest import write_manifest

from tests.helpers import browser
from tests.helpers.craft import get, read_entries, write_archive
from tests.helpers.images import ALPINE_FILES, make_image



@pytest.fixture(scope="module")
def bundle(ob, keydir, tmp_path_factory):
    from tests.helpers.images import push
    from tests.helpers.registry import start_registry

    base = tmp_path_factory.mktemp("report")
    reg = start_registry(base / "reg", kind="plain")
    make_image(base / "layout", "tools", [ALPINE_FILES])
    push(base / "layout", "tools", reg, "acme/alpine-tools:1.0")
    manifest = write_manifest(base / "src", name="tools",
                              extra="  images:\n    - ref: docker.io/acme/alpine-tools:1.0\n")
    r = ob("build", manifest, "--key", keydir / "ed" / "bundle.key", "--out", base / "out", "--cache",
           base / "cache", "--json", "--mirror", "docker.io=%s" % reg.host, "--insecure-registry", reg.host)
    reg.stop()
    assert r.rc == 0, r
    return Path(r.json["result"]["archive"]), r.json["result"]


def _print(html: Path):
    pdf = html.with_suffix(".pdf")
    browser.print_pdf(html, pdf)
    return browser.pdf_text(pdf)


def _first_line(text: str) -> str:
    """The page's first line of text (the verdict), joined where the print wrapped it."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line)
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return " ".join(lines[start:end])


def test_the_report_of_a_good_bundle_printed(ob, keydir, tmp_path, bundle):
    archive, built = bundle
    pub = keydir / "ed" / "bundle.pub"
    out = tmp_path / "report.html"
    r = ob("report", archive, "--trust", pub, "--out", out, "--json")
    assert r.rc == 0, r
    facts = r.json["result"]["report"]
    assert r.json["result"]["verdict"].startswith("VERIFIED: tools 1.0.0 is signed by SHA256:")
    html = out.read_text()
    assert "<script" not in html.lower() and "src=" not in html and "href=" not in html
    text = _print(out)
    assert _first_line(text).startswith("VERIFIED: tools 1.0.0 is signed by")
    squeezed = "".join(text.split())
    fingerprint = facts["signer"]["fingerprint"]
    assert fingerprint in squeezed and built["bundle_id"] in squeezed and built["sha256"] in squeezed
    entries = {e.path: e.data for e in read_entries(archive)}
    sums = entries["SHA256SUMS"].decode().splitlines()
    for line in sums:  # every file's sha256, whole
        assert line[:64] in text, line
    meta = json.loads(entries["bundle.json"])
    for image in meta["images"]:
        for digest in [image["digest"]] + [m["digest"] for m in image["manifests"]]:
            assert digest in squeezed
    # the SBOM: syft's packages and their licenses, counted and listed
    (sbom,) = facts["sboms"]["images"]
    assert sbom["by_type"] == {"apk": 2} and sbom["licenses"] == {"MIT": 1, "Zlib": 1}
    assert {p["name"] for p in sbom["packages"]} == {"musl", "zlib"}
    for word in ("musl", "1.2.5-r0", "zlib", "Zlib", "pkg:apk/alpine/musl"):
        assert word in squeezed, word
    # the provenance, verified
    prov = facts["provenance"]
    assert prov["verified"] and prov["signer"] == fingerprint and prov["statement_sha256"] in squeezed
    # the by-hand commands name this archive and run as they are shown
    runs = [c["run"] for c in facts["commands"]]
    assert str(archive) in runs[0] and str(pub) in runs[0]
    work = tmp_path / "by-hand"
    work.mkdir()
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(runs)], cwd=work, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "opensslpkeyutl-verify-pubin" in squeezed


def test_a_tampered_archive_gives_a_failed_report_with_verifys_exit_code(ob, keydir, tmp_path, bundle):
    archive, _ = bundle
    pub = keydir / "ed" / "bundle.pub"
    entries = read_entries(archive)
    e = get(entries, "config/app.yaml")
    e.data = e.data.replace(b"9090", b"6666")
    bad = write_archive(entries, tmp_path / "tools-1.0.0.bundle.tar.zst")
    v = ob("verify", bad, "--trust", pub)
    out = tmp_path / "failed.html"
    r = ob("report", bad, "--trust", pub, "--out", out)
    assert v.rc == r.rc == 5, (v, r)
    assert "config/app.yaml does not match its SHA256SUMS line" in r.err and str(out) in r.err
    first = _first_line(_print(out))
    assert first.startswith("FAILED (exit 5): config/app.yaml does not match its SHA256SUMS")
    # signed by a key not trusted: exit 4, and the page says so first
    other = ob("report", archive, "--trust", keydir / "other" / "bundle.pub", "--out", tmp_path / "untrusted.html")
    assert other.rc == 4
    assert _first_line(_print(tmp_path / "untrusted.html")).startswith("FAILED (exit 4):")


def test_the_report_of_a_kit(ob, keydir, tmp_path, bundle):
    archive, built = bundle
    pub = keydir / "ed" / "bundle.pub"
    kit = tmp_path / "kit"
    assert ob("install", archive, "--kit", kit, "--trust", pub).rc == 0
    out = tmp_path / "kit.html"
    r = ob("report", "--kit", kit, "--trust", pub, "--out", out, "--json")
    assert r.rc == 0, r
    facts = r.json["result"]["report"]
    assert facts["subject"]["kind"] == "kit" and facts["subject"]["active_version"] == "1.0.0"
    assert facts["bundle"]["bundle_id"] == built["bundle_id"] and facts["provenance"]["verified"]
    assert facts["sboms"]["images"][0]["by_type"] == {"apk": 2}
    text = _print(out)
    assert _first_line(text).startswith("VERIFIED: tools 1.0.0 is signed by")
    # a damaged installed file: the integrity check fails, the page says so, exit 5
    victim = kit / "bundles" / "tools" / "1.0.0" / "config" / "app.yaml"
    victim.chmod(0o644)
    victim.write_text("listen: 6666\n")
    bad = ob("report", "tools", "--kit", kit, "--trust", pub, "--out", tmp_path / "damaged.html")
    assert bad.rc == 5, bad
    first = _first_line(_print(tmp_path / "damaged.html"))
    assert first.startswith("FAILED (exit 5): the installed tools 1.0.0 does not match its signed SHA256SUMS")


def test_report_needs_out_and_says_so(ob, keydir, bundle):
    archive, _ = bundle
    r = ob("report", archive, "--trust", keydir / "ed" / "bundle.pub")
    assert r.rc == 2 and "--out FILE" in r.err


def test_the_default_bundles_report_in_the_browser(ob, keydir, tmp_path, default_bundle):
    """The shipped default (images of four references, three charts, files, tenants), as the demo reports it:
    printed and screenshotted by Chromium; the PDF names every digest the bundle carries."""
    import struct

    out = tmp_path / "default.html"
    r = ob("report", default_bundle, "--trust", keydir / "ed" / "bundle.pub", "--out", out, "--json")
    assert r.rc == 0, r
    text = _print(out)
    assert _first_line(text).startswith("VERIFIED: telemetry-storage 2026.11.0 is signed by")
    squeezed = "".join(text.split())
    entries = {e.path: e.data for e in read_entries(default_bundle)}
    for line in entries["SHA256SUMS"].decode().splitlines():
        assert line[:64] in squeezed, line
    meta = json.loads(entries["bundle.json"])
    for image in meta["images"]:
        assert image["ref"] in squeezed
        for digest in [image["digest"]] + [m["digest"] for m in image["manifests"]]:
            assert digest in squeezed
    facts = r.json["result"]["report"]
    assert facts["provenance"]["verified"] and facts["provenance"]["statement_sha256"] in squeezed
    assert any(o["path"] == "sbom/bundle-content.cdx.json" for o in facts["sboms"]["others"])
    png = tmp_path / "default.png"
    browser.screenshot(out, png, width=1280, height=1600)
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1280, 1600)
