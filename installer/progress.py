"""Progress on stderr, only when stderr is a terminal; tqdm when importable, else nothing."""

import os
import sys
from typing import Optional, Protocol

from installer.fsutil import Readable
from installer.textsafe import printable


class _Bar(Protocol):
    """What we use of a tqdm bar."""

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


class Progress:
    def __init__(self, total: Optional[int], desc: str, enabled: bool = True) -> None:
        self._bar: Optional[_Bar] = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            try:
                columns = os.get_terminal_size(sys.stderr.fileno()).columns
            except OSError:
                columns = 0
            # Some terminals (serial consoles, `script`) report zero columns: tqdm would then print nothing.
            width = {"dynamic_ncols": True} if columns > 0 else {"ncols": 80, "nrows": 24}
            self._bar = tqdm(total=total, desc=printable(desc), unit="B", unit_scale=True, unit_divisor=1024,
                             file=sys.stderr, leave=False, **width)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CountingReader:
    """Hash the compressed bytes as the decompressor pulls them (for the .sha256 sidecar)."""

    def __init__(self, fh: Readable, progress: Optional[Progress] = None) -> None:
        import hashlib

        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.sha256.update(data)
        self.size += len(data)
        if self._progress is not None:
            self._progress.update(len(data))
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass
