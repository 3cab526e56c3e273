"""A small tar header reader (ustar + PAX local headers) for untrusted streams.

``tarfile`` would silently apply PAX global headers, GNU long names and sparse maps, and its
extraction filters are missing from many deployed Pythons. This reader surfaces every header
as it is so the caller can refuse it, and never touches the filesystem.
"""

import re
from typing import Dict, Iterator, Optional

from installer.errors import InvalidInput, UnsafeMember
from installer.fsutil import Readable

BLOCK = 512
MAX_PAX_BYTES = 64 * 1024
MAX_TRAILING_BYTES = 1024 * 1024
REGULAR_TYPES = (b"0", b"\0")
TYPE_NAMES = {
    b"1": "hard link", b"2": "symbolic link", b"3": "character device", b"4": "block device",
    b"5": "directory", b"6": "FIFO", b"7": "contiguous file", b"g": "PAX global header",
    b"L": "GNU long name", b"K": "GNU long link name", b"S": "GNU sparse file",
    b"x": "PAX header", b"V": "volume label", b"M": "multi-volume continuation",
}


class Member:
    """One tar entry as the stream declared it (after applying its own PAX 'x' header)."""

    __slots__ = ("path", "size", "typeflag", "linkname")

    def __init__(self, path: str, size: int, typeflag: bytes, linkname: str) -> None:
        self.path = path
        self.size = size
        self.typeflag = typeflag
        self.linkname = linkname

    @property
    def is_regular(self) -> bool:
        return self.typeflag in REGULAR_TYPES

    @property
    def type_name(self) -> str:
        return "regular file" if self.is_regular else TYPE_NAMES.get(self.typeflag, "entry of type %r" % self.typeflag)


def _octal(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for big numbers
        if field[0] & 0x40:
            raise InvalidInput("tar header has a negative %s" % what)
        value = field[0] & 0x3F
        for b in field[1:]:
            value = (value << 8) | b
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not re.fullmatch(rb"[0-7]+", text):  # as strict as GNU tar: no sign, no '_', no '0o'
        raise InvalidInput("tar header has a malformed %s field; the stream is not a tar archive" % what)
    return int(text, 8)


def _name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeMember("a member name is not UTF-8: %r" % raw[:80]) from exc


def _parse_pax(data: bytes) -> Dict[str, bytes]:
    records: Dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            raise InvalidInput("malformed PAX header")
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise InvalidInput("malformed PAX header") from exc
        record = data[space + 1:pos + length]
        if length <= 0 or pos + length > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise InvalidInput("malformed PAX header")
        key, value = record[:-1].split(b"=", 1)
        records[key.decode("utf-8", "replace")] = value
        pos += length
    return records


class TarReader:
    """Iterate members of a tar stream read from ``stream`` (any object with ``read(n)``)."""

    def __init__(self, stream: Readable, chunk_size: int = 1 << 20) -> None:
        self._stream = stream
        self._chunk = chunk_size
        self._remaining = 0  # payload bytes of the current member not yet read
        self._padding = 0
        self.offset = 0  # bytes of tar consumed, for messages

    def _read(self, n: int) -> bytes:
        parts = []
        want = n
        while want:
            data = self._stream.read(want)
            if not data:
                break
            parts.append(data)
            want -= len(data)
        out = b"".join(parts)
        self.offset += len(out)
        return out

    def _read_exact(self, n: int, what: str) -> bytes:
        if n < 0:
            raise InvalidInput("a tar header declares a negative size (in %s)" % what)
        data = self._read(n)
        if len(data) != n:
            raise InvalidInput("the archive is truncated (in %s, at byte %d of the tar stream)" % (what, self.offset))
        return data

    def _header_block(self) -> Optional[bytes]:
        block = self._read(BLOCK)
        if not block:
            raise InvalidInput("the archive is truncated: the tar stream ends without its end-of-archive marker")
        if len(block) != BLOCK:
            raise InvalidInput("the archive is truncated (in a tar header, at byte %d)" % self.offset)
        if block == b"\0" * BLOCK:
            return None
        stored = _octal(block[148:156], "checksum")
        computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
        if stored != computed:
            raise InvalidInput("a tar header checksum is wrong at byte %d; the stream is not a valid tar archive"
                               % (self.offset - BLOCK))
        return block

    def _finish_member(self) -> None:
        while self._remaining:
            self._read_exact(min(self._remaining, self._chunk), "member data")
            self._remaining -= min(self._remaining, self._chunk)
        if self._padding:
            self._read_exact(self._padding, "member padding")
            self._padding = 0

    def _check_trailer(self) -> None:
        # End of archive: two zero blocks, then only zero padding up to the end of the stream.
        second = self._read(BLOCK)
        if second and second != b"\0" * BLOCK:
            raise InvalidInput("the tar stream has data after its end-of-archive marker")
        seen = 0
        while True:
            data = self._read(64 * 1024)
            if not data:
                return
            if data.count(0) != len(data):
                raise InvalidInput("the archive has garbage after its end-of-archive marker")
            seen += len(data)
            if seen > MAX_TRAILING_BYTES:
                raise InvalidInput("the archive has more than 1 MiB of padding after its end-of-archive marker")

    def next(self) -> Optional[Member]:
        """The next member's header, or None at a clean end of archive."""
        self._finish_member()
        pax: Dict[str, bytes] = {}
        while True:
            block = self._header_block()
            if block is None:
                if pax:
                    raise InvalidInput("the archive ends right after a PAX header")
                self._check_trailer()
                return None
            typeflag = block[156:157]
            size = _octal(block[124:136], "size")
            if typeflag == b"x":
                if size > MAX_PAX_BYTES:
                    raise InvalidInput("a PAX header is larger than %d bytes" % MAX_PAX_BYTES)
                data = self._read_exact(size, "a PAX header")
                self._read_exact(-size % BLOCK, "PAX header padding")
                pax = _parse_pax(data)
                if any(k.startswith("GNU.sparse") for k in pax):
                    raise UnsafeMember("a member is a GNU sparse file, which the format does not allow")
                continue
            name = block[0:100].split(b"\0", 1)[0]
            if block[257:263] == b"ustar\0":
                prefix = block[345:500].split(b"\0", 1)[0]
                if prefix:
                    name = prefix + b"/" + name
            if "path" in pax:
                name = pax["path"]
            if "size" in pax:
                if not re.fullmatch(rb"[0-9]{1,20}", pax["size"]):
                    raise InvalidInput("a PAX header has a malformed size %r" % pax["size"][:40])
                size = int(pax["size"])
            linkname = block[157:257].split(b"\0", 1)[0]
            if "linkpath" in pax:
                linkname = pax["linkpath"]
            member = Member(_name(name), size, typeflag, linkname.decode("utf-8", "replace"))
            # As GNU tar reads it: hard links and folders carry no data, anything else skips its size,
            # so our member list and `tar -tf` agree even for hand-made headers.
            self._remaining = 0 if member.typeflag in (b"1", b"5") else size
            self._padding = -self._remaining % BLOCK
            return member

    def chunks(self) -> Iterator[bytes]:
        """The current member's payload in chunks; consumes it (and its padding)."""
        while self._remaining:
            n = min(self._remaining, self._chunk)
            data = self._read_exact(n, "member data")
            self._remaining -= n
            yield data
        if self._padding:
            self._read_exact(self._padding, "member padding")
            self._padding = 0


# --- writing: explicit, deterministic headers (used by the builder and by the Docker loader) ------
MAX_OCTAL_SIZE = 8 ** 11 - 1
PAX_NAME = b"././@PaxHeader"


def _octal_field(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def header_block(name: bytes, size: int, mtime: int, mode: int, typeflag: bytes) -> bytes:
    """One ustar header block: uid/gid 0, empty owner names, the checksum filled in."""
    block = bytearray(BLOCK)
    block[0:len(name)] = name
    block[100:108] = _octal_field(mode, 8)
    block[108:116] = _octal_field(0, 8)
    block[116:124] = _octal_field(0, 8)
    block[124:136] = _octal_field(size, 12)
    block[136:148] = _octal_field(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    checksum = sum(block)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def member_header(path: str, size: int, mtime: int, executable: bool) -> bytes:
    """ustar header, preceded by a PAX 'x' header when the path or size does not fit ustar."""
    raw = path.encode("utf-8")
    records = b""
    if len(raw) > 100:
        records += _pax_record("path", raw)
    if size > MAX_OCTAL_SIZE:
        records += _pax_record("size", str(size).encode())
    out = b""
    if records:
        out = header_block(PAX_NAME, len(records), mtime, 0o644, b"x") + records + b"\0" * (-len(records) % BLOCK)
    name = raw if len(raw) <= 100 else raw[-100:].lstrip(b"/")
    return out + header_block(name, size if size <= MAX_OCTAL_SIZE else 0, mtime, 0o755 if executable else 0o644, b"0")
