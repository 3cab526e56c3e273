"""The kit side of deltas: what a kit holds (`inventory`), and finding an omitted file in it by sha256.

A delta's omitted files are found by sha256 from the installed versions' own signed SHA256SUMS (the inventory
is never trusted) and re-hashed as they are linked or copied into staging. The delta document itself is
format (installer/format/delta.py).
"""

import errno
import hashlib
import os
import stat
from typing import Dict, List, Optional, Set, Tuple, TypedDict

from installer.format.delta import INVENTORY_KIND
from installer.errors import ContentMismatch, InvalidInput, LocalEnvironmentError, UnsafeMember
from installer.fsutil import CHUNK, PathRefused, open_under, sha256_fd, write_all
from installer.kit.layout import Kit
from installer.format.sums import MAX_SUMS_BYTES, SUMS_NAME, bundle_id, parse_sums


class InventoryDoc(TypedDict):
    """What a kit holds, as input for delta builds (bundler/delta.py reads it): no paths, hosts or registries."""

    kind: str
    format: int
    bundles: List[Dict[str, str]]  # {name, version, bundle_id}
    sha256: List[str]              # every digest the installed versions' SHA256SUMS list, sorted


def inventory(kit_dir: str) -> InventoryDoc:
    kit = Kit.existing(kit_dir)
    bundles: List[Dict[str, str]] = []
    digests: Set[str] = set()
    for name in kit.names():
        for version in kit.versions(name):
            sums = _signed_list(kit, name, version)
            bundles.append({"name": name, "version": version, "bundle_id": bundle_id(sums)})
            digests.update(parse_sums(sums).values())
    return {"kind": INVENTORY_KIND, "format": 1, "bundles": bundles, "sha256": sorted(digests)}


def _signed_list(kit: Kit, name: str, version: str) -> bytes:
    try:
        return kit.read_member(name, version, SUMS_NAME, MAX_SUMS_BYTES)
    except (PathRefused, OSError) as exc:
        raise LocalEnvironmentError("the SHA256SUMS of %s %s cannot be read (%s); see offline-bundle verify --kit"
                                    % (name, version,
                                       getattr(exc, "why", None) or getattr(exc, "strerror", exc))) from exc


class KitIndex:
    """sha256 -> the installed files that should have it, from each version's signed SHA256SUMS."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.files: Dict[str, List[str]] = {}  # digest -> paths relative to the kit root
        for name in kit.names():
            for version in kit.versions(name):
                try:
                    entries = parse_sums(kit.read_member(name, version, SUMS_NAME, MAX_SUMS_BYTES))
                except (OSError, PathRefused, InvalidInput, UnsafeMember):
                    continue  # a damaged version serves no delta; verify --kit reports it
                rel = kit.version_rel(name, version)
                for path, digest in entries.items():
                    self.files.setdefault(digest, []).append(rel + "/" + path)

    def open(self, digest: str) -> Tuple[Optional[int], str]:
        """(descriptor, path) of an installed regular file whose bytes hash to ``digest`` (re-hashed now), or
        (None, "") when the kit holds no good copy."""
        for rel in self.files.get(digest, []):
            try:
                fd = open_under(self.kit.root, rel)
            except (OSError, PathRefused):
                continue
            if sha256_fd(fd)[0] == digest:
                return fd, os.path.join(self.kit.root, *rel.split("/"))
            os.close(fd)
        return None, ""


def materialize(index: KitIndex, digest: str, dest: str, executable: bool, path: str) -> int:
    """Put a verified copy of the kit's file with ``digest`` at ``dest`` with exactly the signed mode.

    A hard link when the kit's copy already has that mode (files are never chmod-ed once installed, so
    a link shares nothing that can change); a copy otherwise, so a file signed `executable: false` is
    never installed 0555 because an older version had it so (issue 10, point 8)."""
    fd, source = index.open(digest)
    if fd is None:
        raise ContentMismatch("the delta omits %s (sha256 %s) and no file of this kit has that sha256 any more (a "
                              "copy changed since it was installed does not count): install the full bundle, or a "
                              "delta built against this kit's inventory" % (path, digest))
    try:
        st = os.fstat(fd)
        want = 0o555 if executable else 0o444
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        if stat.S_IMODE(st.st_mode) == want and _link_same(source, st, dest):
            return st.st_size
        return _copy_from(fd, dest, want, digest, path)
    finally:
        os.close(fd)


def _link_same(source: str, st: os.stat_result, dest: str) -> bool:
    """Link the very inode that was hashed: link the path (never through a link), then prove ``dest`` is that
    inode; if the path was swapped meanwhile, undo and let the caller copy from the hashed descriptor."""
    try:
        os.link(source, dest, follow_symlinks=False)
    except OSError:
        return False
    linked = os.lstat(dest)
    if (linked.st_dev, linked.st_ino) != (st.st_dev, st.st_ino):
        os.unlink(dest)
        return False
    return True


def _copy_from(fd: int, dest: str, mode: int, digest: str, path: str) -> int:
    out_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    h = hashlib.sha256()
    size = 0
    try:
        while True:
            data = os.pread(fd, CHUNK, size)
            if not data:
                break
            h.update(data)
            write_all(out_fd, data)
            size += len(data)
        os.fchmod(out_fd, mode)
        os.fsync(out_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise LocalEnvironmentError("no space left on the kit's filesystem while copying %s" % path) from exc
        raise
    finally:
        os.close(out_fd)
    if h.hexdigest() != digest:  # it changed while we copied it
        raise ContentMismatch("the kit's copy of %s changed while it was copied" % path)
    return size
