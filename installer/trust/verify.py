"""Read a bundle archive once, trusting nothing before it is checked.

The steps are those of docs/FORMAT.md "Verifying", numbered the same way below:
  (1) SHA256SUMS and SHA256SUMS.sig come first; the signature is checked with a trusted key over the
      raw bytes, before any line of them is parsed.
  (2) bundle.json (and DELTA.json) must match their signed lines; its paths must equal the list.
  (3) The caller decides (trust scope, version rules, free space) before any payload byte is written.
  (4) Every later member is refused at its header unless it is a listed, unseen regular file of the
      declared size at a valid path, in order; its bytes are hashed while the sink writes them.
  (5) At the end every listed path was seen, and the image index agrees with bundle.json.
"""

import hashlib
import io
import os
from dataclasses import dataclass, replace
from typing import (BinaryIO, Callable, Dict, Iterator, List, Literal, Optional, Protocol, Sequence, Tuple, Union,
                    overload)

from installer.errors import ContentMismatch, InternalError, InvalidInput, TrustError, UnsafeMember, UsageError
from installer.format.delta import MAX_DELTA_BYTES, parse_delta
from installer.format.imagecheck import MAX_INDEX_BYTES, ImageGraph
from installer.trust.cosign import recheck_upstream_signatures
from installer.format.meta import MAX_META_BYTES, parse_meta
from installer.format.model import BundleHead, DeltaBase, DeltaDoc
from installer.format.parts import PART_RE, PartsReader, find_parts, open_regular, read_capped
from installer.format.paths import path_problem
from installer.format.sums import (DELTA_NAME, MAX_SIG_BYTES, MAX_SUMS_BYTES, META_NAME, SIG_NAME, SUMS_NAME,
                                   bundle_id, parse_sums)
from installer.format.tarstream import Member, TarReader
from installer.format.zstd import open_decompressed
from installer.fsutil import Readable
from installer.progress import CountingReader, Progress
from installer.trust import dsse
from installer.trust.provenance import PROVENANCE_PATH, ProvenanceSummary, check_provenance
from installer.trust.signing import find_signer
from installer.trust.store import TrustedKey

READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class ProvenHead:
    """Steps (1) and (2) passed: SHA256SUMS is signed by ``signer``, a trusted key, and bundle.json (and a
    delta's DELTA.json) matched their signed lines and parsed. What the caller decides on in step (3)."""

    sums: bytes                   # SHA256SUMS, as signed
    signature: bytes              # SHA256SUMS.sig
    sums_entries: Dict[str, str]  # path -> sha256, every listed path
    bundle_id: str
    signer: TrustedKey
    meta: BundleHead
    meta_bytes: bytes             # bundle.json, as signed
    delta: Optional[DeltaDoc]     # DELTA.json, for a delta
    delta_bytes: bytes            # b"" when not a delta


@dataclass(frozen=True)
class TooLarge:
    """An unverified head member read_head did not read (inspect's cap)."""

    member: str
    size: int
    cap: int


@dataclass(frozen=True)
class HeadClaims:
    """read_head without ``require_trust`` (inspect, a delta's base): what the head says. Unless ``signer`` is
    set, it is only a claim; ``meta`` and ``delta`` are None where a member was over the cap (``too_large``)."""

    signer: Optional[TrustedKey]
    sums_entries: Dict[str, str]
    bundle_id: str                # "" when SHA256SUMS was not read
    meta: Optional[BundleHead]
    delta: Optional[DeltaDoc]
    too_large: Tuple[TooLarge, ...]


@dataclass(frozen=True)
class DeltaSummary:
    """A delta's DELTA.json as verified: its bases, and what it omits (checked in a kit, or not)."""

    base: Tuple[DeltaBase, ...]
    omitted: int
    omitted_bytes: int
    checked_in_kit: int


@dataclass(frozen=True)
class VerifyReport:
    """What verifying an archive proved, built once the stream ends (``stopped`` when the caller chose not to
    read the payload)."""

    head: ProvenHead
    backend: str                          # the zstd decoder used
    stopped: bool = False
    members_seen: int = 0                 # payload members read and hashed after the head
    bytes_seen: int = 0
    not_in_archive: Tuple[str, ...] = ()  # omitted by a delta and not checked against a kit
    archive_sha256: str = ""              # the compressed bytes (verify_file, when read to the end)
    sidecar: str = "not checked"          # the .sha256 sidecar: "ok", "absent" or "not checked"
    provenance: Optional[ProvenanceSummary] = None  # the verified statement; None when the bundle has none

    @property
    def name(self) -> str:
        return self.head.meta.name

    @property
    def version(self) -> str:
        return self.head.meta.version

    @property
    def bundle_id(self) -> str:
        return self.head.bundle_id

    @property
    def signer(self) -> str:
        """The signing key's fingerprint."""
        return self.head.signer.fingerprint

    @property
    def files(self) -> int:
        """Paths listed in SHA256SUMS."""
        return len(self.head.sums_entries)

    @property
    def total_size(self) -> int:
        return self.head.meta.total_size

    @property
    def complete(self) -> bool:
        """Every listed file was checked: read from the archive, or (a delta's omitted ones) found in the kit."""
        return not self.stopped and not self.not_in_archive

    @property
    def delta(self) -> Optional[DeltaSummary]:
        d = self.head.delta
        if d is None:
            return None
        return DeltaSummary(d.base, len(d.omitted), d.omitted_bytes, len(d.omitted) - len(self.not_in_archive))


class Sink(Protocol):
    """Where verified payload members go (staging, or nowhere)."""

    def write(self, path: str, size: int, chunks: Iterator[bytes], executable: bool) -> None: ...

    def materialize(self, path: str, digest: str, size: int, executable: bool) -> Optional[bytes]:
        """A delta's omitted file from elsewhere (the kit), re-hashed; None when there is nowhere to look."""


class FileIndex(Protocol):
    """Installed files by sha256 (installer.kit.deltaindex.KitIndex)."""

    def open(self, digest: str) -> Tuple[Optional[int], str]: ...


class DiscardSink:
    """Verify only: hash and drop. With a kit, a delta's omitted files are checked there (re-hashed)."""

    def __init__(self, kit_index: Optional[FileIndex] = None) -> None:
        self.kit_index = kit_index

    def write(self, path: str, size: int, chunks: Iterator[bytes], executable: bool) -> None:
        for _ in chunks:
            pass

    def materialize(self, path: str, digest: str, size: int, executable: bool) -> Optional[bytes]:
        """Check a delta's omitted file in the kit (re-hashed now); None when there is no kit to ask.
        Returns its bytes only when it is small enough to be a manifest the image check reads, else b''."""
        if self.kit_index is None:
            return None
        fd, _source = self.kit_index.open(digest)
        if fd is None:
            raise ContentMismatch("the delta omits %s (sha256 %s) and the kit holds no good copy of it"
                                  % (path, digest))
        try:
            return os.pread(fd, size, 0) if size <= MAX_INDEX_BYTES else b""
        finally:
            os.close(fd)


# Step (3): given the authenticated head, return the sink for the payload, or None to stop reading.
Decide = Callable[[ProvenHead], Optional[Sink]]


class _Head:
    """The head while it is read; becomes a ProvenHead (or HeadClaims) when read_head returns."""

    def __init__(self) -> None:
        self.sums = b""
        self.signature = b""
        self.sums_entries: Dict[str, str] = {}
        self.bundle_id = ""
        self.signer: Optional[TrustedKey] = None
        self.meta: Optional[BundleHead] = None
        self.meta_bytes = b""
        self.delta: Optional[DeltaDoc] = None
        self.delta_bytes = b""
        self.too_large: List[TooLarge] = []  # unverified head members not read (read_head's unverified_cap)

    def proven(self) -> ProvenHead:
        if self.signer is None or self.meta is None:
            raise InternalError("the head was not proven")  # read_head raised or stopped before this
        return ProvenHead(self.sums, self.signature, self.sums_entries, self.bundle_id, self.signer, self.meta,
                          self.meta_bytes, self.delta, self.delta_bytes)

    def claims(self) -> HeadClaims:
        return HeadClaims(self.signer, self.sums_entries, self.bundle_id, self.meta, self.delta,
                          tuple(self.too_large))


def _check_small(member: Member, expected: str, cap: int) -> None:
    """A head member is refused at its header: type, place, declared size; nothing is read before."""
    if not member.is_regular:
        raise UnsafeMember("%s is a %s, not a regular file" % (expected, member.type_name))
    if member.path != expected:
        raise InvalidInput("the archive's members are out of order: %s must come where %s is" % (expected, member.path))
    if member.size > cap:
        raise InvalidInput("%s is %d bytes, more than the %d the format allows" % (expected, member.size, cap))


def _read_small(reader: TarReader, member: Member, expected: str, cap: int) -> bytes:
    _check_small(member, expected, cap)
    out = io.BytesIO()  # CPython hands its buffer over in getvalue(): one copy in memory, not two
    for chunk in reader.chunks():
        out.write(chunk)
    return out.getvalue()


def _next(reader: TarReader, what: str) -> Member:
    member = reader.next()
    if member is None:
        raise InvalidInput("the archive ends before its %s" % what)
    return member


def _check_hash(path: str, data_hex: str, expected_hex: str) -> None:
    if data_hex != expected_hex:
        raise ContentMismatch("%s does not match its SHA256SUMS line (sha256 %s, listed %s)"
                              % (path, data_hex, expected_hex))


def _too_large(v: _Head, name: str, size: int, cap: Optional[int]) -> bool:
    """Unverified, with a cap (inspect): a bigger head member is neither read nor parsed; reading stops."""
    if v.signer is not None or cap is None or size <= cap:
        return False
    v.too_large.append(TooLarge(name, size, cap))
    return True


@overload
def read_head(reader: TarReader, keys: Sequence[TrustedKey], require_trust: Literal[True] = True,
              unverified_cap: Optional[int] = None) -> ProvenHead: ...


@overload
def read_head(reader: TarReader, keys: Sequence[TrustedKey], require_trust: Literal[False],
              unverified_cap: Optional[int] = None) -> HeadClaims: ...


def read_head(reader: TarReader, keys: Sequence[TrustedKey], require_trust: bool = True,
              unverified_cap: Optional[int] = None) -> Union[ProvenHead, HeadClaims]:
    """Steps (1) and (2): the signed list and the authenticated bundle.json.

    Nothing is parsed before the signature has been checked over the raw bytes: an unsigned head is
    free for an attacker to inflate (it compresses to nothing) while parsing costs many times its size.
    Without ``require_trust`` (inspect, delta bases) an unverified head is parsed anyway, except that a
    member above ``unverified_cap`` bytes is not read at all (listed in ``too_large``; reading stops).
    """
    v = _Head()
    if require_trust:
        _read_head(reader, v, keys, True, None)  # a head that must be signed is read whole (within the format's caps)
        return v.proven()
    _read_head(reader, v, keys, False, unverified_cap)
    return v.claims()


def _read_head(reader: TarReader, v: _Head, keys: Sequence[TrustedKey], require_trust: bool,
               unverified_cap: Optional[int]) -> None:
    # (1) SHA256SUMS and its detached signature, first and second, within their caps, as raw bytes.
    first = _next(reader, "SHA256SUMS")
    _check_small(first, SUMS_NAME, MAX_SUMS_BYTES)
    if not keys and _too_large(v, SUMS_NAME, first.size, unverified_cap):
        return  # no key could vouch for it: not even read
    v.sums = _read_small(reader, first, SUMS_NAME, MAX_SUMS_BYTES)
    second = _next(reader, "signature")
    if second.path != SIG_NAME and second.is_regular:
        raise TrustError("the archive is not signed: SHA256SUMS.sig must follow SHA256SUMS, but %s does"
                         % second.path[:100])
    v.signature = _read_small(reader, second, SIG_NAME, MAX_SIG_BYTES)
    # (1) the signature, checked over the raw bytes before a single line of them is parsed.
    if keys:
        signer_key = find_signer([k.key for k in keys], v.sums, v.signature)
        v.signer = next((k for k in keys if signer_key and k.key.fingerprint == signer_key.fingerprint), None)
    if require_trust and v.signer is None:
        if not keys:
            raise TrustError("no trusted key: pass --trust KEY (a .pub file or a folder of them) "
                             "or add one with 'trust add'")
        raise TrustError("the signature of SHA256SUMS is not valid for any trusted key (%s)"
                         % ", ".join(k.fingerprint for k in keys))
    if _too_large(v, SUMS_NAME, len(v.sums), unverified_cap):
        return
    v.sums_entries = parse_sums(v.sums)
    v.bundle_id = bundle_id(v.sums)
    _read_meta(reader, v, unverified_cap)


def _read_meta(reader: TarReader, v: _Head, unverified_cap: Optional[int]) -> None:
    """(2) bundle.json (and a delta's DELTA.json), each hashed against its signed line before it is parsed."""
    if META_NAME not in v.sums_entries:
        raise InvalidInput("SHA256SUMS does not list bundle.json")
    member = _next(reader, "bundle.json")
    _check_small(member, META_NAME, MAX_META_BYTES)
    if _too_large(v, META_NAME, member.size, unverified_cap):
        return
    v.meta_bytes = _read_small(reader, member, META_NAME, MAX_META_BYTES)
    _check_hash(META_NAME, hashlib.sha256(v.meta_bytes).hexdigest(), v.sums_entries[META_NAME])
    meta = v.meta = parse_meta(v.meta_bytes)
    if DELTA_NAME in v.sums_entries:
        # A delta: DELTA.json comes fourth, hashed against its signed line before it is parsed.
        member = _next(reader, "DELTA.json")
        _check_small(member, DELTA_NAME, MAX_DELTA_BYTES)
        if _too_large(v, DELTA_NAME, member.size, unverified_cap):
            return
        v.delta_bytes = _read_small(reader, member, DELTA_NAME, MAX_DELTA_BYTES)
        _check_hash(DELTA_NAME, hashlib.sha256(v.delta_bytes).hexdigest(), v.sums_entries[DELTA_NAME])
        v.delta = parse_delta(v.delta_bytes)
    listed = set(v.sums_entries) - {META_NAME, DELTA_NAME}
    declared = set(meta.sizes)
    if listed != declared:
        problems = ["%s is in SHA256SUMS but not in bundle.json" % p for p in sorted(listed - declared)]
        problems += ["%s is in bundle.json but not in SHA256SUMS" % p for p in sorted(declared - listed)]
        raise ContentMismatch("bundle.json and SHA256SUMS list different files", problems)
    if v.delta and not set(v.delta.omitted) <= declared:
        raise ContentMismatch("DELTA.json omits files the bundle does not list")


def _hashing(chunks: Iterator[bytes], update: Callable[[bytes], None], counter: List[int],
             keep: Optional[List[bytes]] = None) -> Iterator[bytes]:
    for chunk in chunks:
        update(chunk)
        counter[0] += len(chunk)
        if keep is not None:
            keep.append(chunk)
        yield chunk


def read_payload(reader: TarReader, head: ProvenHead, sink: Sink, backend: str = "") -> VerifyReport:
    """Step (4) for every member after the head, then step (5)."""
    meta = head.meta
    graph = ImageGraph(meta, head.sums_entries)
    seen = {SUMS_NAME, SIG_NAME, META_NAME} | ({DELTA_NAME} if head.delta else set())
    seen_lower = {s.lower() for s in seen}
    previous = b""
    members_seen = bytes_seen = 0
    envelope: Optional[List[bytes]] = None  # attestations/provenance.dsse.json's bytes, checked at the end
    while True:
        member = reader.next()
        if member is None:
            break
        path = member.path
        # (4) refuse at the header: type, path, listing, repetition, order, size.
        if not member.is_regular:
            raise UnsafeMember("member %s is a %s; only regular files are allowed" % (path[:200], member.type_name))
        why = path_problem(path)
        if why:
            raise UnsafeMember("unsafe member: %s" % why)
        if path in seen or path.lower() in seen_lower:
            raise UnsafeMember("member %s appears twice (or twice ignoring case)" % path)
        if path not in meta.sizes:
            raise ContentMismatch("member %s is not listed in SHA256SUMS" % path)
        if path.encode() <= previous:
            raise InvalidInput("member %s is out of order (members must be sorted by path)" % path)
        if member.size != meta.sizes[path]:
            raise ContentMismatch("member %s is %d bytes but bundle.json declares %d"
                                  % (path, member.size, meta.sizes[path]))
        seen.add(path)
        seen_lower.add(path.lower())
        previous = path.encode()
        h = hashlib.sha256()
        counter = [0]
        keep: Optional[List[bytes]] = None
        if graph.wants(path):
            if member.size > graph.cap(path):
                raise InvalidInput("%s is %d bytes, more than a manifest may be" % (path, member.size))
            keep = []
        elif path == PROVENANCE_PATH:
            if member.size > dsse.MAX_ENVELOPE_BYTES:
                raise InvalidInput("%s is %d bytes, more than a provenance envelope may be" % (path, member.size))
            keep = envelope = []
        sink.write(path, member.size, _hashing(reader.chunks(), h.update, counter, keep), path in meta.executable)
        if counter[0] != member.size:
            raise InvalidInput("member %s was not read to its end" % path)
        _check_hash(path, h.hexdigest(), head.sums_entries[path])
        if keep is not None and keep is not envelope:
            graph.feed(path, b"".join(keep))
        members_seen += 1
        bytes_seen += member.size
    # (5) completeness: every listed path was seen, or (a delta) is in the kit with that hash.
    missing = [p for p in meta.sizes if p not in seen]
    omitted = set(head.delta.omitted) if head.delta else set()
    absent = [p for p in missing if p not in omitted]
    if absent:
        raise ContentMismatch("%d listed file(s) are missing from the archive" % len(absent), absent[:50])
    not_in_archive: List[str] = []
    for path in missing:
        digest = head.sums_entries[path]
        data = sink.materialize(path, digest, meta.sizes[path], path in meta.executable)
        if data is None:
            not_in_archive.append(path)
        elif path == PROVENANCE_PATH:
            envelope = [data] if data else None  # b'': larger than is re-read from a kit; its hash was checked
        elif graph.wants(path):
            if len(data) != meta.sizes[path] or hashlib.sha256(data).hexdigest() != digest:
                raise ContentMismatch("the kit's copy of %s changed while it was read" % path)
            graph.feed(path, data)
    provenance = None
    if not not_in_archive:
        graph.check()
        recheck_upstream_signatures(meta, graph.captured)
    if envelope is not None:  # a delta that omits it and a kit that lacks it: not checked, as every omitted file
        provenance = check_provenance(b"".join(envelope), head.signer.key, head.sums_entries, meta)
    return VerifyReport(head, backend, members_seen=members_seen, bytes_seen=bytes_seen,
                        not_in_archive=tuple(not_in_archive), provenance=provenance)


def _is_split(path: str) -> bool:
    """A folder, or a name of the form X.bundle.tar.zst.NNN: find_parts decides (stat never blocks)."""
    return os.path.isdir(path) or PART_RE.fullmatch(path) is not None


def open_archive(path: str) -> Union[PartsReader, BinaryIO]:
    """Open an archive (a file, its first part X.000, or a folder of parts); missing is exit 2.

    The path the user names may be their own symbolic link to an archive file, but never a FIFO or a
    device (exit 2, refused before it is opened: reading one could wait forever).
    """
    split = find_parts(path) if _is_split(path) and os.path.lexists(path) else None
    if split is not None:
        return PartsReader(split[1])
    try:
        return open_regular(path, "the archive %s" % path, follow=True)[0]
    except FileNotFoundError as exc:
        raise UsageError("the archive %s does not exist" % path) from exc


def archive_base(path: str) -> str:
    """The archive path without a part suffix (for the .sha256 sidecar)."""
    split = find_parts(path) if _is_split(path) and os.path.lexists(path) else None
    return split[0] if split is not None else path


MAX_SIDECAR_BYTES = 4096  # one `sha256sum` line: 64 hex digits, two spaces and a file name


def sidecar_sha256(archive: str) -> Optional[str]:
    """The sha256 the archive's `.sha256` sidecar names (first field, lower case), or None without one.

    The sidecar's name is derived, not typed: a link, FIFO or device there is exit 6 (parts.open_regular).
    """
    sidecar = archive + ".sha256"
    data = read_capped(sidecar, "the sidecar %s" % sidecar, MAX_SIDECAR_BYTES, ContentMismatch)
    if data is None:
        return None
    return data.decode("ascii", "replace").split(" ", 1)[0].strip().lower()


def check_sidecar(archive: str, sha256_hex: str) -> str:
    """The .sha256 sidecar is transport only, but a mismatch means the file is not what was sent."""
    sidecar = archive + ".sha256"
    listed = sidecar_sha256(archive)
    if listed is None:
        return "absent"
    if listed != sha256_hex:
        raise ContentMismatch("the archive's sha256 %s differs from its sidecar %s (%s)"
                              % (sha256_hex, os.path.basename(sidecar), listed[:64] or "empty"))
    return "ok"


def verify_file(path: str, keys: Sequence[TrustedKey], decide: Optional[Decide] = None,
                show_progress: bool = True, backend: str = "", kit_index: Optional[FileIndex] = None) -> VerifyReport:
    """verify_stream over a file, hashing the compressed bytes once for the sidecar check."""
    with open_archive(path) as fh:
        total = fh.total_size() if isinstance(fh, PartsReader) else os.fstat(fh.fileno()).st_size
        progress = Progress(total, os.path.basename(path), show_progress)
        counting = CountingReader(fh, progress)
        try:
            try:
                report = verify_stream(counting, keys, decide or (lambda _head: DiscardSink(kit_index)), backend)
            except (InvalidInput, UnsafeMember, ContentMismatch):
                if isinstance(fh, PartsReader):
                    fh.blame()  # a damaged part explains garbage better than the garbage itself
                raise
            if not report.stopped:
                counting.drain()
                archive_sha256 = counting.sha256.hexdigest()
                report = replace(report, archive_sha256=archive_sha256,
                                 sidecar=check_sidecar(archive_base(path), archive_sha256))
        finally:
            progress.close()
    return report


def verify_stream(fh: Readable, keys: Sequence[TrustedKey], decide: Optional[Decide] = None,
                  backend: str = "") -> VerifyReport:
    """Run steps (1)-(5) over an open archive file; the sink ``decide`` returns receives the payload."""
    stream = open_decompressed(fh, backend)
    try:
        reader = TarReader(stream, READ_CHUNK)
        head = read_head(reader, keys)
        # (3) the caller's decisions, before any payload byte is written.
        sink = decide(head) if decide is not None else DiscardSink()
        if sink is None:
            return VerifyReport(head, stream.backend, stopped=True)
        # The installed tree is exactly the archive tree: the head members land in it too.
        members = [(SUMS_NAME, head.sums), (SIG_NAME, head.signature), (META_NAME, head.meta_bytes)]
        if head.delta:
            members.append((DELTA_NAME, head.delta_bytes))
        for name, data in members:
            sink.write(name, len(data), iter((data,)), False)
        return read_payload(reader, head, sink, stream.backend)
    finally:
        stream.close()
