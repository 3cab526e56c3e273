"""Speed-up wheels for the standalone installer (docs/FORMAT.md "Standalone installer").

``offline-bundle-installer-<ver>/`` may carry ``wheels/`` (e.g. cryptography and zstandard for the
site's Pythons) beside ``installer.pyz``. ``activate()`` runs before the CLI: it reads every wheel into
memory and checks its sha256 against ``INSTALLER.SHA256SUMS`` in that folder, keeps the ones whose tags
fit this interpreter, and unpacks those same bytes (our own extraction: regular files and folders only,
no absolute paths, no ``..``, no top-level name of the standard library or of the installer) into a
fresh private folder made for this run alone (0700, ours, under a TMPDIR nobody else can rename things
in), removed when the run ends. Those folders go on ``sys.path`` after the standard library and before
site-packages. Nothing is pip-installed, and nothing is ever loaded from a kit or from a folder an
earlier run left: there is no check-then-use gap for anyone to slip code into. A wheel that does not
match, does not fit or is refused is simply not used: the installer falls back to the ``openssl`` and
``zstd`` programs, which it guards with ``ImportError`` where the modules are first used.

``INSTALLER.SHA256SUMS`` itself is checked by people (its signature, docs/VERIFY.md), not here: whoever
can change it can change ``installer.pyz`` too. The hashes here make sure that what runs is what
was verified, byte for byte, and that a damaged copy is never imported.

Standard library only, CPython >= 3.9.
"""

import atexit
import enum
import functools
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from typing import Dict, FrozenSet, List, Optional, Sequence, TextIO, Tuple, Union

from installer.errors import BundleError
from installer.fsutil import PathRefused, open_regular, read_fd
from installer.format.paths import c_sorted
from installer.format.sums import parse_sums
from installer.textsafe import printable

PROG = "offline-bundle-installer"
PYZ_NAME = "installer.pyz"
SUMS_NAME = "INSTALLER.SHA256SUMS"
SIG_NAME = SUMS_NAME + ".sig"
WHEELS_DIR = "wheels"

MAX_LISTING_BYTES = 1024 * 1024            # INSTALLER.SHA256SUMS: a line per file, a handful of files
MAX_WHEEL_BYTES = 256 * 1024 * 1024        # a wheel is read whole (hashed, then unpacked from memory)
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024    # a zip bomb stops here
MAX_MEMBERS = 100000
_CHUNK = 1 << 20

# name-version(-build)?-python-abi-platform.whl (PEP 427; names and versions use no '-')
_WHEEL_RE = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-([A-Za-z0-9_.!+]+)"
                       r"(?:-(\d[A-Za-z0-9_.]*))?-([A-Za-z0-9_.]+)-([A-Za-z0-9_.]+)-([A-Za-z0-9_.]+)\.whl")
_MANYLINUX_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
# Top-level names a wheel may not bring besides the standard library's: the installer's own, and the
# modules site.py imports by name at start-up.
_INSTALLER_TOP = ("installer", "__main__")
_RESERVED_TOP = _INSTALLER_TOP + ("site", "sitecustomize", "usercustomize", "__future__")
_STDLIB_ZIP_RE = re.compile(r"python\d+t?\.zip")  # python39.zip, python313t.zip
RUNTIME_PREFIX = "offline-bundle-runtime-"


class Wheel:
    """A wheel file name, parsed: ``tags`` is every (python, abi, platform) it declares."""

    __slots__ = ("filename", "name", "version", "build", "tags")

    def __init__(self, filename: str, name: str, version: str, build: str,
                 tags: List[Tuple[str, str, str]]) -> None:
        self.filename = filename
        self.name = name
        self.version = version
        self.build = build
        self.tags = tags

    @property
    def key(self) -> str:
        """The distribution name, normalised (PEP 503): one wheel per distribution is used."""
        return re.sub(r"[-_.]+", "-", self.name).lower()


def parse_wheel_name(filename: str) -> Optional[Wheel]:
    match = _WHEEL_RE.fullmatch(filename)
    if not match:
        return None
    name, version, build, pys, abis, plats = match.groups()
    tags = [(p, a, pl) for p in pys.split(".") for a in abis.split(".") for pl in plats.split(".")]
    return Wheel(filename, name, version, build or "", tags)


# --- does a wheel fit this interpreter? -----------------------------------------------------
class _Detect(enum.Enum):
    """The default of Interpreter's arguments: describe the running Python (None is a real glibc value)."""

    DETECT = "detect"


_DETECT = _Detect.DETECT
_LibcVersion = Optional[Tuple[int, int]]
# (python tag, abi) rank + platform rank: higher is a better fit (Interpreter.rank)
Rank = Tuple[int, int, int, int, int]


class Interpreter:
    """What the tags are matched against; every argument left out describes the running Python."""

    def __init__(self, implementation: Union[str, _Detect] = _DETECT,
                 version: Union[Tuple[int, int], _Detect] = _DETECT,
                 abiflags: Union[str, _Detect] = _DETECT, arch: Union[str, _Detect] = _DETECT,
                 glibc: Union[_LibcVersion, _Detect] = _DETECT, musl: Union[_LibcVersion, _Detect] = _DETECT,
                 linux: Union[bool, _Detect] = _DETECT) -> None:
        self.implementation: str = sys.implementation.name if implementation is _DETECT else implementation
        self.version: Tuple[int, int] = ((sys.version_info[0], sys.version_info[1]) if version is _DETECT
                                         else version)
        self.abiflags: str = getattr(sys, "abiflags", "") if abiflags is _DETECT else abiflags
        self.linux: bool = sys.platform.startswith("linux") if linux is _DETECT else linux
        self.arch: str = _arch() if arch is _DETECT else arch
        self.glibc: _LibcVersion = (_glibc_version() if self.linux else None) if glibc is _DETECT else glibc
        self.musl: _LibcVersion = ((_musl_version(self.arch) if self.linux and not self.glibc else None)
                                   if musl is _DETECT else musl)

    def python_rank(self, py: str, abi: str) -> Optional[Tuple[int, int]]:
        """Higher is more specific; None when the pair does not fit."""
        major, minor = self.version
        cpython = self.implementation == "cpython"
        exact = "cp%d%d" % (major, minor)
        if cpython and abi == exact + self.abiflags and py == exact:
            return (3, minor)
        if abi == "abi3":
            # the stable ABI: built for CPython 3.Y, usable on 3.Y and later (not debug or free-threaded builds)
            m = re.fullmatch(r"cp3(\d+)", py)
            if cpython and major == 3 and m and int(m.group(1)) <= minor and not set(self.abiflags) & set("dt"):
                return (2, int(m.group(1)))
            return None
        if abi == "none":
            if cpython and py == exact:
                return (1, 99)
            if py == "py%d" % major:
                return (1, 0)
            m = re.fullmatch(r"py%d(\d+)" % major, py)
            if m and int(m.group(1)) <= minor:
                return (1, int(m.group(1)))
        return None

    def platform_rank(self, plat: str) -> Optional[Tuple[int, int, int]]:
        if plat == "any":
            return (0, 0, 0)
        if not self.linux or not plat.endswith("_" + self.arch):
            return None
        head = plat[:-len(self.arch) - 1]
        if head == "linux":
            return (1, 0, 0)
        if head in _MANYLINUX_LEGACY:
            need = _MANYLINUX_LEGACY[head]
            return (2,) + need if self.glibc and self.glibc >= need else None
        m = re.fullmatch(r"(manylinux|musllinux)_(\d+)_(\d+)", head)
        if not m:
            return None
        have = self.glibc if m.group(1) == "manylinux" else self.musl
        need = (int(m.group(2)), int(m.group(3)))
        return (2,) + need if have and have >= need else None

    def rank(self, wheel: Wheel) -> Optional[Rank]:
        best: Optional[Rank] = None
        for py, abi, plat in wheel.tags:
            r1 = self.python_rank(py, abi)
            r2 = self.platform_rank(plat) if r1 else None
            if r1 and r2:
                best = max(best, r1 + r2) if best else r1 + r2
        return best


def _arch() -> str:
    machine = os.uname().machine if hasattr(os, "uname") else ""
    if struct.calcsize("P") == 4:  # a 32-bit Python on a 64-bit kernel
        machine = {"x86_64": "i686", "aarch64": "armv7l", "amd64": "i686"}.get(machine, machine)
    return machine.replace("-", "_").replace(".", "_")


def _glibc_version() -> Optional[Tuple[int, int]]:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    except (AttributeError, OSError, ValueError):
        return None
    m = re.fullmatch(r"glibc (\d+)\.(\d+).*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _musl_version(arch: str) -> Optional[Tuple[int, int]]:
    """musl's loader prints its version when run without arguments."""
    loader = "/lib/ld-musl-%s.so.1" % arch
    if not os.path.isfile(loader):
        return None
    try:
        proc = subprocess.run([loader], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(rb"Version (\d+)\.(\d+)", proc.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None


# --- the standard library: what a wheel may not shadow, and where it sits on sys.path ---------
def _real(path: str) -> str:
    return os.path.realpath(path) if path else ""


def stdlib_dirs() -> List[str]:
    """The standard library's folders, as real paths: sysconfig's stdlib and platstdlib, and os.py's."""
    found: List[str] = []
    try:
        paths = sysconfig.get_paths()
    except Exception:  # a broken sysconfig must not stop the installer; os.py's folder remains
        paths = {}
    for d in (paths.get("stdlib"), paths.get("platstdlib"), getattr(sys, "_stdlib_dir", None),
              os.path.dirname(getattr(os, "__file__", None) or "")):
        real = _real(d or "")
        if real and os.path.isdir(real) and real not in found:
            found.append(real)
    return found


def is_stdlib_entry(entry: str, dirs: Sequence[str]) -> bool:
    """A sys.path entry of the standard library: one of its folders, its zipped copy, or lib-dynload."""
    if not entry:
        return False
    real = _real(entry)
    base = os.path.basename(real)
    return real in dirs or base == "lib-dynload" or bool(_STDLIB_ZIP_RE.fullmatch(base))


def _top_names(location: str) -> List[str]:
    """The top-level names in a standard-library folder or zip (nothing when it cannot be read)."""
    try:
        if os.path.isdir(location):
            return os.listdir(location)
        if os.path.isfile(location):
            with zipfile.ZipFile(location) as zf:
                return [n.split("/", 1)[0] for n in zf.namelist()]
    except (OSError, zipfile.BadZipFile, ValueError):
        pass
    return []


@functools.lru_cache(maxsize=1)
def protected_names() -> FrozenSet[str]:
    """Module names (casefolded) no wheel may bring at its top level.

    Every standard-library module this Python knows of (``sys.stdlib_module_names`` from 3.10, so also
    those a distribution ships separately, like Debian's ``distutils``), its built-in modules, whatever
    its standard-library folders, zip and lib-dynload hold (all there is on 3.9), and the installer's
    own names. More than strictly needed is fine: a refused wheel only means the slower fallback.
    """
    names = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names) | set(_RESERVED_TOP)
    dirs = stdlib_dirs()
    locations = list(dirs) + [e for e in sys.path if is_stdlib_entry(e, dirs)]
    for location in locations:
        names.update(n.split(".", 1)[0] for n in _top_names(location))
    return frozenset(n.casefold() for n in names if n)


def shadow_problem(top: str, is_file: bool) -> Optional[str]:
    """Why a wheel may not carry ``top`` (a top-level file or folder name), or None.

    The module name is what precedes the first dot (``json``, ``hashlib.py``,
    ``_json.cpython-39-x86_64-linux-gnu.so``, ``argparse.pyc``); ``.pth`` files are never a wheel's to add.
    """
    if is_file and top.endswith(".pth"):
        return "it carries %s, a path configuration file" % top
    name = top.split(".", 1)[0]
    if name.casefold() in _INSTALLER_TOP:
        return "it carries %s, which would shadow the installer" % top
    if name.casefold() in protected_names():
        return "it carries %s, which would shadow the standard-library module %s" % (top, name)
    return None


def insert_after_stdlib(folders: Sequence[str], path: List[str]) -> int:
    """Put ``folders`` right after the last standard-library entry of ``path``; returns where.

    So the installer's own zip (``sys.path[0]``) and the standard library always win, and the verified
    wheels win over site-packages. When no entry is recognised they go last: never ahead of anything.
    """
    dirs = stdlib_dirs()
    last = -1
    for i, entry in enumerate(path):
        if is_stdlib_entry(entry, dirs):
            last = i
    at = last + 1 if last >= 0 else len(path)
    path[at:at] = list(folders)
    return at


# --- safe extraction ------------------------------------------------------------------------
def plan_members(zf: zipfile.ZipFile) -> List[Tuple[zipfile.ZipInfo, str]]:
    """(member, relative target) for every file to write; ValueError naming the first unsafe member.

    Regular files and folders only; relative paths without '.', '..', backslashes or NUL; no case
    duplicates; ``<name>.data/purelib|platlib/`` map to the top (other ``.data`` parts are skipped);
    no top-level name that ``shadow_problem`` refuses.
    """
    out = []
    seen = set()
    total = 0
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ValueError("it has more than %d members" % MAX_MEMBERS)
    for info in infos:
        name = info.filename
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ValueError("%s is a link or special file" % name)
        if not name or name.startswith("/") or "\\" in name or "\0" in name:
            raise ValueError("%r is not a relative path" % name)
        is_dir = name.endswith("/")
        parts = name.rstrip("/").split("/") if is_dir else name.split("/")
        if any(p in ("", ".", "..") for p in parts) or (len(parts[0]) >= 2 and parts[0][1] == ":"):
            raise ValueError("%r is not a safe relative path" % name)
        if is_dir or kind == stat.S_IFDIR:
            continue  # folders are made as files need them
        if parts[0].endswith(".data") and len(parts) > 1:
            if parts[1] not in ("purelib", "platlib") or len(parts) < 3:
                continue  # scripts, headers, data: not needed on sys.path
            parts = parts[2:]
        why = shadow_problem(parts[0], len(parts) == 1)
        if why:
            raise ValueError(why)
        rel = "/".join(parts)
        if rel.lower() in seen:
            raise ValueError("%s appears twice (or twice ignoring case)" % rel)
        seen.add(rel.lower())
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise ValueError("it unpacks to more than %d bytes" % MAX_UNPACKED_BYTES)
        out.append((info, rel))
    return out


def unpack(data: bytes, dest: str) -> List[str]:
    """Write the wheel's files under ``dest`` (which must exist and be empty): files 0644/0755, folders 0755.

    Returns the relative paths written."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = plan_members(zf)
        for info, rel in members:
            target = os.path.join(dest, *rel.split("/"))
            parent = os.path.dirname(target)
            os.makedirs(parent, exist_ok=True)  # only folders and regular files are ever made: no link to follow
            mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                written = 0
                while True:
                    chunk = src.read(_CHUNK)  # zipfile checks the size and CRC-32 at the end
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > info.file_size:
                        raise ValueError("%s is longer than its header says" % rel)
                    out.write(chunk)
                os.fchmod(out.fileno(), mode)
    for folder, dirs, _files in os.walk(dest):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o755)
    os.chmod(dest, 0o755)
    return [rel for _info, rel in members]


# --- where things are -----------------------------------------------------------------------
def installer_home() -> Optional[str]:
    """The folder holding the running installer.pyz, or None when not running from a zip."""
    archive = getattr(globals().get("__loader__"), "archive", None)  # zipimport
    candidates: List[str] = [archive] if archive else []
    path = os.path.abspath(__file__)
    while os.path.dirname(path) != path:
        path = os.path.dirname(path)
        candidates.append(path)
    if sys.argv and sys.argv[0]:
        candidates.append(os.path.abspath(sys.argv[0]))
    for candidate in candidates:
        if os.path.isfile(candidate) and zipfile.is_zipfile(candidate):
            return os.path.dirname(os.path.abspath(candidate))
    return None


def _note(stream: TextIO, message: str) -> None:
    try:
        stream.write("%s: note: %s\n" % (PROG, printable(message)))  # wheel names come from the medium
        stream.flush()
    except (OSError, ValueError):
        pass


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return "%s: %s" % (exc.filename, exc.strerror) if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def select_wheels(home: str, interpreter: Optional[Interpreter] = None,
                  stderr: Optional[TextIO] = None) -> List[Tuple[Wheel, bytes, str]]:
    """The hash-checked wheel that fits best, per distribution: (wheel, bytes, sha256)."""
    stderr = stderr or sys.stderr
    folder = os.path.join(home, WHEELS_DIR)
    try:
        names = c_sorted(n for n in os.listdir(folder) if n.endswith(".whl"))
    except OSError:
        return []
    if not names:
        return []
    listing = os.path.join(home, SUMS_NAME)
    try:  # from the medium: a regular file (a FIFO there must not hang the installer), small
        sums = parse_sums(read_fd(open_regular(listing, MAX_LISTING_BYTES), MAX_LISTING_BYTES, listing))
    except PathRefused as exc:
        _note(stderr, "%s %s; not using the wheels in %s" % (SUMS_NAME, exc.why, folder))
        return []
    except OSError:
        _note(stderr, "%s is missing; not using the wheels in %s" % (SUMS_NAME, folder))
        return []
    except BundleError as exc:
        _note(stderr, "%s is malformed (%s); not using the wheels" % (SUMS_NAME, exc.message))
        return []
    interpreter = interpreter or Interpreter()
    best: Dict[str, Tuple[Rank, Wheel, bytes, str]] = {}
    for name in names:
        wheel = parse_wheel_name(name)
        rank = interpreter.rank(wheel) if wheel else None
        if wheel is None or rank is None:
            continue  # for another Python or platform: not ours to judge
        listed = sums.get("%s/%s" % (WHEELS_DIR, name))
        if listed is None:
            _note(stderr, "not using %s/%s: it is not listed in %s" % (WHEELS_DIR, name, SUMS_NAME))
            continue
        path = os.path.join(folder, name)
        try:
            data = read_fd(open_regular(path, MAX_WHEEL_BYTES), MAX_WHEEL_BYTES, path)
        except PathRefused as exc:
            _note(stderr, "not using %s/%s: it %s" % (WHEELS_DIR, name, exc.why))
            continue
        except OSError as exc:
            _note(stderr, "not using %s/%s: %s" % (WHEELS_DIR, name, exc.strerror or exc))
            continue
        digest = _sha256(data)
        if digest != listed:
            _note(stderr, "not using %s/%s: its sha256 does not match %s" % (WHEELS_DIR, name, SUMS_NAME))
            continue
        if wheel.key not in best or rank > best[wheel.key][0]:
            best[wheel.key] = (rank, wheel, data, digest)
    return [best[k][1:] for k in sorted(best)]




# --- a fresh private folder for each run ----------------------------------------------------
def _unsafe_ancestor(path: str) -> Optional[str]:
    """Why someone else could rename or replace things along ``path`` (a real path), or None.

    Every folder from / down must belong to root or to us, and be writable by nobody else unless it
    has the sticky bit (like /tmp), where only an entry's owner may rename it.
    """
    me = os.geteuid()
    parts = [p for p in path.split(os.sep) if p]
    for depth in range(len(parts) + 1):
        current = os.sep + os.sep.join(parts[:depth])
        st = os.lstat(current)
        if st.st_uid not in (0, me):
            return "%s belongs to another user" % current
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            return "%s is writable by others and has no sticky bit" % current
    return None


def _remove_at_exit(folder: str) -> None:
    pid = os.getpid()

    def remove() -> None:
        if os.getpid() == pid:  # not from a forked child
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)


def private_folder() -> str:
    """A new folder for this run only (tempfile.mkdtemp: 0700, ours), removed when the run ends.

    It lives under TMPDIR (or /tmp), which must be a place where no other user can swap it for
    their own; OSError saying why otherwise.
    """
    base = _real(tempfile.gettempdir())
    why = _unsafe_ancestor(base)
    if why:
        raise OSError("%s (set TMPDIR to a private folder)" % why)
    root = tempfile.mkdtemp(prefix=RUNTIME_PREFIX, dir=base)
    _remove_at_exit(root)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != 0o700:
        raise OSError("%s is not a private folder of ours" % root)
    return root


def _noexec(folder: str) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & getattr(os, "ST_NOEXEC", 0))
    except OSError:
        return False


def _unpack_all(chosen: Sequence[Tuple[Wheel, bytes, str]], root: str, stderr: TextIO) -> List[str]:
    """Unpack each chosen wheel into ``root/<n>-<name>/``; the folders that may go on sys.path."""
    noexec = _noexec(root)
    added = []
    for number, (wheel, data, _digest) in enumerate(chosen):
        where = "%s/%s" % (WHEELS_DIR, wheel.filename)
        dest = os.path.join(root, "%d-%s" % (number, wheel.key))
        try:
            os.mkdir(dest, 0o700)
            written = unpack(data, dest)
        except ValueError as exc:  # an unsafe member, or a name it may not use
            _note(stderr, "not using %s: %s" % (where, exc))
            continue
        except Exception as exc:  # bad zip, full disk, unsupported compression...
            _note(stderr, "not using %s: it does not unpack (%s)" % (where, _why(exc)))
            continue
        if noexec and any(rel.endswith(".so") for rel in written):
            _note(stderr, "not using %s: %s is mounted noexec, so its compiled modules cannot load there "
                          "(set TMPDIR to a private folder on another filesystem)" % (where, root))
            continue
        added.append(dest)
    return added


def activate(home: Optional[str] = None, interpreter: Optional[Interpreter] = None,
             stderr: Optional[TextIO] = None, path: Optional[List[str]] = None) -> List[str]:
    """Put the verified speed-up wheels on ``path`` (sys.path) for this run; returns the folders added.

    ``home`` defaults to the folder of the running installer.pyz. Nothing else is looked at: not the
    kit, not a cache, not what an earlier run unpacked. Never raises: a problem is one line on stderr
    and the installer carries on with its fallbacks.
    """
    stderr = stderr or sys.stderr
    try:
        home = home or installer_home()
        if not home or not os.path.isdir(os.path.join(home, WHEELS_DIR)):
            return []
        chosen = select_wheels(home, interpreter, stderr)
        if not chosen:
            return []
        added = _unpack_all(chosen, private_folder(), stderr)
        insert_after_stdlib(added, sys.path if path is None else path)
        return added
    except Exception as exc:  # the wheels are an optimisation: never the reason an install fails
        _note(stderr, "not using the speed-up wheels: %s" % _why(exc))
        return []
