"""The HTML verification report in the real browser (issue 14, point 4): Debian's headless Chromium, without
network, prints the page to PDF and screenshots it; the PDF read back with pdftotext says the verdict first and
carries the fingerprint and every digest whole, the screenshot is the page in its verdict's colour."""

import os
import re
import struct
import zlib

import pytest

from installer.report.html import render_html, verdict_line
from tests.helpers import browser
from tests.helpers.reportsample import FINGERPRINT, SCRIPT, digests, failed_report, full_report, hostile_report

WIDTH, HEIGHT = 1280, 2000


class Rendered:
    def __init__(self, report, folder, name):
        self.report = report
        self.html = folder / (name + ".html")
        self.html.write_bytes(render_html(report).encode("utf-8"))
        self.pdf, self.png = folder / (name + ".pdf"), folder / (name + ".png")
        browser.print_pdf(self.html, self.pdf)
        browser.screenshot(self.html, self.png, width=WIDTH, height=HEIGHT)
        self.text = browser.pdf_text(self.pdf)
        self.info = browser.pdf_info(self.pdf)


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    return {"full": Rendered(full_report(), folder, "full"), "failed": Rendered(failed_report(), folder, "failed"),
            "hostile": Rendered(hostile_report(), folder, "hostile")}


def _first_paragraph(text: str):
    """The first non-empty line, and the lines up to the first empty one (the verdict, wrapped), joined."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip())
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line.strip())
    return block[0], " ".join(block)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def test_the_browser_runs_without_network():
    browser.chromium()
    if os.geteuid() == 0:
        assert browser.network_denied(), "as root, chromium runs under `unshare -n`"


def test_the_printed_report_starts_with_the_verdict(printed):
    full = printed["full"]
    line = verdict_line(full.report)
    first, paragraph = _first_paragraph(full.text)
    assert first.startswith("VERIFIED: telemetry-storage 2026.11.0 is signed by")
    # the sentence may wrap, but only between words: nothing else comes first, nothing is cut
    assert _squeeze(paragraph) == _squeeze(line)
    assert FINGERPRINT in paragraph


def test_the_pdf_carries_the_fingerprint_and_every_digest_whole(printed):
    full = printed["full"]
    found = digests(full.report)
    assert FINGERPRINT in found and len(found) >= 20
    missing = [d for d in found if d not in full.text]
    assert missing == []
    # and the bare hex of each, on one line (pdftotext -layout keeps a line a line)
    lines = full.text.splitlines()
    for digest in found:
        hexpart = digest.rpartition(":")[2]
        assert any(hexpart in line for line in lines), digest


def test_the_pdf_carries_every_value_a_reviewer_files(printed):
    full = printed["full"]
    report, text = full.report, full.text
    flat = " ".join(text.split())
    for value in (report["bundle"]["name"], report["bundle"]["version"], report["signer"]["algorithm"],
                  report["signer"]["key_file"], report["signer"]["not_after"], report["generated"]["time"],
                  report["provenance"]["builder_id"], report["sboms"]["tool"], "none required",
                  "upstream attestation", "built by this tool with syft 1.18.1", "Check it yourself"):
        assert value in flat, value
    # every package, also of the long list that starts closed on screen: the print rule opens it
    for entry in report["sboms"]["images"]:
        for package in entry["packages"]:
            assert package["purl"] in flat, package["purl"]
    for command in report["commands"]:
        for command_line in command["run"].splitlines():
            assert " ".join(command_line.split()) in flat, command_line


def test_the_pdf_is_a4_and_a_sane_number_of_pages(printed):
    for name, expected in (("full", (2, 12)), ("failed", (1, 2))):
        info = printed[name].info
        assert expected[0] <= int(info["Pages"]) <= expected[1], (name, info["Pages"])
        width, height = (float(x) for x in re.match(r"([\d.]+) x ([\d.]+) pts", info["Page size"]).groups())
        assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2, info["Page size"]  # A4 in points
        assert printed[name].text.count("\f") == int(info["Pages"])


def test_a_failed_report_prints_failed_and_the_reason_first(printed):
    failed = printed["failed"]
    line = verdict_line(failed.report)
    first, paragraph = _first_paragraph(failed.text)
    assert first.startswith("FAILED (exit 4): SHA256SUMS.sig is not a valid signature")
    assert _squeeze(paragraph) == _squeeze(line) and FINGERPRINT in paragraph
    assert failed.report["subject"]["path"] in failed.text
    assert "(not in this report)" in failed.text


def test_hostile_values_print_as_visible_text(printed):
    """Markup in a value is printed as the characters it is (it did not become an element), and control and bidi
    characters as their escapes."""
    hostile = printed["hostile"]
    first, paragraph = _first_paragraph(hostile.text)
    assert first.startswith("VERIFIED: x <script>alert(1)</script>")
    assert _squeeze(paragraph) == _squeeze(verdict_line(hostile.report))
    flat = " ".join(hostile.text.split())
    assert "docker.io/" + SCRIPT in flat
    assert '"><img src=x onerror=alert(document.cookie)>' in flat
    for escape in ("\\x1b[1A\\x1b[2K\\x1b]0;owned\\x07", "evil\\u202egnp.exe", "echo '</pre><script>x</script>'"):
        assert escape in flat, escape
    assert "\u202e" not in hostile.text and "\x1b" not in hostile.text


# --- the screenshot ----------------------------------------------------------------------------------------------
def _png(path):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
        if y >= 160:  # the verdict box is near the top: enough rows decoded
            break
    return width, height, rows


@pytest.mark.parametrize("name, background", [("full", (0xE3, 0xF6, 0xE7)), ("failed", (0xFD, 0xE5, 0xE5))])
def test_the_screenshot_is_the_page_in_its_verdicts_colour(printed, name, background):
    width, height, rows = _png(printed[name].png)
    assert (width, height) == (WIDTH, HEIGHT)
    box = sum(1 for row in rows for pixel in row if pixel == background)
    assert box > 20000, "the verdict's %s box is missing at the top of the page (%d pixels)" % (name, box)
    other = (0xFD, 0xE5, 0xE5) if name == "full" else (0xE3, 0xF6, 0xE7)
    assert sum(1 for row in rows for pixel in row if pixel == other) == 0
