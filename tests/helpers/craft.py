"""Craft archives byte by byte for tamper and attack cases (a compromised or buggy builder).

``read_entries`` turns a real bundle into a list of Entry; tests change the list and
``write_archive`` writes it back, optionally re-signing SHA256SUMS with a key of their choice.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import zstandard

from installer.format.tarstream import BLOCK, header_block as _header, member_header
from bundler.seal.keys import load_signer
from installer.format.tarstream import TarReader
from installer.format.zstd import open_decompressed


@dataclass
class Entry:
    path: str
    data: bytes = b""
    typeflag: bytes = b"0"
    linkname: str = ""
    size: Optional[int] = None      # a header size other than len(data)
    raw_header: Optional[bytes] = None  # full control

    def encode(self) -> bytes:
        if self.raw_header is not None:
            head = self.raw_header
        elif self.typeflag == b"0" and self.size is None:
            head = member_header(self.path, len(self.data), 0, False)
        else:
            size = len(self.data) if self.size is None else self.size
            head = bytearray(_header(self.path.encode("utf-8", "surrogateescape")[:100], size, 0, 0o644, self.typeflag))
            if self.linkname:
                head[157:157 + len(self.linkname)] = self.linkname.encode()
                head[148:156] = b" " * 8
                head[148:156] = b"%06o\0 " % sum(head)
            head = bytes(head)
        return head + self.data + b"\0" * (-len(self.data) % BLOCK)


def read_entries(archive: Path) -> List[Entry]:
    out = []
    with open(archive, "rb") as fh:
        stream = open_decompressed(fh)
        reader = TarReader(stream)
        while True:
            m = reader.next()
            if m is None:
                break
            out.append(Entry(m.path, b"".join(reader.chunks())))
    return out


def tar_bytes(entries: List[Entry], end: bool = True) -> bytes:
    body = b"".join(e.encode() for e in entries)
    if end:
        body += b"\0" * (2 * BLOCK)
        body += b"\0" * (-len(body) % 10240)
    return body


def write_archive(entries: List[Entry], dest: Path, end: bool = True) -> Path:
    dest.write_bytes(zstandard.ZstdCompressor(level=1).compress(tar_bytes(entries, end)))
    return dest


def get(entries: List[Entry], path: str) -> Entry:
    return next(e for e in entries if e.path == path)


def sums_of(entries: List[Entry], skip=("SHA256SUMS", "SHA256SUMS.sig")) -> bytes:
    listed = sorted((e for e in entries if e.path not in skip and e.typeflag == b"0"), key=lambda e: e.path.encode())
    return "".join("%s  %s\n" % (hashlib.sha256(e.data).hexdigest(), e.path) for e in listed).encode()


def resign(entries: List[Entry], key: Path, sums: Optional[bytes] = None) -> List[Entry]:
    """Recompute SHA256SUMS (or use ``sums``) and sign it with ``key``: a 'compromised builder'."""
    sums = sums_of(entries) if sums is None else sums
    get(entries, "SHA256SUMS").data = sums
    get(entries, "SHA256SUMS.sig").data = load_signer(str(key)).sign(sums)
    return entries


def edit_meta(entries: List[Entry], change) -> List[Entry]:
    """Change bundle.json (a dict) with ``change`` and keep it canonical."""
    e = get(entries, "bundle.json")
    doc = json.loads(e.data)
    change(doc)
    e.data = (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
    return entries
