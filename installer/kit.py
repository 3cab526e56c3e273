"""The Offline Kit on disk (PRODUCT.md "Kit and install phases").

KIT/bundles/<name>/<version>/   verified trees, read-only, exactly the archive tree
KIT/current/<name>              relative symlink, switched by renaming a temporary link over it
KIT/deploy/, KIT/secrets/       site outputs; secrets 0700 with 0600 files
KIT/.state/                     lock, staging/, quarantine/, receipts/, trust/, runtime/
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import time
from typing import Dict, Iterator, List, Optional

from .errors import LocalEnvironmentError
from .fsutil import fsync_dir
from .semver import Version
from .sums import SUMS_NAME, bundle_id


def remove_tree(path: str) -> None:
    """rmtree that first makes read-only folders writable (kit folders are 0555)."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    for root, dirs, _files in os.walk(path):
        os.chmod(root, 0o700)
        for d in dirs:
            full = os.path.join(root, d)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(path)


def make_read_only(root: str, include_root: bool = True) -> None:
    """Folders 0555, deepest first, each fsynced (the files were made read-only as written)."""
    for folder, dirs, _files in os.walk(root, topdown=False):
        if folder == root and not include_root:
            continue
        os.chmod(folder, 0o555)
        fsync_dir(folder)


class Kit:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.bundles = os.path.join(self.root, "bundles")
        self.current = os.path.join(self.root, "current")
        self.deploy = os.path.join(self.root, "deploy")
        self.secrets = os.path.join(self.root, "secrets")
        self.state = os.path.join(self.root, ".state")
        self.staging = os.path.join(self.state, "staging")
        self.quarantine = os.path.join(self.state, "quarantine")
        self.receipts = os.path.join(self.state, "receipts")
        self.trust = os.path.join(self.state, "trust")
        self.runtime = os.path.join(self.state, "runtime")
        self.lock_path = os.path.join(self.state, "lock")

    def exists(self) -> bool:
        return os.path.isdir(self.state)

    def prepare(self) -> None:
        try:
            for folder in (self.root, self.bundles, self.current, self.deploy, self.state, self.staging,
                           self.quarantine, self.receipts, self.runtime):
                os.makedirs(folder, exist_ok=True)
            os.makedirs(self.secrets, mode=0o700, exist_ok=True)
            os.chmod(self.secrets, 0o700)
            os.makedirs(self.trust, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise LocalEnvironmentError("cannot prepare the kit at %s: %s" % (self.root, exc.strerror or exc))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive, non-blocking flock; the file says who holds it."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LocalEnvironmentError("cannot open the kit lock %s: %s" % (self.lock_path, exc.strerror))
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LocalEnvironmentError("cannot lock the kit (%s): the filesystem may not support flock" % exc.strerror)
                holder = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
                who = "pid %s on host %s" % (holder[0], holder[1]) if len(holder) >= 2 else "another process"
                raise LocalEnvironmentError("the kit %s is locked by %s; wait for it to finish" % (self.root, who))
            os.ftruncate(fd, 0)
            os.pwrite(fd, ("%d %s\n" % (os.getpid(), socket.gethostname())).encode(), 0)
            os.fsync(fd)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock

    # --- versions -------------------------------------------------------------------------
    def version_dir(self, name: str, version: str) -> str:
        return os.path.join(self.bundles, name, version)

    def names(self) -> List[str]:
        found = set()
        for folder in (self.bundles, self.current):
            if os.path.isdir(folder):
                found.update(n for n in os.listdir(folder) if not n.startswith("."))
        return sorted(found)

    def versions(self, name: str) -> List[str]:
        folder = os.path.join(self.bundles, name)
        if not os.path.isdir(folder):
            return []
        out = []
        for entry in os.listdir(folder):
            try:
                out.append(Version(entry))
            except ValueError:
                continue
        return [v.text for v in sorted(out)]

    def bundle_id_of(self, name: str, version: str) -> Optional[str]:
        try:
            with open(os.path.join(self.version_dir(name, version), SUMS_NAME), "rb") as fh:
                return bundle_id(fh.read())
        except FileNotFoundError:
            return None

    def current_version(self, name: str) -> Optional[str]:
        link = os.path.join(self.current, name)
        try:
            target = os.readlink(link)
        except OSError:
            return None
        return os.path.basename(target.rstrip("/"))

    def switch_current(self, name: str, version: str) -> None:
        """Atomically point current/<name> at bundles/<name>/<version> (relative link)."""
        link = os.path.join(self.current, name)
        tmp = os.path.join(self.current, ".%s.tmp-%d" % (name, os.getpid()))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.path.join("..", "bundles", name, version), tmp)
        os.replace(tmp, link)
        fsync_dir(self.current)

    # --- receipts ---------------------------------------------------------------------------
    def receipts_list(self, name: Optional[str] = None) -> List[Dict]:
        out = []
        if not os.path.isdir(self.receipts):
            return out
        for entry in sorted(os.listdir(self.receipts)):
            if not entry.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.receipts, entry), encoding="utf-8") as fh:
                    receipt = json.load(fh)
            except (OSError, ValueError):
                continue
            if isinstance(receipt, dict) and (name is None or receipt.get("name") == name):
                receipt["_file"] = entry
                out.append(receipt)
        return out

    def highest_current(self, name: str) -> Optional[str]:
        """The highest version ever made current, from the receipts (rollbacks do not lower it)."""
        best = None
        for receipt in self.receipts_list(name):
            if any(p.get("phase") == 5 and p.get("status") == "done" for p in receipt.get("phases", [])):
                version = Version(receipt["version"])
                if best is None or version > best:
                    best = version
        current = self.current_version(name)
        if current:
            with contextlib.suppress(ValueError):
                if best is None or Version(current) > best:
                    best = Version(current)
        return best.text if best else None

    def free_bytes(self, path: str) -> int:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize


def new_receipt_name() -> str:
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + ".%06dZ-%d.json" % (int(now % 1 * 1e6), os.getpid())


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())