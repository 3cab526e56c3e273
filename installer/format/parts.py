"""Split archives for removable media: `NAME.bundle.tar.zst.000, .001, …` and `NAME.bundle.tar.zst.parts.sha256`.

Parts are transport: trust still comes from the signed SHA256SUMS inside. The reader streams through
the parts in order, hashing each as it goes (no concatenated temporary copy), and stops at the first
part that is missing or does not match its line with exit 5 naming it.

The medium is not trusted either: the parts, their list and the `.sha256` sidecar are names we derive,
and on a hostile stick any of them may be a symbolic link (to /dev/zero), a FIFO nobody writes to, or a
device node. ``open_regular`` opens such a name without following a link and without blocking, refuses
anything but a regular file (exit 6, like a link or FIFO inside the archive), and callers read at most
the size fstat gave at open: a file that grows while we read it is not read past that.
"""

import hashlib
import os
import re
from typing import BinaryIO, List, Optional, Tuple, Type

from installer import fsutil
from installer.errors import BundleError, ContentMismatch, UnsafeMember, UsageError

PART_RE = re.compile(r"(.+\.bundle\.tar\.zst)\.([0-9]{3})")
_LINE_RE = re.compile(r"([0-9a-f]{64})  (\S+)")
MAX_PARTS_LIST_BYTES = 1 << 20  # 64 + 2 + ~60 bytes a line: thousands of parts, far beyond any medium


def open_regular(path: str, what: str, follow: bool = False) -> Tuple[BinaryIO, int]:
    """(binary file, size at open) for a regular file; never blocks, never opens a device (fsutil.open_regular).

    ``what`` names the file in messages ("part X.001"). ``follow`` is for the path the user typed,
    which may be their own symbolic link to an archive; names taken from the medium never follow one.
    Missing: FileNotFoundError (the caller knows what missing means). Not a regular file: UnsafeMember,
    or UsageError for the user's own path.
    """
    try:
        fd = fsutil.open_regular(path, follow=follow)
    except fsutil.PathRefused as exc:
        raise (UsageError if follow else UnsafeMember)("%s %s, not a regular file" % (what, exc.why)) from exc
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=1 << 20), os.fstat(fd).st_size


def read_capped(path: str, what: str, cap: int, too_big: Type[BundleError]) -> Optional[bytes]:
    """A small file derived from the medium (parts list, sidecar) within ``cap`` bytes, or None if missing."""
    try:
        fh, size = open_regular(path, what)
    except FileNotFoundError:
        return None
    with fh:
        if size > cap:
            raise too_big("%s is %d bytes, more than the %d it may be" % (what, size, cap))
        return fh.read(size)


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
        data = read_capped(listing, "the parts list %s" % listing, MAX_PARTS_LIST_BYTES, ContentMismatch)
        if data is None:
            raise ContentMismatch("the parts list %s is missing; it is needed to check each part" % listing)
        lines = data.decode("ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentMismatch("the parts list %s is unreadable" % listing) from exc
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
        self._fh: Optional[BinaryIO] = None
        self._hash = hashlib.sha256()  # each part's own, from when it is opened
        self._left = 0  # bytes of the current part still to read: its size when it was opened
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
            self._fh, self._left = open_regular(path, "part %s" % os.path.basename(path))
        except FileNotFoundError as exc:
            raise ContentMismatch("part %s is missing" % os.path.basename(path)) from exc
        self._hash = hashlib.sha256()
        return True

    def _read_part(self, n: int) -> bytes:
        fh = self._fh
        data = fh.read(min(n, self._left)) if fh is not None and self._left else b""
        self._left -= len(data)
        self._hash.update(data)
        return data

    def read(self, n: int = -1) -> bytes:
        while self._fh is not None:
            data = self._read_part(n if n and n > 0 else 1 << 20)
            if data:
                return data
            if not self._next_part():
                break
        return b""

    def blame(self) -> None:
        """After a decoding failure: finish hashing the current part; a damaged part is the real error."""
        if self._fh is None:
            return
        while self._read_part(1 << 20):
            pass
        path, expected = self._parts[self._index]
        if self._hash.hexdigest() != expected:
            raise ContentMismatch("part %s is damaged: its sha256 is %s, the parts list says %s"
                                  % (os.path.basename(path), self._hash.hexdigest(), expected))

    def fileno(self) -> int:  # for callers that size their progress by the file
        return self._fh.fileno() if self._fh else -1

    def total_size(self) -> int:
        """For progress only: lstat never follows a link nor opens a FIFO."""
        total = 0
        for path, _ in self._parts:
            try:
                total += os.lstat(path).st_size
            except OSError:
                pass
        return total

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "PartsReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
