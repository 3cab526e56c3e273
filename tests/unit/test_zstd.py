"""installer/format/zstd.py: streaming decompression, each back end forced, every failure an InvalidInput."""

import io
import os
import random
import shutil
import subprocess
import sys

import pytest
import zstandard

from installer.errors import InvalidInput, LocalEnvironmentError
from installer.format.tarstream import TarReader
from installer.format.zstd import MAGIC, WINDOW_LOG_MAX, _open_stdlib, open_decompressed

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd program is needed")

BACKENDS = ["zstandard", "zstd-cli"]
MIB = 1 << 20


def read_all(reader, size=64 * 1024):
    parts = []
    while True:
        data = reader.read(size)
        if not data:
            return b"".join(parts)
        parts.append(data)


def decompress(blob, backend, size=64 * 1024):
    reader = open_decompressed(io.BytesIO(blob), backend)
    try:
        return read_all(reader, size)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def payload():
    rng = random.Random(7)
    text = b"".join(b"line %d of a log that compresses well\n" % i for i in range(60000))
    return rng.randbytes(2 * MIB) + text + rng.randbytes(MIB // 2) + b"\0" * MIB


@pytest.fixture(scope="module")
def frame(payload):
    """One frame from the library the builder uses, with a content checksum."""
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(payload)


@pytest.fixture(scope="module")
def cli_frame(payload):
    return subprocess.run(["zstd", "-q", "-c", "--check"], input=payload, stdout=subprocess.PIPE,
                          check=True).stdout


def window_of(blob):
    return zstandard.get_frame_parameters(blob).window_size


# --- round trip --------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ["frame", "cli_frame"])
def test_round_trip(request, payload, backend, which):
    blob = request.getfixturevalue(which)
    assert len(payload) > 4 * MIB and len(blob) < len(payload)
    reader = open_decompressed(io.BytesIO(blob), backend)
    assert reader.backend == backend
    try:
        assert read_all(reader, size=1000003) == payload
    finally:
        reader.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_without_size_returns_everything(frame, payload, backend):
    reader = open_decompressed(io.BytesIO(frame), backend)
    try:
        data = reader.read()
        assert data + read_all(reader) == payload
    finally:
        reader.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_reads(backend):
    data = os.urandom(5000)
    blob = zstandard.ZstdCompressor().compress(data)
    assert decompress(blob, backend, size=7) == data


@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_from_a_pipe(tmp_path, frame, payload, backend):
    path = tmp_path / "a.zst"
    path.write_bytes(frame)
    cat = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    try:
        reader = open_decompressed(cat.stdout, backend)
        try:
            assert read_all(reader) == payload
        finally:
            reader.close()
    finally:
        cat.stdout.close()
        cat.wait()


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_before_the_end(frame, backend):
    reader = open_decompressed(io.BytesIO(frame), backend)
    assert len(reader.read(100)) == 100
    reader.close()                                   # must not hang or raise


def test_default_backend_is_zstandard(frame):
    reader = open_decompressed(io.BytesIO(frame))
    try:
        assert reader.backend == "zstandard"
    finally:
        reader.close()


# --- not a zstd stream -------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS + [""])
def test_empty_file(backend):
    with pytest.raises(InvalidInput, match="empty") as exc:
        open_decompressed(io.BytesIO(b""), backend)
    assert exc.value.exit_code == 3


@pytest.mark.parametrize("backend", BACKENDS + [""])
@pytest.mark.parametrize("blob", [b"\x1f\x8b\x08\x00" + b"\0" * 20, b"ustar" + b"\0" * 600, MAGIC[:3],
                                  b"\xfd\x2f\xb5\x28zz", b"\x00"])
def test_wrong_magic(backend, blob):
    with pytest.raises(InvalidInput, match="magic"):
        open_decompressed(io.BytesIO(blob), backend)


# --- corrupt, truncated, oversized -------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupted_frame_is_invalid_input(frame, backend):
    rng = random.Random(11)
    positions = [len(frame) // 2, len(frame) - 2] + [rng.randrange(12, len(frame)) for _ in range(6)]
    for pos in positions:
        bad = bytearray(frame)
        bad[pos] ^= 0x5A
        with pytest.raises(InvalidInput):
            decompress(bytes(bad), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_garbage_after_frame_is_invalid_input(frame, backend):
    with pytest.raises(InvalidInput):
        decompress(frame + b"this is not zstd" * 4, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_header_only_is_not_the_payload(frame, backend):
    try:
        out = decompress(frame[:6], backend)
    except InvalidInput:
        return
    assert out == b""


@pytest.fixture(scope="module")
def tar_zst(tmp_path_factory):
    src = tmp_path_factory.mktemp("tarsrc")
    (src / "one").write_bytes(os.urandom(2 * MIB))
    (src / "two").write_bytes(os.urandom(MIB))
    tar = subprocess.run(["tar", "--format=posix", "-cf", "-", "-C", str(src), "one", "two"], check=True,
                         stdout=subprocess.PIPE).stdout
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(tar)


def _read_tar(stream):
    reader = TarReader(stream, 256 * 1024)
    names = []
    while True:
        m = reader.next()
        if m is None:
            return names
        for _ in reader.chunks():
            pass
        names.append(m.path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_whole_tar_reads(tar_zst, backend):
    reader = open_decompressed(io.BytesIO(tar_zst), backend)
    try:
        assert _read_tar(reader) == ["one", "two"]
    finally:
        reader.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_truncated_frame_is_invalid_input(tar_zst, backend, fraction):
    cut = tar_zst[:int(len(tar_zst) * fraction)]
    # Either the decoder reports it, or a short read that the tar layer reports as truncated.
    reader = open_decompressed(io.BytesIO(cut), backend)
    try:
        with pytest.raises(InvalidInput):
            _read_tar(reader)
    finally:
        reader.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_frame_through_verify_stream(tmp_path, backend):
    from installer.trust.verify import verify_stream
    # The first member is where the format wants it, so the only fault is the cut inside it.
    (tmp_path / "SHA256SUMS").write_bytes(os.urandom(3 * MIB))
    tar = subprocess.run(["tar", "--format=posix", "-cf", "-", "-C", str(tmp_path), "SHA256SUMS"], check=True,
                         stdout=subprocess.PIPE).stdout
    blob = zstandard.ZstdCompressor(level=1, write_checksum=True).compress(tar)
    with pytest.raises(InvalidInput, match="truncated|zstd") as exc:
        verify_stream(io.BytesIO(blob[:len(blob) // 3]), [], backend=backend)
    assert exc.value.exit_code == 3


@pytest.fixture(scope="module")
def big_window_frame():
    """zstd --long=31 from a pipe: the size is unknown, so the header declares the whole 2 GiB window."""
    data = random.Random(3).randbytes(3 * MIB)
    blob = subprocess.run(["zstd", "-q", "-c", "--long=31"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout
    assert window_of(blob) == 1 << 31
    return blob


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_needing_a_2_gib_window_is_refused(big_window_frame, backend):
    with pytest.raises(InvalidInput):
        decompress(big_window_frame, backend)


def _with_window_log(window_log):
    """A small valid frame whose header declares 2**window_log (Window_Descriptor, RFC 8878 3.1.1.1.2)."""
    data = b"window" * 5000
    blob = bytearray(zstandard.ZstdCompressor(write_content_size=False, write_checksum=True).compress(data))
    fhd = blob[4]
    assert not fhd & 0x20 and not fhd & 0x03         # no single-segment flag, no dictionary id
    blob[5] = (window_log - 10) << 3                 # exponent, mantissa 0
    assert window_of(bytes(blob)) == 1 << window_log
    return bytes(blob), data


@pytest.mark.parametrize("backend", BACKENDS)
def test_window_limit_is_128_mib(backend):
    assert WINDOW_LOG_MAX == 27
    at_limit, data = _with_window_log(27)
    assert decompress(at_limit, backend) == data
    over, _ = _with_window_log(28)
    with pytest.raises(InvalidInput):
        decompress(over, backend)


# --- compression.zstd (CPython 3.14+) ------------------------------------------------------------

def test_stdlib_backend(frame, payload, big_window_frame):
    """Absent before CPython 3.14 (and then cleanly refused when forced); a full decoder from 3.14 on."""
    if sys.version_info < (3, 14):
        assert _open_stdlib(io.BytesIO(frame)) is None
        with pytest.raises(LocalEnvironmentError) as exc:
            open_decompressed(io.BytesIO(frame), "compression.zstd")
        assert exc.value.exit_code == 9
        return
    assert decompress(frame, "compression.zstd") == payload
    with pytest.raises(InvalidInput):
        decompress(big_window_frame, "compression.zstd")
