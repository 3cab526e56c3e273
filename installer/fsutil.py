"""Durable file operations shared by the kit, its receipts and its trust store."""

import hashlib
import os
from typing import BinaryIO, Iterator, Tuple

CHUNK = 1 << 20


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
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
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
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
