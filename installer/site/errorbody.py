"""What a registry says in the body of an error answer, for the one-line error and for the retry policy.

The OCI distribution spec's error body is ``{"errors": [{"code": "...", "message": "...", "detail": ...}]}``.
- ``said(body)``: the registry's own words, ``CODE: message`` per error (at most ``MAX_ERRORS``, then "and N
  more"), for the one-line error the user reads. A server may be hostile or broken: every character a terminal
  could act on is escaped (installer/textsafe.py) and the whole is cut to ``MAX_SAID`` characters.
- ``names_request_invalid(body)``: the answer is about the request itself, so sending it again cannot
  change it. Distribution 2.8 answers some of those with a 500, code UNKNOWN and message "unknown error": a
  repository name its storage cannot hold (a ':' in it; "filesystem: invalid path" in its log, a detail naming
  the storage ``Path`` and ``DriverName`` in the body), a name longer than 255 characters (a detail with the
  ``Name`` and the ``Reason``: ErrRepositoryNameInvalid), an invalid manifest, and so on.
Nothing here does I/O: the client (installer/site/registry.py) reads the body, capped at ``MAX_BODY``.
"""

import json
from typing import List, Tuple

from installer.textsafe import printable

MAX_BODY = 64 * 1024  # what is read of an error answer's body
MAX_ERRORS = 3        # errors shown; a body may list hundreds
MAX_TEXT = 160        # characters of one code or message
MAX_SAID = 400        # characters of all of it

# Codes that name the request as wrong, besides every *_INVALID of the distribution spec (NAME_INVALID,
# DIGEST_INVALID, MANIFEST_INVALID, TAG_INVALID, SIZE_INVALID, BLOB_UPLOAD_INVALID, RANGE_INVALID...).
INVALID_CODES = frozenset(("NAME_UNKNOWN", "MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNVERIFIED", "UNSUPPORTED"))


def errors(body: bytes) -> List[Tuple[str, str, object]]:
    """(code, message, detail) of each entry of ``errors``, as sent (not yet escaped); [] for any other body."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return []
    listed = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(listed, list):
        return []
    out = []
    for entry in listed:
        if isinstance(entry, dict):
            code, message = entry.get("code"), entry.get("message")
            out.append((code if isinstance(code, str) else "", message if isinstance(message, str) else "",
                        entry.get("detail")))
    return out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def said(body: bytes) -> str:
    """``CODE: message; CODE: message`` (escaped, capped), or "" when the body carries no registry error."""
    parts = []
    found = [(c, m) for c, m, _d in errors(body) if c or m]
    for code, message in found[:MAX_ERRORS]:
        code, message = _cut(printable(code), MAX_TEXT), _cut(printable(message), MAX_TEXT)
        parts.append("%s: %s" % (code, message) if code and message else code or message)
    if len(found) > MAX_ERRORS:
        parts.append("and %d more" % (len(found) - MAX_ERRORS))
    return _cut("; ".join(parts), MAX_SAID)


def _refused_name(detail: object) -> bool:
    """distribution's detail for a name it cannot take: its storage driver refusing the path (InvalidPathError:
    {"Path", "DriverName"}), or the name itself refused (ErrRepositoryNameInvalid: {"Name", "Reason"})."""
    if not isinstance(detail, dict):
        return False
    return (isinstance(detail.get("Path"), str) and "DriverName" in detail) or (
        isinstance(detail.get("Name"), str) and "Reason" in detail)


def names_request_invalid(body: bytes) -> bool:
    """True when the registry says the request itself is wrong (an invalid name, digest, manifest, path): an
    answer that another attempt cannot change, even when its status is a 500."""
    for code, message, detail in errors(body):
        if code.upper() in INVALID_CODES or code.upper().endswith("_INVALID") or "invalid" in message.lower():
            return True
        if _refused_name(detail):
            return True
    return False
