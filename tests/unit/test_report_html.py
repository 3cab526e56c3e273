"""The verification report's HTML page (installer/report/html.py, issue 14 point 3): every value shown, the verdict
first, hostile values inert and visibly escaped, nothing that loads or runs, partial reports rendered, same dict
same bytes."""

import html
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from installer.report.html import OPEN_MAX, render_html, verdict_line
from tests.helpers.reportsample import FINGERPRINT, digests, failed_report, full_report, hostile_report

# Every element and attribute the page may use: anything else (a <script>, an <img>, an on* handler, src=, href=)
# could only have come from a value.
TAGS = {"html", "head", "meta", "title", "style", "body", "section", "h1", "h2", "h3", "p", "table", "thead", "tbody",
        "tr", "th", "td", "span", "div", "br", "ul", "li", "pre", "details", "summary"}
ATTRIBUTES = {"lang", "charset", "http-equiv", "content", "name", "class", "id", "open"}
VOID = {"meta", "br"}


class Page(HTMLParser):
    """The page's elements, attributes and text (per element: title, h1, body), and whether its tags nest."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.texts, self.stack, self.errors = [], [], [], [], []
        self.title, self.h1, self.body = "", "", []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append("unclosed: %r" % self.stack)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes %r" % (tag, self.stack[-1:]))
        else:
            self.stack.pop()

    def handle_data(self, data):
        if "style" in self.stack:
            return
        if "title" in self.stack:
            self.title += data
        if "h1" in self.stack:
            self.h1 += data
        if "body" in self.stack and data.strip():
            self.body.append(data)
        self.texts.append(data)

    def handle_decl(self, decl):
        assert decl == "DOCTYPE html"


def _check_inert(out: str) -> Page:
    page = Page(out)
    assert page.errors == []
    assert set(page.tags) <= TAGS, set(page.tags) - TAGS
    assert {name for name, _ in page.attrs} <= ATTRIBUTES, {name for name, _ in page.attrs} - ATTRIBUTES
    assert not re.search(r"(?i)<\s*/?\s*(script|img|iframe|object|embed|link|a|form|base|svg|math)\b", out)
    assert not re.search(r"(?i)\b(src|href|srcset|action|formaction|on[a-z]+)\s*=\s*[\"'a-z]", _tags_only(out))
    assert "url(" not in out and "@import" not in out and "expression(" not in out
    for name, value in page.attrs:
        assert "//" not in (value or "") or name == "content" and "http" not in value, (name, value)
    # nothing a terminal or a bidi algorithm would act on reaches the page raw (tab and newline only)
    assert [c for c in out if not (c.isprintable() or c in "\n\t")] == []
    return page


def _tags_only(out: str) -> str:
    """The markup without its text: only what is between < and >."""
    return " ".join(re.findall(r"<[^>]*>", out))


def _leaves(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, "%s.%s" % (path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, "%s[%d]" % (path, i))
    else:
        yield path, value


# --- a full report ---------------------------------------------------------------------------------------------
def test_every_value_of_a_full_report_is_on_the_page():
    report = full_report()
    out = render_html(report)
    _check_inert(out)
    words = {".subject.kind": "<h2>Archive</h2>", ".sboms.images[0].origin": "built by this tool with syft 1.18.1",
             ".sboms.images[1].origin": "upstream attestation"}
    missing = []
    for path, value in _leaves(report):
        if path in words:
            shown = words[path]
        elif value is None or isinstance(value, bool):
            continue
        else:
            shown = html.escape(str(value), quote=True)
        if shown not in out:
            missing.append((path, value))
    assert missing == []
    # the keys of the counts too
    for entry in report["sboms"]["images"]:
        for name, count in list(entry["by_type"].items()) + list(entry["licenses"].items()):
            assert re.search(r"<td>%s</td><td class=\"num\">%d</td>" % (re.escape(name), count), out), name
    # and each command whole, newlines kept, in its own <pre>
    for command in report["commands"]:
        assert "<pre>%s</pre>" % html.escape(command["run"], quote=True) in out


def test_the_verdict_is_the_first_text_and_the_sections_follow_in_order():
    report = full_report()
    out = render_html(report)
    line = verdict_line(report)
    assert line == "VERIFIED: telemetry-storage 2026.11.0 is signed by %s and every file matches." % FINGERPRINT
    page = _check_inert(out)
    assert page.title == line and page.h1 == line
    # the first text of the body is the <h1>'s: nothing before it
    assert "".join(page.body)[:len(line)] == line
    assert re.match(r'<body>\s*<h1 class="verdict ok" id="verdict">VERIFIED: ', out[out.index("<body>"):])
    headings = re.findall(r"<h2>([^<(]+)", out)
    assert [h.strip() for h in headings] == ["Signer", "Bundle", "Archive", "Files", "Images", "SBOMs", "Provenance",
                                             "Warnings", "Check it yourself"]


def test_digests_stay_on_one_line_and_long_package_lists_start_closed():
    report = full_report()
    out = render_html(report)
    found = digests(report)
    assert FINGERPRINT in found and len(found) >= 20
    for digest in found:
        assert '<span class="d">%s</span>' % digest in out, digest
    assert len(report["sboms"]["images"][0]["packages"]) > OPEN_MAX >= len(report["sboms"]["images"][1]["packages"])
    assert out.count('<details class="long">') == 1 and out.count("<details open>") == 1
    assert "::details-content" in out and "@media print" in out and "size: A4" in out


def test_upstream_signatures_say_which_key_verified_which_digest():
    report = full_report()
    out = render_html(report)
    sig = report["images"][0]["upstream_signatures"][0]
    assert ('key <span class="d">%s</span><br>verified <span class="d">%s</span>' % (sig["key"], sig["digest"])) in out
    assert "none required" in out
    report["images"][1]["signed_by_required"] = True
    assert "required, but no verified signature is recorded" in render_html(report)


def test_same_dict_same_bytes_in_another_process():
    report = full_report()
    out = render_html(report)
    assert render_html(full_report()) == out
    code = ("import sys; from installer.report.html import render_html; from tests.helpers.reportsample import "
            "full_report; sys.stdout.buffer.write(render_html(full_report()).encode())")
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(REPO), LC_ALL="C", TZ="Pacific/Kiritimati")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, cwd=str(REPO), check=True)
    assert other.stdout == out.encode("utf-8")


# --- hostile values --------------------------------------------------------------------------------------------
def test_hostile_values_are_inert_and_shown_escaped():
    report = hostile_report()
    out = render_html(report)
    _check_inert(out)
    assert "<script" not in out.lower() and "<img" not in out.lower() and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&quot;&gt;&lt;img src=x onerror=alert(document.cookie)&gt;" in out
    assert "</pre><script>" not in out and "&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;" in out
    # control and bidi characters: visibly escaped, marked as such
    for escape in ("\\x1b", "\\x07", "\\u202e", "\\x00", "\\x85", "\\u2028", "\\u2029", "\\u2066", "\\u2069",
                   "\\u202a", "\\x7f", "\\u200b", "\\x0d"):
        assert '<span class="esc">%s</span>' % escape in out, escape
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    # a single-line value shows its newline and tab; a multi-line text keeps them
    assert 'a<span class="esc">\\x0a</span>b<span class="esc">\\x09</span>c&lt;script&gt;' in out
    assert "second line" in out and "x0a</span>second line" not in out


def test_the_hostile_verdict_line_is_one_printable_line():
    line = verdict_line(hostile_report())
    assert line.startswith("VERIFIED: x <script>")  # plain text for a terminal; the page escapes it
    assert "\x1b" not in line and "\u202e" not in line and "\n" not in line
    assert "\\x1b[1A" in line and "\\u202e" in line
    out = render_html(hostile_report())
    assert "<title>VERIFIED: x &lt;script&gt;" in out


# --- failed and partial reports --------------------------------------------------------------------------------
def test_a_failed_report_with_only_verdict_and_subject_starts_with_the_failure():
    report = failed_report()
    out = render_html(report)
    page = _check_inert(out)
    line = verdict_line(report)
    assert line == "FAILED (exit 4): SHA256SUMS.sig is not a valid signature by %s" % FINGERPRINT
    assert page.title == line and page.h1 == line and "".join(page.body)[:len(line)] == line
    assert re.match(r'<body>\s*<h1 class="verdict bad" id="verdict">FAILED \(exit 4\): ', out[out.index("<body>"):])
    assert html.escape(report["subject"]["path"]) in out and "SHA256SUMS.sig: signature check failed" in out
    # signer, bundle, files, images, sboms, provenance, warnings and commands
    assert out.count("(not in this report)") == 8
    assert "<h2>Archive</h2>" in out


def test_the_verdict_is_failed_unless_ok_is_true_with_exit_code_0():
    def line(verdict, **more):
        return verdict_line(dict({"verdict": verdict}, **more))

    assert line({"ok": True, "exit_code": 4, "reason": "bad key"}) == "FAILED (exit 4): bad key"
    assert line({"ok": True, "exit_code": 5}) == "FAILED (exit 5): the report says ok, but with exit code 5"
    assert line({"ok": "true", "exit_code": 0}).startswith("FAILED (exit 0)")
    assert line({"ok": 1}).startswith("FAILED")
    assert verdict_line({}) == "FAILED: the report carries no verdict"
    assert verdict_line(None) == "FAILED: the report carries no verdict"
    assert line({"ok": False, "exit_code": 3}) == "FAILED (exit 3): no reason given"
    assert line({"ok": False, "exit_code": 5, "problems": ["a: sha256 differs", "b"]}) == \
        "FAILED (exit 5): a: sha256 differs"
    assert line({"ok": False, "exit_code": 4, "headline": "FAILED: not signed"}) == "FAILED: not signed"
    assert line({"ok": True, "exit_code": 0}) == \
        "VERIFIED: the bundle is signed by a trusted key and every file matches."
    assert line({"ok": True, "exit_code": 0}, bundle={"name": "n", "version": "1"},
                signer={"fingerprint": "SHA256:f"}) == "VERIFIED: n 1 is signed by SHA256:f and every file matches."
    assert line({"ok": True, "exit_code": 0, "headline": "VERIFIED: as said"}) == "VERIFIED: as said"
    assert line({"ok": False, "exit_code": 4, "reason": "multi\nline\x1b"}) == "FAILED (exit 4): multi\\x0aline\\x1b"


def test_missing_and_odd_fields_render_as_a_dash():
    report = full_report()
    report["signer"] = {"fingerprint": None}
    report["bundle"] = {}
    report["subject"] = {"kind": "kit", "path": "/srv/kit", "active_version": None}
    report["files"] = [{"path": "x"}, "not a file", None]
    report["images"] = [{"ref": None, "platforms": "linux/amd64", "referrers": None}]
    report["sboms"] = {"made": False, "reason": "syft was not found", "images": [{"by_type": {"deb": "many", 3: 1}}]}
    report["provenance"] = {"present": False}
    report["warnings"] = []
    out = render_html(report)
    _check_inert(out)
    assert "<h2>Kit</h2>" in out and "/srv/kit" in out
    assert "<th>Fingerprint</th><td>\u2014</td>" in out and "<th>Name</th><td>\u2014</td>" in out
    assert "<th>Active version</th><td>\u2014</td>" in out
    assert "syft was not found" in out and "<h2>Warnings (0)</h2>" in out
    assert "<th>Present</th><td><span class=\"bad\">no</span></td>" in out


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=12)
KEYS = ["verdict", "generated", "subject", "bundle", "signer", "files", "images", "sboms", "provenance", "warnings",
        "commands"]


def _shaped(sample):
    """Values shaped like the sample's at each key, with random leaves (and random whole sections)."""
    def shape(value):
        if isinstance(value, dict):
            return st.fixed_dictionaries({k: shape(v) | JSON for k, v in list(value.items())[:6]})
        if isinstance(value, list):
            return st.lists(shape(value[0]) | JSON, max_size=2) if value else st.lists(JSON, max_size=2)
        return JSON
    return st.fixed_dictionaries({}, optional={k: shape(sample[k]) | JSON for k in KEYS})


@settings(max_examples=150, deadline=None)
@given(_shaped(full_report()))
def test_any_partial_or_malformed_report_renders(report):
    out = render_html(report)
    _check_inert(out)
    line = verdict_line(report)
    assert line.startswith(("VERIFIED", "FAILED")) and line.isprintable()
    assert render_html(report) == out


@settings(max_examples=50, deadline=None)
@given(JSON)
def test_a_report_that_is_not_even_a_dict_renders_as_failed(report):
    out = render_html(report)
    _check_inert(out)
    if not isinstance(report, dict) or not isinstance(report.get("verdict"), dict) or not report["verdict"]:
        assert verdict_line(report) == "FAILED: the report carries no verdict"
