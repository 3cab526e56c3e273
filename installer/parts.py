"""Split archives for removable media: `NAME.bundle.tar.zst.000, .001, …` and `NAME.bundle.tar.zst.parts.sha256`.

Parts are transport: trust still comes from the signed SHA256SUMS inside. The reader streams through
the parts in order, hashing each as it goes (no concatenated temporary copy), and stops at the first
part that is missing or does not match its line with exit 5 naming it.
"""

import hashlib
import os
import re
from typing import List, Optional, Tuple

from .errors import ContentMismatch, UsageError

PART_RE = re.compile(r"(.+\.bundle\.tar\.zst)\.([0-9]{3})")
_LINE_RE = re.compile(r"([0-9a-f]{64})  (\S+)")


def parts_list(base: str) -> str:
    return base + ".parts.sha256"


def find_parts(path: str) -> Optional[Tuple[str, List[Tuple[str, str]]]]:
    """For a first part (X.000) or a folder holding one set of parts: (base path, [(part path, sha256)])."""
    base = None
    if os.path.isdir(path):
        firsts = sorted(n for n in os.listdir(path) if n.endswith(".bundle.tar.zst.000"))
        if len(firsts) != 1:
            raise UsageError("%s holds %s; name the first part (….bundle.tar.zst.000) instead"
                             % (path, "no split bundle" if not firsts else "several split bundles"))
        base = os.path.join(path, firsts[0][:-4])
    else:
        match = PART_RE.fullmatch(path)
        if not match:
            return None
        if match.group(2) != "000":
            raise UsageError("name the first part (%s.000), not %s" % (match.group(1), path))
        base = match.group(1)
    listing = parts_list(base)
    try:
        with open(listing, encoding="ascii") as fh:
            lines = fh.read(1 << 20).splitlines()
    except FileNotFoundError:
        raise ContentMismatch("the parts list %s is missing; it is needed to check each part" % listing)
    except (OSError, UnicodeDecodeError):
        raise ContentMismatch("the parts list %s is unreadable" % listing)
    parts = []
    for number, line in enumerate(lines):
        match = _LINE_RE.fullmatch(line)
        expected = "%s.%03d" % (os.path.basename(base), number)
        if not match or match.group(2) != expected:
            raise ContentMismatch("line %d of %s is not '<sha256>  %s'" % (number + 1, listing, expected))
        parts.append((os.path.join(os.path.dirname(base), expected), match.group(1)))
    if not parts:
        raise ContentMismatch("the parts list %s is empty" % listing)
    return base, parts


class PartsReader:
    """read(n) across the parts, each hashed and checked when its last byte has been read."""

    def __init__(self, parts: List[Tuple[str, str]]) -> None:
        self._parts = list(parts)
        self._index = -1
        self._fh = None
        self._hash = None
        self._next_part()

    def _next_part(self) -> bool:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()
            path, expected = self._parts[self._index]
            if self._hash.hexdigest() != expected:
                raise ContentMismatch("part %s is damaged: its sha256 is %s, the parts list says %s"
                                      % (os.path.basename(path), self._hash.hexdigest(), expected))
        self._index += 1
        if self._index >= len(self._parts):
            return False
        path = self._parts[self._index][0]
        try:
            self._fh = open(path, "rb", buffering=1 << 20)
        except FileNotFoundError:
            raise ContentMismatch("part %s is missing" % os.path.basename(path))
        self._hash = hashlib.sha256()
        return True

    def read(self, n: int = -1) -> bytes:
        while self._fh is not None:
            data = self._fh.read(n if n and n > 0 else 1 << 20)
            if data:
                self._hash.update(data)
                return data
            if not self._next_part():
                break
        return b""

    def blame(self) -> None:
        """After a decoding failure: finish hashing the current part; a damaged part is the real error."""
        if self._fh is None:
            return
        while True:
            data = self._fh.read(1 << 20)
            if not data:
                break
            self._hash.update(data)
        path, expected = self._parts[self._index]
        if self._hash.hexdigest() != expected:
            raise ContentMismatch("part %s is damaged: its sha256 is %s, the parts list says %s"
                                  % (os.path.basename(path), self._hash.hexdigest(), expected))

    def fileno(self) -> int:  # for callers that size their progress by the file
        return self._fh.fileno() if self._fh else -1

    def total_size(self) -> int:
        return sum(os.path.getsize(p) for p, _ in self._parts if os.path.exists(p))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
