"""Staging, promotion and quarantine: how a verified version enters the kit, or is set aside.

KIT/.state/staging/<bundle_id[:16]>-<pid>/tree  members written as they verify (0444/0555, fsynced)
KIT/bundles/<name>/<version>/                    the staged tree renamed in whole (phase 2), then read-only
KIT/.state/quarantine/<receipt>/                 a failed staging folder with reason.json and members.txt

A version folder appears in bundles/ only by one rename of a fully verified tree; anything that fails
before that leaves bundles/ and current/ untouched, and its staging folder is quarantined with its reason.
What a killed run leaves behind is cleared (`clear_debris`) before the next run does anything else.
"""

import errno
import json
import os
from typing import Iterator, List, Optional

from installer import faults
from installer.errors import InternalError, LocalEnvironmentError, UnsafeMember
from installer.format.imagecheck import MAX_INDEX_BYTES
from installer.format.meta import canonical_json
from installer.format.paths import contained
from installer.fsutil import fsync_dir, read_under, write_all, write_atomic
from installer.kit.deltaindex import KitIndex, materialize
from installer.kit.layout import Kit, make_read_only, new_receipt_name, remove_tree, utc_now

SPACE_MARGIN = 16 * 1024 * 1024


class StagingSink:
    """Writes verified-as-they-stream members under a staging root, read-only, fsynced."""

    def __init__(self, root: str, kit: Optional[Kit] = None) -> None:
        self.root = root
        self.kit = kit
        self._index: Optional[KitIndex] = None
        os.makedirs(root, mode=0o755)

    def materialize(self, path: str, digest: str, size: int, executable: bool) -> bytes:
        """A delta's omitted file, from the kit by sha256 (re-hashed as it is linked or copied, with its signed
        mode); its bytes are returned when it is small enough to be a manifest the image check reads."""
        if self._index is None:
            if self.kit is None:
                raise InternalError("a delta's omitted files can only be found in a kit")
            self._index = KitIndex(self.kit)
        dest = contained(self.root, path)
        materialize(self._index, digest, dest, executable, path)
        return read_under(self.root, path, size) if size <= MAX_INDEX_BYTES else b""

    def write(self, path: str, size: int, chunks: Iterator[bytes], executable: bool) -> None:
        full = contained(self.root, path)
        os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(full, flags, 0o600)
        except FileExistsError as exc:
            raise UnsafeMember("member %s would overwrite a file already written" % path) from exc
        try:
            for chunk in chunks:
                write_all(fd, chunk)
            os.fchmod(fd, 0o555 if executable else 0o444)
            os.fsync(fd)
            if not path.startswith(("SHA256SUMS", "bundle.json", "DELTA.json")):
                faults.point("mid-payload")
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise LocalEnvironmentError("no space left on the kit's filesystem while writing %s" % path) from exc
            raise LocalEnvironmentError("cannot write %s into the kit: %s" % (path, exc.strerror)) from exc
        finally:
            os.close(fd)


class Staging:
    """One install's staging folder."""

    def __init__(self, kit: Kit, bundle_id: str, needed_bytes: int) -> None:
        free = kit.free_bytes(kit.staging)
        needed = needed_bytes + SPACE_MARGIN
        if free < needed:
            raise LocalEnvironmentError("not enough free space in the kit: %d MiB needed, %d MiB free"
                                        % (needed >> 20, free >> 20))
        self.kit = kit
        self.folder = os.path.join(kit.staging, "%s-%d" % (bundle_id[:16], os.getpid()))
        self.tree = os.path.join(self.folder, "tree")

    def create(self) -> StagingSink:
        os.makedirs(self.folder, mode=0o700)  # explicit: a umask of 002 must not make .state group-writable
        faults.point("after-head")
        return StagingSink(self.tree, self.kit)

    def exists(self) -> bool:
        return os.path.isdir(self.folder)

    def promote(self, name: str, version: str) -> str:
        """Phase 2: rename the verified tree into bundles/, then make it read-only and durable."""
        parent = os.path.join(self.kit.bundles, name)
        os.makedirs(parent, mode=0o755, exist_ok=True)  # explicit, whatever the umask
        # A version folder is renamed while still writable (renaming a 0555 folder fails for non-root).
        make_read_only(self.tree, include_root=False)
        final = self.kit.version_dir(name, version)
        try:
            os.rename(self.tree, final)
        except OSError as exc:
            raise LocalEnvironmentError("cannot move the verified tree into %s: %s" % (final, exc.strerror)) from exc
        os.chmod(final, 0o555)
        fsync_dir(final)
        fsync_dir(parent)
        fsync_dir(self.kit.bundles)
        os.rmdir(self.folder)
        return final

    def discard(self) -> None:
        remove_tree(self.folder)

    def quarantine(self, reason: str, archive: str, bundle_id: Optional[str], sums: bytes,
                   keep_payload: bool) -> str:
        """Move the failed staging folder aside with its reason; drop the payload unless asked to keep it.

        The payload goes first (so a full disk has room for the record), and the record is best-effort:
        it must never replace the error that made the install fail."""
        listing: List[str] = []
        if os.path.isdir(self.tree):
            for folder, _dirs, files in os.walk(self.tree):
                listing += [os.path.relpath(os.path.join(folder, f), self.tree) for f in files]
            if not keep_payload:
                remove_tree(self.tree)
            else:
                make_read_only(self.tree)  # kept for inspection, changed by nobody
        dest = os.path.join(self.kit.quarantine, os.path.basename(new_receipt_name())[:-5])
        os.rename(self.folder, dest)
        info = {"reason": reason, "at": utc_now(), "archive": os.path.abspath(archive),
                "payload_kept": keep_payload, "bundle_id": bundle_id}
        try:
            write_atomic(os.path.join(dest, "reason.json"), canonical_json(info))
            if listing:
                write_atomic(os.path.join(dest, "members.txt"), "".join(p + "\n" for p in sorted(listing)).encode())
            if sums:
                write_atomic(os.path.join(dest, "SHA256SUMS"), sums)
        except OSError:
            pass
        return dest


def clear_debris(kit: Kit) -> None:
    """Staging left by a killed run is quarantined before anything else happens (payload deleted first),
    and the temporary names a killed run leaves (receipts, current/ links, deploy outputs) are removed."""
    for entry in sorted(os.listdir(kit.staging)):
        path = os.path.join(kit.staging, entry)
        remove_tree(os.path.join(path, "tree"))
        dest = os.path.join(kit.quarantine, "debris-" + entry)
        if os.path.exists(dest):
            remove_tree(dest)
        os.rename(path, dest)
        write_atomic(os.path.join(dest, "reason.json"),
                     json.dumps({"reason": "left behind by an interrupted install", "at": utc_now()}).encode())
    for folder in (kit.receipts, kit.current):
        for entry in os.listdir(folder):
            if ".tmp-" in entry:
                remove_tree(os.path.join(folder, entry))
    for root, dirs, _files in os.walk(kit.deploy):
        for d in list(dirs):
            if ".tmp-" in d or ".old-" in d:
                remove_tree(os.path.join(root, d))
                dirs.remove(d)
