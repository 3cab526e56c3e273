"""installer.format.tarstream.TarReader over random bytes and mutated valid tar streams.

Consuming next() and chunks() to the end either completes or raises InvalidInput / UnsafeMember, and
never reads an unbounded amount at once (the stream refuses read(-1) and reads above the chunk size).
An unmutated stream gives back exactly the members it was built from.
"""

from hypothesis import given
from hypothesis import strategies as st

from installer.errors import InvalidInput, UnsafeMember
from installer.format.tarstream import MAX_PAX_BYTES, TarReader

from propkit import known_bug_report  # noqa: F401  (autouse: reports tolerated known bugs)
from propkit import (BLOCK, GuardedStream, build_tar, label, prop, read_all, tar_entries, tar_mutation, typed)

chunk_sizes = st.sampled_from([BLOCK, 777, 4096, 1 << 20])


def consume(data: bytes, chunk: int):
    stream = GuardedStream(data, max_read=max(chunk, 64 * 1024, MAX_PAX_BYTES))
    out = typed(lambda: read_all(TarReader(stream, chunk)))
    label(out)
    if out.error is not None:
        assert isinstance(out.error, (InvalidInput, UnsafeMember)), out.error
    if out.ok:
        for member, payload in out.value:
            assert isinstance(member.path, str)
            if member.typeflag not in (b"1", b"5"):
                assert len(payload) == member.size >= 0
        assert stream.consumed == len(data)  # a clean end means every byte was looked at
    return out


@prop(150)
@given(st.binary(max_size=3 * BLOCK), chunk_sizes)
def test_random_bytes(data, chunk):
    consume(data, chunk)


@prop(80)
@given(st.lists(st.binary(min_size=BLOCK, max_size=BLOCK), min_size=1, max_size=6), chunk_sizes)
def test_random_blocks(blocks, chunk):
    consume(b"".join(blocks), chunk)


@prop(100)
@given(tar_entries, chunk_sizes)
def test_valid_stream_round_trips(entries, chunk):
    out = consume(build_tar(entries), chunk)
    assert out.ok, out.error
    assert [(m.path, d) for m, d in out.value] == [(p, d) for p, d in entries]
    assert all(m.is_regular for m, _ in out.value)


@prop(400)
@given(tar_entries, chunk_sizes, st.data())
def test_mutated_valid_stream(entries, chunk, data):
    tar = build_tar(entries)
    for _ in range(data.draw(st.integers(1, 3))):
        tar = data.draw(tar_mutation(tar))
    consume(tar, chunk)


@prop(60)
@given(tar_entries, st.integers(0, 3), chunk_sizes)
def test_without_end_marker(entries, zero_blocks, chunk):
    """A stream cut at a member boundary, with 0 or 1 zero blocks, is truncated (2+ blocks: a clean end)."""
    tar = build_tar(entries, end=False) + b"\0" * (BLOCK * zero_blocks)
    out = consume(tar, chunk)
    if zero_blocks == 0:
        assert isinstance(out.error, InvalidInput), out
