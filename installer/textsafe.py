"""Text for a terminal: every character a terminal could act on is shown escaped, never sent.

Names, media types, `fetched_from`, member paths and registry messages come from archives and
servers an attacker may control. Printed raw, `ESC[1A ESC[2K` erases the line above (the
UNVERIFIED warning), `\\r` overwrites the current one, an OSC sequence retitles the window and
U+202E reverses what follows. So every line of text output and every error goes through
``printable`` on its way out (installer/cli/main.py); JSON output does not need it (json.dumps escapes
every control and non-ASCII character as \\uXXXX, and the JSON strings keep the exact text).

Escaped: whatever ``str.isprintable`` rejects — C0 and C1 controls (ESC, CR, LF, TAB, BEL, CSI
U+009B...), DEL, and the Unicode categories Cc, Cf (bidi overrides and isolates, zero-width
characters), Cs (lone surrogates from undecodable bytes), Co, Cn, Zl, Zp and Zs other than the
plain space. Printable non-ASCII text (accents, CJK) stays as it is.
"""

import re

# Everything but printable ASCII is looked at one character at a time; printable ASCII is the common case.
_SUSPECT = re.compile(r"[^\x20-\x7e]")


def _escape(match: "re.Match[str]") -> str:
    char = match.group(0)
    if char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFF:
        return "\\x%02x" % code
    if code <= 0xFFFF:
        return "\\u%04x" % code
    return "\\U%08x" % code


def printable(text: object) -> str:
    """``text`` (or str() of it) with every non-printable character written as \\xNN, \\uNNNN or \\UNNNNNNNN."""
    return _SUSPECT.sub(_escape, text if isinstance(text, str) else str(text))
