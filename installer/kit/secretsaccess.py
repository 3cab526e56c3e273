"""Who may read the site's secrets: `install --secrets-group GID` / `--secrets-owner UID:GID` (docs/TLS.md).

KIT/secrets holds 0700 folders and 0600 files: only the installing user can read them. The stack's compose
containers run as their images' own non-root users (Prometheus 65534; Loki, Tempo and the collector 10001), so
they could not read the TLS key or the token they mount. The grant makes exactly the files a container needs
readable by one group (and, with --secrets-owner, owned by one user), and no one else:

- each site folder the bundle's compose variables mount (deploy.compose.env: tls, token, s3) becomes 0750,
  group GID (owner UID with --secrets-owner);
- in the TLS folder, only the files the stack uses (the CA certificate and the shared pair, TlsSpec.in_use)
  become 0640 with that group: the CA key, the client key and the per-service keys stay 0600;
- in the token and s3 folders, every regular file becomes 0640 with that group.

Nothing is followed: a folder or file that is a link, or anything that is not a regular file, is refused
(exit 9) before any mode changes; entries that are not files (a subfolder) are left alone and unreadable to
the group. Compose gives every container the group (`group_add: ["${VAR}"]`, where VAR is the variable the
bundle maps to `secrets-gid`), so the containers keep their own users and data volumes.
"""

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from installer.errors import LocalEnvironmentError, UsageError
from installer.fsutil import kind_of_file, lstat_or_none

MAX_ID = 2 ** 31 - 2          # a uid/gid the kernel accepts (2^32-1 is "no change" to chown)
FOLDER_MODE = 0o750
FILE_MODE = 0o640
_NUMBER = re.compile(r"[0-9]{1,10}")
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?")   # a POSIX user or group name (useradd's own rule)

_O_DIR = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_O_FILE = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class SecretsAccess:
    """Who may read: a group, and optionally an owner."""

    gid: int
    uid: Optional[int] = None


@dataclass(frozen=True)
class Granted:
    """What the grant did: the group, the owner (None: unchanged), and the paths made readable (kit-relative)."""

    gid: int
    uid: Optional[int]
    paths: List[str]


def _id(text: str, what: str, lookup: Callable[[str], int]) -> int:
    if _NUMBER.fullmatch(text):
        value = int(text)
        if value > MAX_ID:
            raise UsageError("%s %s is out of range (at most %d)" % (what, text, MAX_ID))
        return value
    if not _NAME.fullmatch(text):
        raise UsageError("%s is neither a number nor a %s name" % (what, what.split()[-1]))
    try:
        return lookup(text)
    except KeyError:
        raise UsageError("%s %s does not exist on this host; give its number" % (what, text)) from None


def _group(name: str) -> int:
    return grp.getgrnam(name).gr_gid


def _user(name: str) -> int:
    return pwd.getpwnam(name).pw_uid


def parse_access(group: Optional[str], owner: Optional[str]) -> Optional[SecretsAccess]:
    """--secrets-group GID and --secrets-owner UID:GID (numbers or names), checked before anything is read;
    at most one of the two."""
    if group is not None and owner is not None:
        raise UsageError("give --secrets-group or --secrets-owner, not both")
    if group is not None:
        return SecretsAccess(_id(group.strip(), "the secrets group", _group))
    if owner is not None:
        user, sep, group_part = owner.strip().partition(":")
        if not sep or not user or not group_part:
            raise UsageError("--secrets-owner takes UID:GID (numbers or names), e.g. 10001:10001")
        return SecretsAccess(_id(group_part, "the secrets group", _group),
                             _id(user, "the secrets user", _user))
    return None


def _open_folder(path: str) -> Optional[int]:
    st = lstat_or_none(path)
    if st is None:
        return None
    if not stat.S_ISDIR(st.st_mode):
        raise LocalEnvironmentError("%s is %s, not a folder; refusing to grant access through it"
                                    % (path, kind_of_file(st.st_mode)))
    try:
        return os.open(path, _O_DIR)
    except OSError as exc:  # swapped for a link (ELOOP) or removed since the lstat
        raise LocalEnvironmentError("%s changed while it was being opened (%s); refusing to grant access through it"
                                    % (path, exc.strerror)) from exc


def _plan(folder: str, only: Optional[Sequence[str]]) -> Tuple[int, List[str]]:
    """The folder's descriptor and the regular files in it to grant; a link or special file named is exit 9."""
    fd = _open_folder(folder)
    if fd is None:
        return -1, []
    names = sorted(only) if only is not None else sorted(os.listdir(fd))
    chosen = []
    try:
        for name in names:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) and only is None:
                continue  # a subfolder stays as it is: no container needs it
            if not stat.S_ISREG(st.st_mode):
                raise LocalEnvironmentError("%s is %s; refusing to grant access to it"
                                            % (os.path.join(folder, name), kind_of_file(st.st_mode)))
            chosen.append(name)
    except BaseException:
        os.close(fd)
        raise
    return fd, chosen


def grant(secrets: str, folders: Dict[str, Optional[Sequence[str]]], access: SecretsAccess,
          kit_root: str) -> Granted:
    """Make ``folders`` (name under ``secrets`` -> the file names to grant, None for every regular file)
    readable by ``access``; returns the kit-relative paths granted. All links and special files are refused
    before the first mode changes."""
    plans = []
    try:
        for name in sorted(folders):
            fd, files = _plan(os.path.join(secrets, name), folders[name])
            if fd >= 0:
                plans.append((name, fd, files))
        done: List[str] = []
        uid = -1 if access.uid is None else access.uid
        for name, fd, files in plans:
            folder = os.path.join(secrets, name)
            try:
                for file_name in files:
                    leaf = os.open(file_name, _O_FILE, dir_fd=fd)
                    try:
                        if not stat.S_ISREG(os.fstat(leaf).st_mode):
                            raise LocalEnvironmentError("%s is not a regular file; refusing to grant access to it"
                                                        % os.path.join(folder, file_name))
                        os.fchown(leaf, uid, access.gid)
                        os.fchmod(leaf, FILE_MODE)
                    finally:
                        os.close(leaf)
                    done.append(os.path.relpath(os.path.join(folder, file_name), kit_root))
                os.fchown(fd, uid, access.gid)
                os.fchmod(fd, FOLDER_MODE)
            except PermissionError as exc:
                raise LocalEnvironmentError("cannot give %s to %s: %s (run the install as root, or as the owner "
                                            "of the files and a member of the group)"
                                            % (folder, _who(access), exc.strerror)) from exc
            except OSError as exc:  # a file swapped for a link (ELOOP) or removed after it was listed
                raise LocalEnvironmentError("%s changed while access was being granted (%s); nothing in it was "
                                            "followed" % (folder, exc.strerror)) from exc
            done.append(os.path.relpath(folder, kit_root) + "/")
        return Granted(access.gid, access.uid, done)
    finally:
        for _, fd, _ in plans:
            os.close(fd)


def _who(access: SecretsAccess) -> str:
    return ("group %d" % access.gid) if access.uid is None else ("user %d, group %d" % (access.uid, access.gid))


def granted_gid(secrets: str, names: Sequence[str]) -> Optional[int]:
    """The group the site folders ``names`` were granted to (group r-x and nothing for others, as `grant`
    leaves them; the same group for all that exist), or None: what a compose `secrets-gid` variable is set to,
    read from the folders as they are now, so a later install without the option keeps the grant working. A
    folder open to everyone shows no deliberate grant and sets nothing."""
    gids = set()
    for name in names:
        st = lstat_or_none(os.path.join(secrets, name))
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o057 != 0o050:
            return None
        gids.add(st.st_gid)
    return gids.pop() if len(gids) == 1 else None
