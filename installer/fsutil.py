"""Durable file operations shared by the kit, its receipts and its trust store."""

import errno
import hashlib
import os
import stat
from typing import BinaryIO, Iterator, Optional, Protocol, Tuple

CHUNK = 1 << 20


class Readable(Protocol):
    """What the streaming readers take: a file, a decompressor, the parts of a split archive, a counting
    wrapper. ``n`` is always given (-1 for "to the end"); positional, as file objects declare it."""

    def read(self, n: int, /) -> bytes: ...


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (os.write may write less than it was given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_new(path: str, data: bytes, mode: int) -> None:
    """Create ``path`` (never an existing file, never through a link) with exactly ``mode``, whole and fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        os.fchmod(fd, mode)  # the umask never widens or narrows it
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Temp file with exactly ``mode`` (whatever the umask), fsync, rename, fsync the folder:
    readers see the old or the new file, whole; a failure leaves no temp file behind."""
    tmp = "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(4).hex())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(os.path.dirname(path) or ".")


def file_chunks(path: str, chunk: int = CHUNK) -> Iterator[bytes]:
    """A file's bytes in 1 MiB pieces: nothing is ever read whole."""
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk)
            if not data:
                return
            yield data


def sha256_file(path: str) -> Tuple[str, int]:
    """(hex sha256, size) of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    size = 0
    for data in file_chunks(path):
        h.update(data)
        size += len(data)
    return h.hexdigest(), size


def copy_hashed(src: BinaryIO, dst: BinaryIO) -> Tuple[str, int]:
    """Copy a stream to another, hashing on the way: (hex sha256, size)."""
    h = hashlib.sha256()
    size = 0
    while True:
        data = src.read(CHUNK)
        if not data:
            return h.hexdigest(), size
        h.update(data)
        size += len(data)
        dst.write(data)


# --- reading what we did not write: no link followed, regular files only, sizes capped ------------
# O_NONBLOCK: opening a FIFO for reading must not wait for a writer (it is refused right after, by fstat).
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


class PathRefused(Exception):
    """A path that is a link, not a regular file (or folder), or larger than allowed; callers choose the exit code."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__("%s %s" % (path, why))
        self.path = path
        self.why = why


def kind_of_file(mode: int) -> str:
    """What a file mode is, in words ("a FIFO"), for messages."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def _open_at(name: str, flags: int, dir_fd: Optional[int], shown: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a symbolic link
            raise PathRefused(shown, "is a symbolic link") from exc
        if exc.errno == errno.ENOTDIR:
            raise PathRefused(shown, "is not a folder") from exc
        raise


def open_under(base: str, rel: str, cap: Optional[int] = None) -> int:
    """A read-only descriptor for ``base/rel``: every component below ``base`` is opened without
    following a link (a link, FIFO or device anywhere is PathRefused, a device without being opened),
    the last must be a regular file of at most ``cap`` bytes. ``rel`` uses '/' and must already be a
    checked member path."""
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise PathRefused(rel, "is not a relative path")
    fd = os.open(base, _DIR_FLAGS & ~os.O_NOFOLLOW)  # base is the caller's trusted root
    try:
        for i, part in enumerate(parts[:-1]):
            nxt = _open_at(part, _DIR_FLAGS, fd, os.path.join(base, *parts[:i + 1]))
            os.close(fd)
            fd = nxt
        shown = os.path.join(base, *parts)
        _refuse_special(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode, shown)
        leaf = _open_at(parts[-1], _READ_FLAGS, fd, shown)
    finally:
        os.close(fd)
    return _checked_regular(leaf, shown, cap)


def open_regular(path: str, cap: Optional[int] = None, follow: bool = False) -> int:
    """A read-only descriptor for ``path``: a regular file of at most ``cap`` bytes; never blocks, never opens
    a device. ``follow`` is only for a path the user typed, which may be their own link to a file; names
    derived from a medium, a kit or an archive never follow one."""
    _refuse_special((os.stat if follow else os.lstat)(path).st_mode, path)
    flags = _READ_FLAGS & ~os.O_NOFOLLOW if follow else _READ_FLAGS
    return _checked_regular(_open_at(path, flags, None, path), path, cap)


def _refuse_special(mode: int, shown: str) -> None:
    """Checked before opening: opening a device node can act on hardware, and a FIFO or socket is no file."""
    if not stat.S_ISREG(mode):
        raise PathRefused(shown, "is %s" % kind_of_file(mode))


def _checked_regular(fd: int, shown: str, cap: Optional[int]) -> int:
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathRefused(shown, "is %s" % kind_of_file(st.st_mode))
        if cap is not None and st.st_size > cap:
            raise PathRefused(shown, "is %d bytes, more than the %d allowed" % (st.st_size, cap))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, cap: int, shown: str) -> bytes:
    """All of a descriptor's bytes (closing it), refusing more than ``cap``: a file may grow while read."""
    os.set_blocking(fd, True)  # opened O_NONBLOCK only so that a FIFO could not make the open wait
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise PathRefused(shown, "grew beyond the %d bytes allowed while it was read" % cap)
    return data


def read_under(base: str, rel: str, cap: int) -> bytes:
    return read_fd(open_under(base, rel, cap), cap, os.path.join(base, rel))


def open_installed(tree: str, rel: str, cap: Optional[int] = None) -> int:
    """open_under for a file of an installed, verified version: it was written by us as a regular file, so a
    link, a special file, a missing or an oversized one means the version is damaged (exit 5)."""
    from installer.errors import ContentMismatch

    try:
        return open_under(tree, rel, cap)
    except (PathRefused, FileNotFoundError) as exc:
        raise ContentMismatch("%s of the installed version %s; it is damaged (see offline-bundle verify --kit)"
                              % (rel, getattr(exc, "why", None) or "is missing")) from exc


def read_installed(tree: str, rel: str, cap: int) -> bytes:
    try:
        return read_fd(open_installed(tree, rel, cap), cap, os.path.join(tree, rel))
    except PathRefused as exc:  # it grew while it was read
        from installer.errors import ContentMismatch

        raise ContentMismatch("%s of the installed version %s; it is damaged (see offline-bundle verify --kit)"
                              % (rel, exc.why)) from exc


def sha256_fd(fd: int) -> Tuple[str, int]:
    """(hex sha256, size) of an open descriptor, read from its start in 1 MiB pieces; the descriptor stays open."""
    h = hashlib.sha256()
    size = 0
    offset = 0
    while True:
        data = os.pread(fd, CHUNK, offset)
        if not data:
            return h.hexdigest(), size
        h.update(data)
        size += len(data)
        offset += len(data)


def lstat_or_none(path: str) -> Optional[os.stat_result]:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def is_regular(path: str) -> bool:
    """A regular file itself (a link to one does not count)."""
    st = lstat_or_none(path)
    return st is not None and stat.S_ISREG(st.st_mode)
