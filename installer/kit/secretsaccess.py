"""Who may read the site's secrets: `install --secrets-group GID` (docs/TLS.md).

KIT/secrets holds 0700 folders and 0600 files: only the installing user can read them. The stack's compose
containers run as their images' own non-root users (Prometheus 65534; Loki, Tempo and the collector 10001), so
they could not read the TLS key or the token they mount. The grant makes exactly the files a container needs
readable by one group, and no one else, without giving anything away:

- each site folder the bundle's compose files mount (deploy.compose.env: tls, token, s3) becomes 0750 with group
  GID; its owner stays the installing user (or root), so no container user can add, rename or replace a file;
- in the TLS folder, only the files the stack uses (the CA certificate and the shared pair, TlsSpec.in_use)
  become 0640 with that group: the CA key, the client key and the per-service keys stay 0600;
- in the token and s3 folders, every regular file becomes 0640 with that group.

What it changes it checks first, all of it before the first change: a folder or file that is a link, a special
file, a file with more than one name (a hard link: its other name may be anywhere, /etc/shadow included), or a
folder or file owned by anyone but the installing user or root is refused (exit 9); entries that are not files
(a subfolder) are left alone and closed to the group. Nothing is followed.

The group is recorded in KIT/.state/secrets-group.json. Later installs read it back: a file or folder keeps its
group access only where its group is the recorded one (otherwise it is brought back to 0600/0700 when used, as
any operator file is), and the compose variable the bundle maps to `secrets-gid` is set to it, so compose gives
every container that group (`group_add`). A folder that merely happens to be group-readable (an umask of 027)
is no grant.

There is no `--secrets-owner`: giving the files to the container's user would let that user rewrite the stack's
key and CA certificate (an owner may always chmod its file), which a group grant never allows (docs/TLS.md).
"""

import grp
import json
import os
import re
import stat
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from installer.errors import LocalEnvironmentError, UsageError
from installer.fsutil import PathRefused, kind_of_file, lstat_or_none, open_regular, read_fd, write_atomic

MAX_ID = 2 ** 31 - 2          # a gid the kernel accepts (2^32-1 is "no change" to chown)
FOLDER_MODE = 0o750
FILE_MODE = 0o640
STATE_FILE = "secrets-group.json"   # in KIT/.state
_NUMBER = re.compile(r"[0-9]{1,10}")
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?")   # a POSIX group name (groupadd's own rule)

_O_DIR = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_O_FILE = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Granted:
    """What the grant did: the group, and the paths made readable to it (kit-relative; folders end in '/')."""

    gid: int
    paths: List[str]


def parse_group(text: Optional[str]) -> Optional[int]:
    """--secrets-group GID (a number, or a group name this host knows), checked before anything is read."""
    if text is None:
        return None
    text = text.strip()
    if _NUMBER.fullmatch(text):
        value = int(text)
        if value > MAX_ID:
            raise UsageError("the secrets group %s is out of range (at most %d)" % (text, MAX_ID))
        return value
    if not _NAME.fullmatch(text):
        raise UsageError("the secrets group is neither a number nor a group name")
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise UsageError("the secrets group %s does not exist on this host; give its number" % text) from None


# --- what the kit recorded ---------------------------------------------------------------------------------------
def recorded_gid(state: str) -> Optional[int]:
    """The group the last --secrets-group granted (KIT/.state/secrets-group.json), or None."""
    path = os.path.join(state, STATE_FILE)
    if lstat_or_none(path) is None:
        return None
    try:
        doc = json.loads(read_fd(open_regular(path, 256), 256, path).decode("utf-8"))
    except (PathRefused, ValueError) as exc:
        raise LocalEnvironmentError("%s cannot be read (%s); remove it and install again with --secrets-group"
                                    % (path, exc)) from exc
    gid = doc.get("gid") if isinstance(doc, dict) else None
    if not isinstance(gid, int) or isinstance(gid, bool) or not 0 <= gid <= MAX_ID:
        raise LocalEnvironmentError("%s holds no group id; remove it and install again with --secrets-group" % path)
    return gid


def keeps_group(st: os.stat_result, gid: Optional[int]) -> bool:
    """True when ``st`` (a file or folder in KIT/secrets) is as the grant to ``gid`` left it: that group, group
    read (and enter, for a folder), no group write, nothing for others."""
    if gid is None or st.st_gid != gid:
        return False
    want = 0o050 if stat.S_ISDIR(st.st_mode) else 0o040
    return stat.S_IMODE(st.st_mode) & 0o077 == want


def granted_gid(secrets: str, names: Sequence[str], gid: Optional[int]) -> Optional[int]:
    """``gid`` (the recorded grant) when every one of the site folders ``names`` that exists is still granted to
    it, else None: what a compose `secrets-gid` variable is set to (left unset, compose refuses by name)."""
    if gid is None:
        return None
    for name in names:
        st = lstat_or_none(os.path.join(secrets, name))
        if st is not None and not (stat.S_ISDIR(st.st_mode) and keeps_group(st, gid)):
            return None
    return gid


# --- the grant ---------------------------------------------------------------------------------------------------
def _ours(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid())


def _open_folder(path: str) -> Optional[int]:
    st = lstat_or_none(path)
    if st is None:
        return None
    if not stat.S_ISDIR(st.st_mode):
        raise LocalEnvironmentError("%s is %s, not a folder; refusing to grant access through it"
                                    % (path, kind_of_file(st.st_mode)))
    try:
        fd = os.open(path, _O_DIR)
    except OSError as exc:  # swapped for a link (ELOOP) or removed since the lstat
        raise LocalEnvironmentError("%s changed while it was being opened (%s); refusing to grant access through it"
                                    % (path, exc.strerror)) from exc
    if not _ours(os.fstat(fd)):
        os.close(fd)
        raise LocalEnvironmentError("%s belongs to another user; refusing to grant access to what is in it (the "
                                    "kit's secrets folders are the installing user's or root's)" % path)
    return fd


def _plan(folder: str, only: Optional[Sequence[str]]) -> Tuple[int, List[str]]:
    """The folder's descriptor and the regular files in it to grant; anything refused is exit 9."""
    fd = _open_folder(folder)
    if fd is None:
        return -1, []
    names = sorted(only) if only is not None else sorted(os.listdir(fd))
    chosen = []
    try:
        for name in names:
            shown = os.path.join(folder, name)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) and only is None:
                continue  # a subfolder stays as it is: no container needs it
            if not stat.S_ISREG(st.st_mode):
                raise LocalEnvironmentError("%s is %s; refusing to grant access to it"
                                            % (shown, kind_of_file(st.st_mode)))
            if st.st_nlink != 1:
                raise LocalEnvironmentError("%s has %d names (hard links); refusing to grant access to it: give it "
                                            "its own copy" % (shown, st.st_nlink))
            if not _ours(st):
                raise LocalEnvironmentError("%s belongs to another user; refusing to grant access to it" % shown)
            chosen.append(name)
    except BaseException:
        os.close(fd)
        raise
    return fd, chosen


def _change(fd: int, folder: str, files: List[str], gid: int, kit_root: str) -> List[str]:
    done = []
    for file_name in files:
        leaf = os.open(file_name, _O_FILE, dir_fd=fd)
        try:
            st = os.fstat(leaf)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or not _ours(st):  # changed since the plan
                raise LocalEnvironmentError("%s changed while access was being granted; nothing in it was followed"
                                            % os.path.join(folder, file_name))
            os.fchown(leaf, -1, gid)
            os.fchmod(leaf, FILE_MODE)
        finally:
            os.close(leaf)
        done.append(os.path.relpath(os.path.join(folder, file_name), kit_root))
    os.fchown(fd, -1, gid)
    os.fchmod(fd, FOLDER_MODE)
    done.append(os.path.relpath(folder, kit_root) + "/")
    return done


def grant(secrets: str, folders: Dict[str, Optional[Sequence[str]]], gid: int, kit_root: str,
          state: str) -> Granted:
    """Make ``folders`` (name under ``secrets`` -> the file names to grant, None for every regular file) readable
    by group ``gid`` and record the grant in ``state``; returns the kit-relative paths granted. Everything refused
    is refused before the first change."""
    plans = []
    try:
        for name in sorted(folders):
            fd, files = _plan(os.path.join(secrets, name), folders[name])
            if fd >= 0:
                plans.append((name, fd, files))
        done: List[str] = []
        for name, fd, files in plans:
            folder = os.path.join(secrets, name)
            try:
                done += _change(fd, folder, files, gid, kit_root)
            except PermissionError as exc:
                raise LocalEnvironmentError("cannot give %s to group %d: %s (run the install as root, or as the "
                                            "owner of the files and a member of the group)"
                                            % (folder, gid, exc.strerror)) from exc
            except OSError as exc:  # a file swapped for a link (ELOOP) or removed after it was listed
                raise LocalEnvironmentError("%s changed while access was being granted (%s); nothing in it was "
                                            "followed" % (folder, exc.strerror)) from exc
        write_atomic(os.path.join(state, STATE_FILE), (json.dumps({"gid": gid}) + "\n").encode(), mode=0o600)
        return Granted(gid, done)
    finally:
        for _, fd, _ in plans:
            os.close(fd)
