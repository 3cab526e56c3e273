"""The Offline Kit on disk (docs/FORMAT.md "Kit and install phases").

KIT/bundles/<name>/<version>/   verified trees, read-only, exactly the archive tree
KIT/current/<name>              relative symlink, switched by renaming a temporary link over it
KIT/deploy/, KIT/secrets/       site outputs; secrets 0700 with 0600 files
KIT/.state/                     lock, staging/, quarantine/, receipts/, trust/, owners.json

The kit is a security boundary (docs/SECURITY.md): whoever can write `.state/` chooses what the kit
trusts, and whoever can plant a link in it chooses where we write. So every command first checks
(``Kit.check``) that the kit's root, its top-level folders and everything under `.state/` belong to
the running user (or root) and are not writable by group or others, and that no link we did not make
is there; a failure is exit 9 naming the path and the fix. Nothing below the kit root is ever
reached through a symbolic link: paths are checked with lstat, files opened with O_NOFOLLOW
(fsutil.open_under), and the only links are the ones `switch_current` makes, whose targets are
parsed back, never followed blindly.
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import stat
import time
from typing import Dict, Iterator, List, Optional, Sequence, Set

from installer.errors import BadValue, LocalEnvironmentError, UsageError
from installer.fsutil import PathRefused, fsync_dir, lstat_or_none, open_regular, read_fd, read_under, write_atomic
from installer.format.model import NAME_RE, Phase, ReceiptRecord, receipt_file
from installer.format.semver import Version, is_semver
from installer.format.sums import MAX_SUMS_BYTES, SUMS_NAME, bundle_id
from installer.trust.store import TrustedKey, TrustStore, load_trust_paths

TOP_DIRS = ("bundles", "current", "deploy", "secrets", ".state")
STATE_DIRS = ("staging", "quarantine", "receipts", "trust")
OWNERS_FILE = "owners.json"
MAX_RECEIPT_BYTES = 16 * 1024 * 1024   # a receipt lists phases and sites: kilobytes in practice
MAX_OWNERS_BYTES = 64 * 1024 * 1024    # one line per site tag ever moved


def remove_tree(path: str) -> None:
    """rmtree that first makes read-only folders writable (kit folders are 0555); links are removed, never followed."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    for root, dirs, _files in os.walk(path):  # os.walk does not descend into links
        os.chmod(root, 0o700)
        for d in dirs:
            full = os.path.join(root, d)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(path)


def make_read_only(root: str, include_root: bool = True) -> None:
    """Folders 0555, deepest first, each fsynced (the files were made read-only as written)."""
    for folder, _dirs, _files in os.walk(root, topdown=False):
        if folder == root and not include_root:
            continue
        os.chmod(folder, 0o555)
        fsync_dir(folder)


def _who(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _foreign_link(path: str) -> LocalEnvironmentError:
    return LocalEnvironmentError("%s is a symbolic link this tool did not make; refusing to follow it (remove it "
                                 "if you did not put it there)" % path)


def check_entry(path: str, st: os.stat_result, want_dir: Optional[bool] = None) -> None:
    """One kit path: not a link, ours or root's, not writable by group or others (exit 9 with the fix)."""
    if stat.S_ISLNK(st.st_mode):
        raise _foreign_link(path)
    if want_dir is True and not stat.S_ISDIR(st.st_mode):
        raise LocalEnvironmentError("%s should be a folder and is not; the kit is damaged" % path)
    if want_dir is False and not stat.S_ISREG(st.st_mode):
        raise LocalEnvironmentError("%s should be a regular file and is not; the kit is damaged" % path)
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise LocalEnvironmentError(
            "%s belongs to %s, not to you (%s) or root: whoever owns the kit's state chooses what it trusts; "
            "fix with: chown -R %s %s" % (path, _who(st.st_uid), _who(me), _who(me), path))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LocalEnvironmentError("%s is writable by group or others, who could then choose what this kit trusts; "
                                    "fix with: chmod -R go-w %s" % (path, path))


class Kit:
    def __init__(self, root: str) -> None:
        # The user's own path may go through links (their choice); below it nothing is followed.
        self.root = os.path.realpath(root)
        self.bundles = os.path.join(self.root, "bundles")
        self.current = os.path.join(self.root, "current")
        self.deploy = os.path.join(self.root, "deploy")
        self.secrets = os.path.join(self.root, "secrets")
        self.state = os.path.join(self.root, ".state")
        self.staging = os.path.join(self.state, "staging")
        self.quarantine = os.path.join(self.state, "quarantine")
        self.receipts = os.path.join(self.state, "receipts")
        self.trust = os.path.join(self.state, "trust")
        self.lock_path = os.path.join(self.state, "lock")
        self.owners_path = os.path.join(self.state, OWNERS_FILE)

    @classmethod
    def existing(cls, root: str) -> "Kit":
        """A kit a command reads or changes: it must exist and pass the boundary check."""
        kit = cls(root)
        if not kit.exists():
            raise UsageError("the kit %s does not exist" % root)
        kit.check()
        return kit

    def exists(self) -> bool:
        return lstat_or_none(self.state) is not None  # a link there is caught by check()

    # --- the boundary -----------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse (exit 9) a kit that someone other than us (or root) could have changed."""
        check_entry(self.root, os.lstat(self.root), want_dir=True)
        for name in TOP_DIRS:
            path = os.path.join(self.root, name)
            st = lstat_or_none(path)
            if st is not None:
                check_entry(path, st, want_dir=True)
        if lstat_or_none(self.state) is not None:
            self._check_tree(self.state)
        if lstat_or_none(self.current) is not None:
            for name in os.listdir(self.current):
                if NAME_RE.fullmatch(name):
                    self.current_version(name)  # only links of ours, to a version of that name

    def _check_tree(self, folder: str) -> None:
        """Everything under .state: folders and regular files only, each ours and not writable by others."""
        with os.scandir(folder) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                    raise LocalEnvironmentError("%s is neither a file nor a folder; the kit's state holds only those"
                                                % entry.path)
                check_entry(entry.path, st)
                if stat.S_ISDIR(st.st_mode):
                    self._check_tree(entry.path)

    def make_dir(self, path: str, mode: int, enforce: bool) -> None:
        """Create a kit folder (exactly ``mode`` when ``enforce``); an existing one must be a real folder of ours."""
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        st = os.lstat(path)
        check_entry(path, st, want_dir=True)
        if enforce and stat.S_IMODE(st.st_mode) != mode and st.st_uid == os.geteuid():
            os.chmod(path, mode)  # a real folder of ours (checked just above, under a kit nobody else can write)

    def prepare(self) -> None:
        """Create the kit's folders (.state and secrets 0700) after checking what is already there."""
        # Whatever the user's umask (002 is common), nothing this run creates is writable by group or others:
        # the next command's Kit.check would rightly refuse it.
        os.umask(os.umask(0) | 0o022)
        try:
            os.makedirs(os.path.dirname(self.root), exist_ok=True)
            self.make_dir(self.root, 0o755, enforce=False)
            self.check()
            for folder in (self.bundles, self.current, self.deploy):
                self.make_dir(folder, 0o755, enforce=False)
            self.make_dir(self.secrets, 0o700, enforce=True)
            self.make_dir(self.state, 0o700, enforce=True)
            for name in STATE_DIRS:
                self.make_dir(os.path.join(self.state, name), 0o700, enforce=True)
        except OSError as exc:
            raise LocalEnvironmentError("cannot prepare the kit at %s: %s" % (self.root, exc.strerror or exc)) from exc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive, non-blocking flock; the file says who holds it. Never opened through a link."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.lock_path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _foreign_link(self.lock_path) from exc
            raise LocalEnvironmentError("cannot open the kit lock %s: %s" % (self.lock_path, exc.strerror)) from exc
        try:
            check_entry(self.lock_path, os.fstat(fd), want_dir=False)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LocalEnvironmentError("cannot lock the kit (%s): the filesystem may not support flock"
                                                % exc.strerror) from exc
                holder = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
                who = "pid %s on host %s" % (holder[0], holder[1]) if len(holder) >= 2 else "another process"
                raise LocalEnvironmentError("the kit %s is locked by %s; wait for it to finish"
                                            % (self.root, who)) from exc
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
        if not NAME_RE.fullmatch(name) or not is_semver(version):
            raise BadValue("not a bundle name and version: %r %r" % (name, version))
        return os.path.join(self.bundles, name, version)

    def version_rel(self, name: str, version: str) -> str:
        """bundles/<name>/<version> relative to the kit root (for fsutil.open_under)."""
        return os.path.relpath(self.version_dir(name, version), self.root)

    def read_member(self, name: str, version: str, path: str, cap: int) -> bytes:
        """A file of an installed version, read without following any link, at most ``cap`` bytes."""
        return read_under(self.root, self.version_rel(name, version) + "/" + path, cap)

    @staticmethod
    def real_dir(path: str) -> bool:
        """True for a real folder, False when absent; a link or a file there is exit 9 (never followed)."""
        st = lstat_or_none(path)
        if st is None:
            return False
        if stat.S_ISLNK(st.st_mode):
            raise _foreign_link(path)
        if not stat.S_ISDIR(st.st_mode):
            raise LocalEnvironmentError("%s should be a folder and is not; the kit is damaged" % path)
        return True

    def names(self) -> List[str]:
        found: Set[str] = set()
        for folder in (self.bundles, self.current):
            if self.real_dir(folder):
                found.update(n for n in os.listdir(folder) if NAME_RE.fullmatch(n))
        return sorted(found)

    def versions(self, name: str) -> List[str]:
        """Installed versions in SemVer order; a link among them is exit 9."""
        folder = os.path.join(self.bundles, name)
        if not NAME_RE.fullmatch(name) or not self.real_dir(folder):
            return []
        out = []
        for entry in os.listdir(folder):
            try:
                version = Version(entry)
            except ValueError:
                continue
            self.real_dir(os.path.join(folder, entry))
            out.append(version)
        return [v.text for v in sorted(out)]

    def bundle_id_of(self, name: str, version: str) -> Optional[str]:
        folder = self.version_dir(name, version)
        if not self.real_dir(folder):
            return None
        try:
            return bundle_id(self.read_member(name, version, SUMS_NAME, MAX_SUMS_BYTES))
        except FileNotFoundError:
            return None
        except PathRefused as exc:
            raise LocalEnvironmentError("%s %s; the installed version is damaged (offline-bundle verify --kit)"
                                        % (exc.path, exc.why)) from exc

    def current_version(self, name: str) -> Optional[str]:
        """The version current/<name> points at; a link that is not ours (another shape or target) is exit 9."""
        link = os.path.join(self.current, name)
        st = lstat_or_none(link)
        if st is None:
            return None
        if not stat.S_ISLNK(st.st_mode):
            raise LocalEnvironmentError("%s should be a link made by this tool and is not; the kit is damaged" % link)
        target = os.readlink(link)
        prefix = "../bundles/%s/" % name
        version = target[len(prefix):] if target.startswith(prefix) else ""
        if not is_semver(version):
            raise LocalEnvironmentError("%s points at %r, which is not a version of %s in this kit; the kit is damaged "
                                        "or was changed by hand" % (link, target, name))
        return version

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
    def receipts_list(self, name: Optional[str] = None) -> List[ReceiptRecord]:
        """Every receipt, oldest first. One that does not parse is exit 9 naming it: skipping it could
        lower the downgrade floor or hide a version's history."""
        out: List[ReceiptRecord] = []
        if not self.real_dir(self.receipts):
            return out
        for entry in sorted(os.listdir(self.receipts)):
            if not entry.endswith(".json"):
                continue
            receipt = load_receipt(os.path.join(self.receipts, entry))
            if name is None or receipt.name == name:
                out.append(receipt)
        return out

    def admitted(self, name: str) -> List[ReceiptRecord]:
        """Receipts of installs that promoted a version (phase 2 done): what the kit has ever accepted."""
        return [r for r in self.receipts_list(name) if r.version and r.done(Phase.PROMOTE)]

    def highest_current(self, name: str) -> Optional[str]:
        """The highest version ever made current, from the receipts (rollbacks do not lower it)."""
        best = None
        for receipt in self.receipts_list(name):
            if receipt.version and receipt.done(Phase.SWITCH_CURRENT):
                version = Version(receipt.version)
                if best is None or version > best:
                    best = version
        current = self.current_version(name)
        if current and (best is None or Version(current) > best):
            best = Version(current)
        return best.text if best else None

    # --- who owns what on the sites -----------------------------------------------------------
    def owners(self) -> Dict[str, Dict[str, Dict[str, str]]]:
        """{site: {"repository:tag": {name, version, bundle_id}}}: which bundle name moved each site tag last."""
        if lstat_or_none(self.owners_path) is None:
            return {}
        try:
            doc = json.loads(read_fd(open_regular(self.owners_path, MAX_OWNERS_BYTES), MAX_OWNERS_BYTES,
                                     self.owners_path).decode("utf-8"))
        except PathRefused as exc:
            raise LocalEnvironmentError("%s %s; the kit's record of site tags cannot be read"
                                        % (exc.path, exc.why)) from exc
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise LocalEnvironmentError("%s does not parse; the kit's record of who owns each site tag is damaged: "
                                        "restore it from a backup" % self.owners_path) from exc
        if not _owners_shape(doc):
            raise LocalEnvironmentError("%s is not a record of site tags; restore it from a backup" % self.owners_path)
        sites: Dict[str, Dict[str, Dict[str, str]]] = doc["sites"]  # its shape checked just above
        return sites

    def record_owners(self, site: str, tags: Dict[str, Dict[str, str]]) -> None:
        sites = self.owners()
        sites.setdefault(site, {}).update(tags)
        write_atomic(self.owners_path,
                     (json.dumps({"owners": 1, "sites": sites}, sort_keys=True, indent=1) + "\n").encode())

    def free_bytes(self, path: str) -> int:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize


def _owners_shape(doc: object) -> bool:
    if not isinstance(doc, dict) or doc.get("owners") != 1 or not isinstance(doc.get("sites"), dict):
        return False
    for tags in doc["sites"].values():
        if not isinstance(tags, dict):
            return False
        for owner in tags.values():
            if not isinstance(owner, dict) or not NAME_RE.fullmatch(str(owner.get("name"))):
                return False
    return True


def load_receipt(path: str) -> ReceiptRecord:
    """One receipt, checked for the fields the kit relies on; anything else is exit 9 naming the file."""
    where = receipt_file(path, os.path.dirname(path))
    try:
        doc = json.loads(read_fd(open_regular(path, MAX_RECEIPT_BYTES), MAX_RECEIPT_BYTES, path).decode("utf-8"))
    except PathRefused as exc:
        raise where.error(exc.why) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise where.error("does not parse") from exc
    return ReceiptRecord.from_dict(doc, where)


def new_receipt_name() -> str:
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + ".%06dZ-%d.json" % (int(now % 1 * 1e6), os.getpid())


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def resolve_keys(trust: Sequence[str], kit: Optional[Kit]) -> List[TrustedKey]:
    """--trust wins for this run; otherwise the kit's own store."""
    if trust:
        return load_trust_paths(trust)
    if kit is not None:
        return TrustStore(kit.trust).keys()
    return []
