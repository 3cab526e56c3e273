"""Write format-1 archives: explicit, deterministic tar headers inside one zstd frame.

Nothing here reads the clock, the umask or a file's owner: the same members, order, sizes and
time give the same bytes (docs/FORMAT.md "Reproducibility").
"""

import hashlib
import os
from typing import IO, BinaryIO, Iterable, List, Optional, Protocol, Tuple, cast

import zstandard

from installer.format.tarstream import BLOCK, member_header

# Fixed so the archive bytes never depend on the machine (issue 7 measures the level in bench/).
ZSTD_LEVEL = 3
# Multithreaded zstd compresses in jobs; the job size is part of the output format, so it is pinned.
# 4 MiB: peak memory 67 MiB instead of 118 MiB on incompressible input (zstd's default, 8 MiB, at
# level 3), for 0.06% of ratio and no speed on 2 cores (measured on 256 MB random and 200 MB binaries).
ZSTD_JOB_SIZE = 4 << 20
RECORD = 10240  # GNU tar's default record: the archive ends on a record boundary


def zstd_threads() -> int:
    # Multithreaded zstd output is the same for every thread count >= 1 (but differs at 0).
    return max(1, min(os.cpu_count() or 1, 8))


class BinarySink(Protocol):
    """Where the compressed archive goes: an open binary file, or a PartsWriter. zstandard calls only these."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class _HashingFile:
    """Forwards writes to ``fh`` and hashes them: the sidecar costs no second read."""

    def __init__(self, fh: BinarySink) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()


class ArchiveWriter:
    def __init__(self, fh: BinarySink, mtime: int) -> None:
        self._out = _HashingFile(fh)
        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL, threads=zstd_threads(), job_size=ZSTD_JOB_SIZE, write_checksum=True)
        cctx = zstandard.ZstdCompressor(compression_params=params)
        # zstandard's stub asks for a whole IO[bytes], but its stream writer only ever calls write() and flush()
        # on the destination (close() too, but only with closefd=True, which is not used here): the stub is
        # wider than the library's need, so the hashing wrapper is cast rather than given a dozen dummy methods.
        # Held as the BinaryIO its class derives from: the stub leaves ZstdCompressionWriter.close unannotated.
        self._z: BinaryIO = cctx.stream_writer(cast(IO[bytes], self._out), closefd=False)
        self._mtime = mtime
        self._tar_size = 0

    def _write(self, data: bytes) -> None:
        self._z.write(data)
        self._tar_size += len(data)

    def add(self, path: str, size: int, chunks: Iterable[bytes], executable: bool = False) -> str:
        """Append one regular file; returns the sha256 of the bytes actually written."""
        self._write(member_header(path, size, self._mtime, executable))
        h = hashlib.sha256()
        written = 0
        for chunk in chunks:
            h.update(chunk)
            written += len(chunk)
            if written > size:
                break
            self._write(chunk)
        if written != size:
            raise OSError("%s changed size while it was being archived" % path)
        self._write(b"\0" * (-size % BLOCK))
        return h.hexdigest()

    def close(self) -> str:
        """End the tar and the zstd frame; returns the archive's sha256."""
        self._write(b"\0" * (2 * BLOCK))
        self._write(b"\0" * (-self._tar_size % RECORD))
        self._z.close()  # ends the single frame; closefd=False keeps the file open
        return self._out.sha256.hexdigest()


FAT32 = 4 * 1024 ** 3 - 1024 ** 2  # the largest file FAT32 holds is 4 GiB - 1 byte; keep a round margin
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2, "MIB": 1024 ** 2,
          "G": 1024 ** 3, "GB": 1024 ** 3, "GIB": 1024 ** 3, "T": 1024 ** 4, "TB": 1024 ** 4, "TIB": 1024 ** 4}


def parse_size(text: str) -> int:
    """'700M', '4GiB', '1048576', 'fat32' -> bytes (binary units: K = 1024)."""
    import re

    from installer.errors import UsageError

    value = text.strip().upper()
    if value == "FAT32":
        return FAT32
    match = re.fullmatch(r"([0-9]+)\s*([KMGT]?I?B?)", value)
    if not match or match.group(2) not in _UNITS:
        raise UsageError("--split-size takes a size such as 700M, 4G or fat32, not %r" % text)
    size = int(match.group(1)) * _UNITS[match.group(2)]
    if size < 1024 * 1024:
        raise UsageError("--split-size must be at least 1 MiB")
    return size


class PartsWriter:
    """A file-like sink that cuts the archive into parts of ``size`` bytes, hashing each as it is written."""

    def __init__(self, final_base: str, size: int) -> None:
        self.final_base = final_base
        self.folder = os.path.dirname(final_base) or "."
        self.size = size
        self.parts: List[Tuple[str, str, "hashlib._Hash"]] = []  # [(tmp path, final path, sha256 object)]
        self._fh: Optional[BinaryIO] = None
        self._left = 0

    def _open_next(self) -> BinaryIO:
        if self._fh is not None:
            self._close_current(self._fh)
        number = len(self.parts)
        final = "%s.%03d" % (self.final_base, number)
        tmp = os.path.join(self.folder, ".building-%s" % os.path.basename(final))
        fh = self._fh = open(tmp, "wb", buffering=1 << 20)
        self.parts.append((tmp, final, hashlib.sha256()))
        self._left = self.size
        return fh

    def _close_current(self, fh: BinaryIO) -> None:
        """Close ``fh``, the open part (self._fh), durably; self._fh stays set until it is closed (abort closes it)."""
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        self._fh = None

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            fh = self._fh
            if fh is None or self._left == 0:
                fh = self._open_next()
            n = min(self._left, len(view))
            fh.write(view[:n])
            self.parts[-1][2].update(view[:n])
            self._left -= n
            view = view[n:]
        return len(data)

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def finish(self) -> List[Tuple[str, str]]:
        """Rename every part into place; returns [(final path, sha256 hex)]."""
        if self._fh is not None:
            self._close_current(self._fh)
        out = []
        for tmp, final, h in self.parts:
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
            out.append((final, h.hexdigest()))
        return out

    def abort(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()  # flushes: raises ENOSPC again on a full disk
            except OSError:
                pass
            self._fh = None
        for tmp, _final, _h in self.parts:
            if os.path.exists(tmp):
                os.unlink(tmp)
