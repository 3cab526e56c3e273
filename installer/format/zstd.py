"""Streaming zstd decompression with three interchangeable back ends.

``zstandard`` when importable, else ``compression.zstd`` (CPython 3.14+), else the ``zstd``
executable. Every back end caps the window size, so a frame that demands gigabytes of memory
is refused instead of honoured.
"""

import shutil
import subprocess
import threading
from typing import IO, Callable, Dict, Optional, Tuple, Type, cast

from installer.errors import InvalidInput, LocalEnvironmentError
from installer.fsutil import Readable

MAGIC = b"\x28\xb5\x2f\xfd"
WINDOW_LOG_MAX = 27  # 128 MiB: far above what the builder uses, far below what hurts a host
READ_SIZE = 1 << 20


class _Reader:
    """read(n) over a decompressing stream, turning back-end errors into InvalidInput."""

    backend = ""

    def __init__(self, raw: Readable, errors: Tuple[Type[BaseException], ...],
                 closer: Optional[Callable[[], None]] = None) -> None:
        self._raw = raw
        self._errors = errors
        self._closer = closer

    def read(self, n: int = -1) -> bytes:
        try:
            return self._raw.read(n)
        except self._errors as exc:  # the library's own decode errors only
            raise InvalidInput("the archive is not a valid zstd stream: %s"
                               % (str(exc) or type(exc).__name__)) from exc

    def close(self) -> None:
        if self._closer:
            self._closer()

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Prefixed:
    """Give back bytes already read (the magic) before reading on: works on pipes too."""

    def __init__(self, head: bytes, fh: Readable) -> None:
        self._head = head
        self._fh = fh

    def read(self, n: Optional[int] = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                out, self._head = self._head + self._fh.read(-1), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._fh.read(-1 if n is None else n)


def open_decompressed(fh: Readable, backend: str = "") -> _Reader:
    """Decompress a binary stream positioned at a zstd frame; ``backend`` forces one (tests)."""
    head = fh.read(4)
    if not head:
        raise InvalidInput("the archive is empty")
    if head != MAGIC:
        raise InvalidInput("the file is not a zstd-compressed bundle (wrong magic bytes)")
    prefixed = _Prefixed(head, fh)
    order = [backend] if backend else ["zstandard", "compression.zstd", "zstd-cli"]
    for name in order:
        opener = _BACKENDS[name]
        reader = opener(prefixed)
        if reader is not None:
            reader.backend = name
            return reader
    raise LocalEnvironmentError(
        "no zstd decoder is available: install the 'zstandard' wheel, use Python 3.14+, or install the zstd program")


def _open_zstandard(fh: Readable) -> Optional[_Reader]:
    try:
        import zstandard
    except ImportError:
        return None
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << WINDOW_LOG_MAX)
    # stream_reader only ever calls read(read_size); its stub asks for a whole IO[bytes]. closefd: we own fh.
    raw = dctx.stream_reader(cast(IO[bytes], fh), read_size=READ_SIZE, read_across_frames=True, closefd=False)
    return _Reader(raw, (zstandard.ZstdError,), raw.close)


def _open_stdlib(fh: Readable) -> Optional[_Reader]:
    try:
        from compression import zstd  # novermin  (CPython 3.14+, guarded by ImportError)
    except ImportError:
        return None
    raw = zstd.ZstdFile(fh, options={zstd.DecompressionParameter.window_log_max: WINDOW_LOG_MAX})
    return _Reader(raw, (zstd.ZstdError, EOFError), raw.close)


class _CliError(Exception):
    pass


class _CliStream:
    """zstd -dc as a child; a thread feeds it from our reader, so every byte passes our hashing."""

    def __init__(self, fh: Readable) -> None:
        self._proc = subprocess.Popen(
            [shutil.which("zstd") or "zstd", "-dcq", "--memory=%dMB" % (1 << (WINDOW_LOG_MAX - 20)), "-"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Popen makes every pipe it is asked for: the Optional in their type is for streams not piped.
        self._stdin = cast(IO[bytes], self._proc.stdin)
        self._stdout = cast(IO[bytes], self._proc.stdout)
        self._stderr = cast(IO[bytes], self._proc.stderr)
        self._feeder = threading.Thread(target=self._feed, args=(fh,), daemon=True)
        self._feeder.start()

    def _feed(self, fh: Readable) -> None:
        try:
            while True:
                data = fh.read(READ_SIZE)
                if not data:
                    break
                self._stdin.write(data)
        except (BrokenPipeError, ValueError, OSError):
            pass  # the child stopped reading (error or kill): its exit status tells
        finally:
            try:
                self._stdin.close()
            except OSError:
                pass

    def read(self, n: int = -1) -> bytes:
        data = self._stdout.read(n)
        if not data and self._proc.wait() != 0:
            err = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise _CliError(err[-1] if err else "zstd exited with %d" % self._proc.returncode)
        return data

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._feeder.join()
        self._stdout.close()
        self._stderr.close()


def _open_cli(fh: Readable) -> Optional[_Reader]:
    if not shutil.which("zstd"):
        return None
    stream = _CliStream(fh)
    return _Reader(stream, (_CliError,), stream.close)


_BACKENDS: Dict[str, Callable[[Readable], Optional[_Reader]]] = {
    "zstandard": _open_zstandard, "compression.zstd": _open_stdlib, "zstd-cli": _open_cli}
