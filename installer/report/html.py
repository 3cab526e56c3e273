"""The verification report as one self-contained HTML page, for a reviewer who reads it, prints it and files it.

The page is one HTML5 document in UTF-8: an inline ``<style>`` and nothing else. No script, no image, no font,
no link, no ``src=`` or ``href=`` attribute at all, so opening it makes no request; a Content-Security-Policy
``<meta>`` (``default-src 'none'``, inline style only) says the same to the browser, in case a value ever got
through the escaping. Same dict, same bytes: the renderer reads no clock, no locale and no environment, lists
are shown in the order given and counts (by type, by license) by count, then name.

Order: the verdict first, in words, as the first text of the page (``verdict_line``: "VERIFIED: …" on green,
"FAILED (exit N): reason" on red, the word itself so that a black-and-white print says it too), then the signer,
the bundle, the archive or the kit, every file, every image, the SBOMs, the provenance, the warnings and "Check it
yourself" (the by-hand commands, each in a ``<pre>``). A section the report does not carry is shown as "— (not in
this report)", never left out: a failed verify may carry only the verdict and the archive, and the reviewer
should see what was not checked.

Text. Every value goes through ``html.escape(quote=True)``. Before that, every character a reader could be fooled
by is shown escaped the way ``installer.textsafe.printable`` spells it (``\\x1b``, ``\\u202e``), inside a
``<span class="esc">`` so that an escaped control character stands out from a name that merely contains a
backslash: C0 and C1 controls, DEL, U+2028/U+2029, the bidi embeddings, overrides and isolates
(U+202A-U+202E, U+2066-U+2069), zero-width and other format characters, and every other character
``str.isprintable`` refuses. In single-line values (names, paths, references, digests) that includes newline and
tab; only the multi-line texts (reason, problems, warnings, commands) keep ``\\n`` and ``\\t``. A value that is
missing, ``None`` or of an unexpected shape is shown as "—"; the renderer never raises on a partial or
malformed report.

Print (``@media print``): A4, 9 pt text, colours kept (``print-color-adjust: exact``), no row, signature or
command split across pages, table headers repeated. Every 64-hex digest is set in a small monospace font that
never wraps (``white-space: nowrap``), and the layout gives each digest its own line or cell, so a printed digest
is one unbroken string (``pdftotext`` reads it back whole). The packages of an SBOM are in a ``<details>`` table:
open on screen when there are at most ``OPEN_MAX`` packages, closed (class ``long``) above that. Without script
a closed ``<details>`` cannot be opened for printing in every browser, so the print copy relies on two things:
the counts by type and by license are outside the ``<details>`` and always print, and a print rule shows the
contents of every ``<details>`` where the browser supports ``::details-content`` (Chromium does: the browser
test prints with Debian's Chromium and finds every package in the PDF). Elsewhere a closed list prints as its
summary line, after the counts.

The input (``report``) is a plain dict, as JSON would carry it; every key is optional:

    {
     "verdict": {"ok": bool, "exit_code": int, "headline": str, "reason": str|None, "problems": [str]},
     "generated": {"tool": "offline-bundle 1.2.3", "time": "2026-12-02T10:00:00Z"},
     "subject": {"kind": "archive"|"kit", "path": str, "sha256": str|None, "size": int|None,
                 "parts": [{"path","sha256"}], "active_version": str|None},
     "bundle": {"name","version","bundle_id","created","tool"} | None,
     "signer": {"fingerprint","algorithm","key_file","names":[globs],"not_after": str|None,"role": str|None} | None,
     "files": [{"path","size","sha256"}],
     "images": [{"ref","digest","index_digest","platforms":[str],
                 "upstream_signatures":[{"key": fingerprint, "digest": str}],"signed_by_required": bool,
                 "referrers":[{"kind","digest","artifact_type"}]}],
     "sboms": {"made": bool, "reason": str|None, "tool": str|None,
               "images": [{"ref","digest","platform","origin": "syft"|"upstream","files":[str],
                           "packages":[{"name","version","type","license","purl"}],
                           "by_type":{str:int},"licenses":{str:int}}],
               "others": [{"path","kind","sha256"}]} | None,
     "provenance": {"present": bool, "verified": bool, "reason": str|None, "signer": str|None,
                    "builder_id","build_type","started","finished","manifest_sha256","lock_sha256",
                    "mirrors":[str],"tool","subjects": int,"statement_sha256"} | None,
     "warnings": [str],
     "commands": [{"say": str, "run": str}]
    }

The verdict: the page says VERIFIED only when ``verdict.ok`` is ``True`` and ``verdict.exit_code`` is 0 or
absent; anything else (no verdict at all, ``ok`` not a boolean, ``ok`` with a non-zero exit code) is FAILED.
``headline`` is the sentence after the leading word ("example-stack 2026.11.0 is signed by SHA256:… and every
file matches."); a headline that already starts with VERIFIED or FAILED is taken as the whole line. Without a
headline, a verified line is composed from the bundle and the signer; a failed line is ``FAILED (exit N): `` and
the reason (else the headline, else the first problem).
"""

import html
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..textsafe import printable

__all__ = ["render_html", "verdict_line", "OPEN_MAX"]

# SBOM package tables with at most this many rows start open; longer ones start closed (class "long").
OPEN_MAX = 40

DASH = "\u2014"
_NOT_HERE = DASH + " (not in this report)"

# Characters shown escaped in a single-line value: everything but printable ASCII is looked at one at a time.
_SUSPECT_LINE = re.compile(r"[^\x20-\x7e]")
# In a multi-line text, newline and tab stay.
_SUSPECT_TEXT = re.compile(r"[^\x20-\x7e\n\t]")
# A digest or fingerprint inside free text (the verdict sentence): kept on one line.
_HEX_TOKEN = re.compile(r"(?:[A-Za-z0-9]+:)?[0-9a-fA-F]{32,}")

_STYLE = """
:root { color-scheme: light; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 14px; line-height: 1.35;
       color: #111; background: #fff; max-width: 1100px; margin: 1.5em auto; padding: 0 1em; }
h1.verdict { font-size: 1.5em; margin: 0 0 0.4em 0; padding: 0.5em 0.7em; border: 3px solid; border-radius: 4px;
             overflow-wrap: break-word; }
h1.verdict.ok { color: #0b4d1c; background: #e3f6e7; border-color: #1e7b34; }
h1.verdict.bad { color: #7a0c0c; background: #fde5e5; border-color: #b3261e; }
h2 { font-size: 1.2em; margin: 1.3em 0 0.4em 0; padding-bottom: 0.15em; border-bottom: 1px solid #888; }
h3 { font-size: 1.05em; margin: 1em 0 0.3em 0; overflow-wrap: anywhere; }
p { margin: 0.3em 0; }
table { border-collapse: collapse; width: 100%; margin: 0.3em 0 0.6em 0; }
th, td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
table.kv th { width: 11em; }
table.counts { width: auto; min-width: 40%; }
td { overflow-wrap: anywhere; }
td.num, th.num { text-align: right; white-space: nowrap; }
.d, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 0.86em; }
.d { white-space: nowrap; overflow-wrap: normal; word-break: keep-all; }
.esc { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; color: #7a0c0c; background: #fde5e5;
       border: 1px dotted #b3261e; }
.bad { color: #7a0c0c; font-weight: 600; }
.good { color: #0b4d1c; font-weight: 600; }
.none { color: #555; }
.txt { white-space: pre-wrap; overflow-wrap: anywhere; }
pre { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 0.86em; background: #f6f6f6;
      border: 1px solid #ccc; padding: 0.4em 0.6em; white-space: pre-wrap; overflow-wrap: anywhere;
      margin: 0.2em 0 0.8em 0; }
ul { margin: 0.2em 0; padding-left: 1.4em; }
.sig, .ref { margin: 0.15em 0; }
details { margin: 0.3em 0; }
summary { font-weight: 600; }
.image, .sbom { break-inside: auto; }
.gen { color: #333; }
@page { size: A4; margin: 14mm 12mm 14mm 12mm; }
@media print {
  body { font-size: 9pt; max-width: none; margin: 0; padding: 0; }
  h1.verdict { font-size: 12pt; }
  h2 { font-size: 11pt; break-after: avoid; page-break-after: avoid; }
  h3 { font-size: 10pt; break-after: avoid; page-break-after: avoid; }
  .d, .mono, pre { font-size: 7.5pt; }
  tr, .sig, .ref, pre, li, .cmd { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  details::details-content { content-visibility: visible; display: block; }
  details > summary { list-style: none; }
}
"""


# --- values ---------------------------------------------------------------------------------------------------
def _escaped(text: str, suspect: "re.Pattern[str]") -> str:
    """``text`` as HTML: escaped, and every character ``suspect`` picks that is not printable as a visible escape."""
    out: List[str] = []
    last = 0
    for match in suspect.finditer(text):
        char = match.group(0)
        if char.isprintable():
            continue
        out.append(html.escape(text[last:match.start()], quote=True))
        out.append('<span class="esc">%s</span>' % html.escape(printable(char), quote=True))
        last = match.end()
    out.append(html.escape(text[last:], quote=True))
    return "".join(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plain(value: Any) -> str:
    """A scalar as plain (not yet escaped) text; None and containers as the empty string."""
    if value is None or isinstance(value, (dict, list, tuple)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return ""


def _t(value: Any) -> str:
    """A single-line value as HTML; missing as —."""
    text = _plain(value)
    if text == "":
        return DASH
    return _escaped(text, _SUSPECT_LINE)


def _txt(value: Any) -> str:
    """A multi-line text as HTML (newline and tab kept); missing as —."""
    text = _plain(value)
    if text == "":
        return DASH
    return _escaped(text, _SUSPECT_TEXT)


def _d(value: Any) -> str:
    """A digest, fingerprint or other hash: one unbroken monospace line."""
    text = _plain(value)
    if text == "":
        return DASH
    return '<span class="d">%s</span>' % _escaped(text, _SUSPECT_LINE)


def _m(value: Any) -> str:
    """A path or reference: monospace, may wrap anywhere."""
    text = _plain(value)
    if text == "":
        return DASH
    return '<span class="mono">%s</span>' % _escaped(text, _SUSPECT_LINE)


def _size(value: Any) -> str:
    if not _is_int(value):
        return _t(value)
    if value < 1024:
        return "%d bytes" % value
    amount, unit = value / 1024.0, 0
    units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
    while amount >= 1024.0 and unit < len(units) - 1:
        amount, unit = amount / 1024.0, unit + 1
    return "%d bytes (%.1f %s)" % (value, amount, units[unit])


def _yes_no(value: Any) -> str:
    if value is True:
        return '<span class="good">yes</span>'
    if value is False:
        return '<span class="bad">no</span>'
    return _t(value)


def _map(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, dict) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else []


def _strings(value: Any) -> List[str]:
    """A list of scalars as escaped texts; a lone string is a list of one."""
    if isinstance(value, str):
        value = [value]
    return [_t(item) for item in _seq(value) if _plain(item) != ""]


def _joined(value: Any, sep: str = ", ", render: Any = None) -> str:
    items = _strings(value) if render is None else [render(item) for item in _seq(value) if _plain(item) != ""]
    return sep.join(items) if items else DASH


def _count(value: Any) -> int:
    return value if _is_int(value) else 0


def _counted(value: Any) -> List[Tuple[str, Any]]:
    """A {name: count} map as (name, count) pairs: most first, then by name."""
    pairs = [(_plain(k), v) for k, v in _map(value).items()]
    return sorted(pairs, key=lambda kv: (-_count(kv[1]), kv[0]))


# --- the verdict ----------------------------------------------------------------------------------------------
def _verified(report: Any) -> bool:
    verdict = _map(_map(report).get("verdict"))
    code = verdict.get("exit_code")
    return verdict.get("ok") is True and (code is None or (_is_int(code) and code == 0))


def _verdict_words(report: Any) -> str:
    """The verdict sentence, not yet escaped."""
    rep = _map(report)
    verdict = _map(rep.get("verdict"))
    headline = _plain(verdict.get("headline")).strip()
    if _verified(rep):
        if headline.startswith("VERIFIED"):
            return headline
        if headline:
            return "VERIFIED: " + headline
        bundle, signer = _map(rep.get("bundle")), _map(rep.get("signer"))
        what = " ".join(x for x in (_plain(bundle.get("name")), _plain(bundle.get("version"))) if x)
        what = what or _plain(_map(rep.get("subject")).get("path")) or "the bundle"
        fingerprint = _plain(signer.get("fingerprint")) or "a trusted key"
        return "VERIFIED: %s is signed by %s and every file matches." % (what, fingerprint)
    code = verdict.get("exit_code")
    if headline.startswith("FAILED") and not _plain(verdict.get("reason")):
        return headline
    problems = [_plain(p) for p in _seq(verdict.get("problems")) if _plain(p)]
    reason = _plain(verdict.get("reason")).strip() or headline or (problems[0] if problems else "")
    if not verdict:
        reason = reason or "the report carries no verdict"
    elif verdict.get("ok") is True:
        reason = reason or "the report says ok, but with exit code %s" % _plain(code)
    reason = reason or "no reason given"
    if isinstance(code, int) and not isinstance(code, bool):
        return "FAILED (exit %d): %s" % (code, reason)
    return "FAILED: %s" % reason


def verdict_line(report: Dict[str, Any]) -> str:
    """The one-sentence verdict that heads the page, on one line, every non-printable character escaped."""
    return printable(_verdict_words(report))


def _verdict_html(words: str) -> str:
    """The verdict sentence as HTML: digests and fingerprints in it kept on one line."""
    out: List[str] = []
    last = 0
    for match in _HEX_TOKEN.finditer(words):
        out.append(_escaped(words[last:match.start()], _SUSPECT_LINE))
        out.append('<span class="d">%s</span>' % html.escape(match.group(0), quote=True))
        last = match.end()
    out.append(_escaped(words[last:], _SUSPECT_LINE))
    return "".join(out)


# --- building blocks ------------------------------------------------------------------------------------------
def _kv(rows: Sequence[Tuple[str, str]]) -> str:
    """A two-column table of label and (already rendered) value."""
    body = "".join("<tr><th>%s</th><td>%s</td></tr>\n" % (html.escape(label), value) for label, value in rows)
    return '<table class="kv">\n%s</table>\n' % body


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (), cls: str = "") -> str:
    cells = "".join('<th%s>%s</th>' % (' class="num"' if i in numeric else "", html.escape(h))
                    for i, h in enumerate(head))
    lines = ["<table%s>\n<thead><tr>%s</tr></thead>\n<tbody>\n" % (' class="%s"' % cls if cls else "", cells)]
    for row in rows:
        lines.append("<tr>%s</tr>\n" % "".join('<td%s>%s</td>' % (' class="num"' if i in numeric else "", cell)
                                                for i, cell in enumerate(row)))
    lines.append("</tbody>\n</table>\n")
    return "".join(lines)


def _section(title: str, body: str, count: Optional[int] = None) -> str:
    heading = html.escape(title) + ("" if count is None else " (%d)" % count)
    return '<section>\n<h2>%s</h2>\n%s</section>\n' % (heading, body)


def _missing() -> str:
    return '<p class="none">%s</p>\n' % html.escape(_NOT_HERE)


# --- the sections ---------------------------------------------------------------------------------------------
def _verdict_section(report: Mapping[str, Any], words: str) -> str:
    ok = _verified(report)
    verdict = _map(report.get("verdict"))
    generated = _map(report.get("generated"))
    out = ['<h1 class="verdict %s" id="verdict">%s</h1>\n' % ("ok" if ok else "bad", _verdict_html(words))]
    rows = [("Result", '<span class="good">verified</span>' if ok else '<span class="bad">failed</span>'),
            ("Exit code", _t(verdict.get("exit_code")))]
    if not ok:
        rows.append(("Reason", '<span class="txt">%s</span>' % _txt(verdict.get("reason"))))
    problems = [p for p in _seq(verdict.get("problems")) if _plain(p) != ""]
    if problems:
        items = "".join('<li class="txt">%s</li>' % _txt(p) for p in problems)
        rows.append(("Problems (%d)" % len(problems), "<ul>%s</ul>" % items))
    rows += [("Report made by", _t(generated.get("tool"))), ("Report made at", _t(generated.get("time")))]
    out.append(_kv(rows))
    return "".join(out)


def _signer_section(report: Mapping[str, Any]) -> str:
    signer = report.get("signer")
    if not isinstance(signer, dict):
        return _section("Signer", _missing())
    rows = [("Fingerprint", _d(signer.get("fingerprint"))),
            ("Algorithm", _t(signer.get("algorithm"))),
            ("Key file", _m(signer.get("key_file"))),
            ("Bundle names (scope)", _joined(signer.get("names"), render=_m)),
            ("Not after (expiry)", _t(signer.get("not_after")))]
    if "role" in signer:
        rows.append(("Role", _t(signer.get("role"))))
    return _section("Signer", _kv(rows))


def _bundle_section(report: Mapping[str, Any]) -> str:
    bundle = report.get("bundle")
    if not isinstance(bundle, dict):
        return _section("Bundle", _missing())
    rows = [("Name", _t(bundle.get("name"))), ("Version", _t(bundle.get("version"))),
            ("Bundle ID", _d(bundle.get("bundle_id"))), ("Created", _t(bundle.get("created"))),
            ("Built by", _t(bundle.get("tool")))]
    return _section("Bundle", _kv(rows))


def _subject_section(report: Mapping[str, Any]) -> str:
    subject = report.get("subject")
    if not isinstance(subject, dict):
        return _section("What was checked", _missing())
    kind = subject.get("kind")
    rows = [("Path", _m(subject.get("path")))]
    if kind == "kit":
        title = "Kit"
        rows.append(("Active version", _t(subject.get("active_version"))))
    else:
        title = "Archive" if kind == "archive" else "What was checked"
        if kind != "archive":
            rows.insert(0, ("Kind", _t(kind)))
        rows += [("SHA-256", _d(subject.get("sha256"))), ("Size", _size(subject.get("size")))]
        if "active_version" in subject and kind != "archive":
            rows.append(("Active version", _t(subject.get("active_version"))))
    body = _kv(rows)
    parts = [p for p in _seq(subject.get("parts")) if isinstance(p, dict)]
    if parts:
        body += "<h3>Parts (%d)</h3>\n" % len(parts)
        body += _table(["Path", "SHA-256"], [[_m(p.get("path")), _d(p.get("sha256"))] for p in parts])
    return _section(title, body)


def _files_section(report: Mapping[str, Any]) -> str:
    if "files" not in report:
        return _section("Files", _missing())
    files = [f for f in _seq(report.get("files")) if isinstance(f, dict)]
    if not files:
        return _section("Files", '<p class="none">%s (none listed)</p>\n' % DASH, 0)
    rows = [[_m(f.get("path")), _t(f.get("size")), _d(f.get("sha256"))] for f in files]
    return _section("Files", _table(["Path", "Bytes", "SHA-256"], rows, numeric=[1]), len(files))


def _signatures(image: Mapping[str, Any]) -> str:
    sigs = [s for s in _seq(image.get("upstream_signatures")) if isinstance(s, dict)]
    required = image.get("signed_by_required")
    if sigs:
        return "".join('<div class="sig">key %s<br>verified %s</div>' % (_d(s.get("key")), _d(s.get("digest")))
                       for s in sigs)
    if required is True:
        return '<span class="bad">required, but no verified signature is recorded</span>'
    if required is False or "signed_by_required" not in image:
        return "none required"
    return _t(required)


def _referrers(image: Mapping[str, Any]) -> str:
    refs = [r for r in _seq(image.get("referrers")) if isinstance(r, dict)]
    if not refs:
        return DASH if "referrers" not in image else "none"
    return "".join('<div class="ref">%s &middot; %s<br>%s</div>'
                   % (_t(r.get("kind")), _m(r.get("artifact_type")), _d(r.get("digest"))) for r in refs)


def _images_section(report: Mapping[str, Any]) -> str:
    if "images" not in report:
        return _section("Images", _missing())
    images = [i for i in _seq(report.get("images")) if isinstance(i, dict)]
    if not images:
        return _section("Images", '<p class="none">%s (no images)</p>\n' % DASH, 0)
    out = []
    for n, image in enumerate(images, 1):
        rows = [("Manifest digest", _d(image.get("digest"))),
                ("Index digest", _d(image.get("index_digest"))),
                ("Platforms", _joined(image.get("platforms"))),
                ("Upstream signature", _signatures(image)),
                ("Carried referrers", _referrers(image))]
        out.append('<div class="image">\n<h3>%d. %s</h3>\n%s</div>\n' % (n, _m(image.get("ref")), _kv(rows)))
    return _section("Images", "".join(out), len(images))


def _origin(origin: Any, tool: Any) -> str:
    if origin == "syft":
        return "built by this tool with " + (_t(tool) if _plain(tool) else "syft")
    if origin == "upstream":
        return "upstream attestation"
    return _t(origin)


def _sbom_image(n: int, entry: Mapping[str, Any], tool: Any) -> str:
    packages = [p for p in _seq(entry.get("packages")) if isinstance(p, dict)]
    by_type, licenses = _counted(entry.get("by_type")), _counted(entry.get("licenses"))
    rows = [("Manifest digest", _d(entry.get("digest"))), ("Platform", _t(entry.get("platform"))),
            ("Origin", _origin(entry.get("origin"), tool)),
            ("Files", _joined(entry.get("files"), sep="<br>", render=_m)),
            ("Packages", str(len(packages)) if packages or "packages" in entry else DASH)]
    out = ['<div class="sbom">\n<h3>%d. %s</h3>\n%s' % (n, _m(entry.get("ref")), _kv(rows))]
    if by_type:
        out.append(_table(["Package type", "Count"], [[_t(k), _t(v)] for k, v in by_type], numeric=[1],
                          cls="counts"))
    if licenses:
        out.append(_table(["License", "Packages"], [[_t(k), _t(v)] for k, v in licenses], numeric=[1],
                          cls="counts"))
    if packages:
        long_list = len(packages) > OPEN_MAX
        table = _table(["Name", "Version", "Type", "License", "purl"],
                       [[_t(p.get("name")), _t(p.get("version")), _t(p.get("type")), _t(p.get("license")),
                         _m(p.get("purl"))] for p in packages])
        out.append('<details%s>\n<summary>The %d packages (name, version, type, license, purl)</summary>\n%s'
                   '</details>\n' % (' class="long"' if long_list else " open", len(packages), table))
    out.append("</div>\n")
    return "".join(out)


def _sboms_section(report: Mapping[str, Any]) -> str:
    sboms = report.get("sboms")
    if not isinstance(sboms, dict):
        return _section("SBOMs", _missing())
    made = sboms.get("made")
    rows = [("Made", _yes_no(made)), ("Tool", _t(sboms.get("tool")))]
    if made is not True or _plain(sboms.get("reason")):
        rows.append(("Reason", '<span class="txt">%s</span>' % _txt(sboms.get("reason"))))
    out = [_kv(rows)]
    entries = [e for e in _seq(sboms.get("images")) if isinstance(e, dict)]
    for n, entry in enumerate(entries, 1):
        out.append(_sbom_image(n, entry, sboms.get("tool")))
    others = [o for o in _seq(sboms.get("others")) if isinstance(o, dict)]
    if others:
        out.append("<h3>Other SBOMs (%d)</h3>\n" % len(others))
        out.append(_table(["Path", "Kind", "SHA-256"],
                          [[_m(o.get("path")), _t(o.get("kind")), _d(o.get("sha256"))] for o in others]))
    return _section("SBOMs", "".join(out))


def _provenance_section(report: Mapping[str, Any]) -> str:
    prov = report.get("provenance")
    if not isinstance(prov, dict):
        return _section("Provenance", _missing())
    rows = [("Present", _yes_no(prov.get("present"))), ("Verified", _yes_no(prov.get("verified")))]
    if prov.get("verified") is not True or _plain(prov.get("reason")):
        rows.append(("Reason", '<span class="txt">%s</span>' % _txt(prov.get("reason"))))
    rows += [("Signer", _d(prov.get("signer"))), ("Builder ID", _m(prov.get("builder_id"))),
             ("Build type", _m(prov.get("build_type"))), ("Started", _t(prov.get("started"))),
             ("Finished", _t(prov.get("finished"))), ("Manifest SHA-256", _d(prov.get("manifest_sha256"))),
             ("Lock SHA-256", _d(prov.get("lock_sha256"))),
             ("Mirrors", _joined(prov.get("mirrors"), sep="<br>", render=_m)), ("Tool", _t(prov.get("tool"))),
             ("Subjects", _t(prov.get("subjects"))), ("Statement SHA-256", _d(prov.get("statement_sha256")))]
    return _section("Provenance", _kv(rows))


def _warnings_section(report: Mapping[str, Any]) -> str:
    if "warnings" not in report:
        return _section("Warnings", _missing())
    warnings = [w for w in _seq(report.get("warnings")) if _plain(w) != ""]
    if not warnings:
        return _section("Warnings", '<p class="none">None.</p>\n', 0)
    items = "".join('<li class="txt">%s</li>\n' % _txt(w) for w in warnings)
    return _section("Warnings", "<ul>\n%s</ul>\n" % items, len(warnings))


def _commands_section(report: Mapping[str, Any]) -> str:
    commands = [c for c in _seq(report.get("commands")) if isinstance(c, dict)]
    if not commands:
        return _section("Check it yourself", _missing())
    out = []
    for command in commands:
        say = '<p class="txt">%s</p>\n' % _txt(command.get("say")) if _plain(command.get("say")) else ""
        out.append('<div class="cmd">\n%s<pre>%s</pre>\n</div>\n' % (say, _txt(command.get("run"))))
    return _section("Check it yourself", "".join(out))


def render_html(report: Dict[str, Any]) -> str:
    """The report as one self-contained HTML5 page (see the module's docstring); never raises on a partial report."""
    rep = _map(report)
    words = _verdict_words(rep)
    head = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
            'base-uri \'none\'; form-action \'none\'">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n' % (html.escape(printable(words)), _STYLE))
    body = [_verdict_section(rep, words), _signer_section(rep), _bundle_section(rep), _subject_section(rep),
            _files_section(rep), _images_section(rep), _sboms_section(rep), _provenance_section(rep),
            _warnings_section(rep), _commands_section(rep)]
    return head + "".join(body) + "</body>\n</html>\n"
