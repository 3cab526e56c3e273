"""SHA256SUMS: GNU coreutils format, two spaces, sorted by path in C order.

Parsing is strict: the same bytes a reviewer feeds to ``sha256sum -c --strict`` are the bytes
whose signature we check, so nothing here may be lenient where coreutils is not.
"""

import hashlib
import re
from typing import Dict, List

from installer.errors import BadValue, InvalidInput, UnsafeMember
from installer.format.paths import c_sorted, case_duplicates, path_problem

SUMS_NAME = "SHA256SUMS"
SIG_NAME = "SHA256SUMS.sig"
META_NAME = "bundle.json"
DELTA_NAME = "DELTA.json"

MAX_SUMS_BYTES = 64 * 1024 * 1024
MAX_SIG_BYTES = 1024

# All used with fullmatch: `$` would also match before a trailing newline.
HEX64_RE = re.compile(r"[0-9a-f]{64}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_LINE_RE = re.compile(r"([0-9a-f]{64})  (\S.*)")


def format_sums(entries: Dict[str, str]) -> bytes:
    """Serialise {path: hex sha256} to coreutils two-space lines in C order."""
    lines = []
    for path in c_sorted(entries):
        digest = entries[path]
        if not HEX64_RE.fullmatch(digest):
            raise BadValue("%s: %r is not a sha256 digest (64 lowercase hex)" % (path, digest))
        lines.append("%s  %s\n" % (digest, path))
    return "".join(lines).encode("ascii")


def parse_sums(data: bytes) -> Dict[str, str]:
    """Parse SHA256SUMS bytes into an ordered {path: hex}; refuse anything coreutils-ambiguous."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidInput("SHA256SUMS is not ASCII text") from exc
    if not text.endswith("\n"):
        raise InvalidInput("SHA256SUMS does not end with a newline")
    entries: Dict[str, str] = {}
    problems: List[str] = []
    unsafe: List[str] = []
    for number, line in enumerate(text[:-1].split("\n"), 1):
        match = _LINE_RE.fullmatch(line)
        if not match:
            problems.append("line %d is not '<sha256>  <path>'" % number)
            continue
        digest, path = match.groups()
        why = path_problem(path)
        if why:
            unsafe.append("line %d: %s" % (number, why))
        elif path in entries:
            unsafe.append("line %d: %s is listed twice" % (number, path))
        else:
            entries[path] = digest
    unsafe.extend(case_duplicates(entries))
    if unsafe:
        raise UnsafeMember("SHA256SUMS lists unsafe paths", unsafe)
    if problems:
        raise InvalidInput("SHA256SUMS is malformed", problems)
    if list(entries) != c_sorted(entries):
        raise InvalidInput("SHA256SUMS is not sorted by path in C order")
    return entries


def bundle_id(sums_bytes: bytes) -> str:
    """sha256 of SHA256SUMS without its DELTA.json line: a version and its deltas share it."""
    kept = [ln for ln in sums_bytes.splitlines(keepends=True) if not ln.endswith(b"  " + DELTA_NAME.encode() + b"\n")]
    return hashlib.sha256(b"".join(kept)).hexdigest()
