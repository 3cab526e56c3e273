"""Write format-1 archives: explicit, deterministic tar headers inside one zstd frame.

Nothing here reads the clock, the umask or a file's owner: the same members, order, sizes and
time give the same bytes (PRODUCT.md "Reproducibility").
"""

import hashlib
import os
from typing import BinaryIO, Iterable

import zstandard

from installer.tarstream import BLOCK, member_header

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


class _HashingFile:
    """Forwards writes to ``fh`` and hashes them: the sidecar costs no second read."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()


class ArchiveWriter:
    def __init__(self, fh: BinaryIO, mtime: int) -> None:
        self._out = _HashingFile(fh)
        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL, threads=zstd_threads(), job_size=ZSTD_JOB_SIZE, write_checksum=True)
        cctx = zstandard.ZstdCompressor(compression_params=params)
        self._z = cctx.stream_writer(self._out, closefd=False)
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
