"""Speed-up wheels for the standalone installer (PRODUCT.md "Standalone installer").

``offline-bundle-installer-<ver>/`` may carry ``wheels/`` (e.g. cryptography and zstandard for the
site's Pythons) beside ``installer.pyz``. ``activate()`` runs before the CLI: it checks every wheel's
sha256 against ``INSTALLER.SHA256SUMS`` in that folder, keeps the ones whose tags fit this interpreter,
unpacks each (our own extraction: regular files and folders only, no absolute paths, no ``..``) into
``KIT/.state/runtime/<sha256>/`` (or the user's cache when there is no kit) and puts those folders on
``sys.path``. Nothing is pip-installed. A wheel that does not match, does not fit or does not unpack
is simply not used: the installer falls back to the ``openssl`` and ``zstd`` programs, which it guards
with ``ImportError`` where the modules are first used.

``INSTALLER.SHA256SUMS`` itself is checked by people (its signature, docs/VERIFY.md), not here: whoever
can change it can change ``installer.pyz`` too. The hashes here make sure that what runs is what
was verified, byte for byte, and that a damaged copy is never imported.

Standard library only, CPython >= 3.9.
"""

import hashlib
import io
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import BundleError
from .paths import c_sorted
from .sums import parse_sums
from .textsafe import printable

PROG = "offline-bundle-installer"
PYZ_NAME = "installer.pyz"
SUMS_NAME = "INSTALLER.SHA256SUMS"
SIG_NAME = SUMS_NAME + ".sig"
WHEELS_DIR = "wheels"

MAX_WHEEL_BYTES = 256 * 1024 * 1024        # a wheel is read whole (hashed, then unpacked from memory)
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024    # a zip bomb stops here
MAX_MEMBERS = 100000
_CHUNK = 1 << 20

# name-version(-build)?-python-abi-platform.whl (PEP 427; names and versions use no '-')
_WHEEL_RE = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-([A-Za-z0-9_.!+]+)"
                       r"(?:-(\d[A-Za-z0-9_.]*))?-([A-Za-z0-9_.]+)-([A-Za-z0-9_.]+)-([A-Za-z0-9_.]+)\.whl")
_MANYLINUX_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
# Top-level names a wheel may not bring: they would shadow the installer itself.
_FORBIDDEN_TOP = ("installer", "__main__.py")


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
_DETECT = object()


class Interpreter:
    """What the tags are matched against; every argument left out describes the running Python."""

    def __init__(self, implementation=_DETECT, version=_DETECT, abiflags=_DETECT, arch=_DETECT, glibc=_DETECT,
                 musl=_DETECT, linux=_DETECT) -> None:
        self.implementation: str = sys.implementation.name if implementation is _DETECT else implementation
        self.version: Tuple[int, int] = tuple(sys.version_info[:2]) if version is _DETECT else version
        self.abiflags: str = getattr(sys, "abiflags", "") if abiflags is _DETECT else abiflags
        self.linux: bool = sys.platform.startswith("linux") if linux is _DETECT else linux
        self.arch: str = _arch() if arch is _DETECT else arch
        self.glibc: Optional[Tuple[int, int]] = (_glibc_version() if self.linux else None) if glibc is _DETECT else glibc
        self.musl: Optional[Tuple[int, int]] = ((_musl_version(self.arch) if self.linux and not self.glibc else None)
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

    def rank(self, wheel: Wheel) -> Optional[tuple]:
        best = None
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


# --- safe extraction ------------------------------------------------------------------------
def plan_members(zf: zipfile.ZipFile) -> List[Tuple[zipfile.ZipInfo, str]]:
    """(member, relative target) for every file to write; ValueError naming the first unsafe member.

    Regular files and folders only; relative paths without '.', '..', backslashes or NUL; no case
    duplicates; ``<name>.data/purelib|platlib/`` map to the top (other ``.data`` parts are skipped).
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
        if parts[0] in _FORBIDDEN_TOP:
            raise ValueError("it carries %s, which would shadow the installer" % parts[0])
        rel = "/".join(parts)
        if rel.lower() in seen:
            raise ValueError("%s appears twice (or twice ignoring case)" % rel)
        seen.add(rel.lower())
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise ValueError("it unpacks to more than %d bytes" % MAX_UNPACKED_BYTES)
        out.append((info, rel))
    return out


def unpack(data: bytes, dest: str) -> None:
    """Write the wheel's files under ``dest`` (which must exist and be empty): files 0644/0755, folders 0755."""
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


def _materialise(data: bytes, digest: str, root: str) -> str:
    """``root/<sha256>/``: reused when it is there, else unpacked beside it and renamed into place."""
    final = os.path.join(root, digest)
    if os.path.isdir(final) and not os.path.islink(final):
        return final
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-%s-" % digest[:16], dir=root)
    try:
        unpack(data, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (os.path.isdir(final) and not os.path.islink(final)):  # not a concurrent run that won
                raise
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# --- where things are -----------------------------------------------------------------------
def installer_home() -> Optional[str]:
    """The folder holding the running installer.pyz, or None when not running from a zip."""
    archive = getattr(globals().get("__loader__"), "archive", None)  # zipimport
    candidates = [archive] if archive else []
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


def _kit_from_argv(argv: Sequence[str]) -> Tuple[Optional[str], str]:
    """(the --kit value, the command word) as the CLI will see them."""
    kit = None
    command = ""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg == "--kit" and i + 1 < len(argv):
            kit = argv[i + 1]
            i += 1
        elif arg.startswith("--kit="):
            kit = arg[len("--kit="):]
        elif not arg.startswith("-") and not command:
            command = arg
        i += 1
    return kit, command


def runtime_root(kit_dir: Optional[str], command: str = "") -> Optional[str]:
    """KIT/.state/runtime when the kit exists (or `install` is about to create it), else the user's cache."""
    if kit_dir:
        kit = os.path.abspath(kit_dir)
        if os.path.isdir(os.path.join(kit, ".state")) or (command == "install" and os.path.isdir(os.path.dirname(kit))):
            return os.path.join(kit, ".state", "runtime")
    cache = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(cache):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        cache = os.path.join(home, ".cache")
    return os.path.join(cache, "offline-bundle", "runtime")


def _note(stream, message: str) -> None:
    try:
        stream.write("%s: note: %s\n" % (PROG, printable(message)))  # wheel names come from the medium
        stream.flush()
    except (OSError, ValueError):
        pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def select_wheels(home: str, interpreter: Optional[Interpreter] = None, stderr=None) -> List[Tuple[Wheel, bytes, str]]:
    """The hash-checked wheel that fits best, per distribution: (wheel, bytes, sha256)."""
    stderr = stderr or sys.stderr
    folder = os.path.join(home, WHEELS_DIR)
    try:
        names = c_sorted(n for n in os.listdir(folder) if n.endswith(".whl"))
    except OSError:
        return []
    if not names:
        return []
    try:
        with open(os.path.join(home, SUMS_NAME), "rb") as fh:
            sums = parse_sums(fh.read(64 * 1024 * 1024))
    except OSError:
        _note(stderr, "%s is missing; not using the wheels in %s" % (SUMS_NAME, folder))
        return []
    except BundleError as exc:
        _note(stderr, "%s is malformed (%s); not using the wheels" % (SUMS_NAME, exc.message))
        return []
    interpreter = interpreter or Interpreter()
    best: Dict[str, Tuple[tuple, Wheel, bytes, str]] = {}
    for name in names:
        wheel = parse_wheel_name(name)
        rank = interpreter.rank(wheel) if wheel else None
        if rank is None:
            continue  # for another Python or platform: not ours to judge
        listed = sums.get("%s/%s" % (WHEELS_DIR, name))
        if listed is None:
            _note(stderr, "not using %s/%s: it is not listed in %s" % (WHEELS_DIR, name, SUMS_NAME))
            continue
        path = os.path.join(folder, name)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode) or os.path.getsize(path) > MAX_WHEEL_BYTES:
                raise OSError("not a regular file of at most %d bytes" % MAX_WHEEL_BYTES)
            with open(path, "rb") as fh:
                data = fh.read(MAX_WHEEL_BYTES + 1)
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


def activate(kit_dir: Optional[str] = None, home: Optional[str] = None, argv: Optional[Sequence[str]] = None,
             interpreter: Optional[Interpreter] = None, stderr=None) -> List[str]:
    """Put the verified speed-up wheels on sys.path; returns the folders added (usually none).

    ``kit_dir`` defaults to the ``--kit`` argument of ``argv`` (default ``sys.argv[1:]``); ``home``
    to the folder of the running installer.pyz. Never raises: a problem is one line on stderr and
    the installer carries on with its fallbacks.
    """
    stderr = stderr or sys.stderr
    try:
        home = home or installer_home()
        if not home or not os.path.isdir(os.path.join(home, WHEELS_DIR)):
            return []
        chosen = select_wheels(home, interpreter, stderr)
        if not chosen:
            return []
        argv = sys.argv[1:] if argv is None else list(argv)
        arg_kit, command = _kit_from_argv(argv)
        root = runtime_root(kit_dir or arg_kit, command)
        if root is None:
            _note(stderr, "no kit and no home folder to unpack the wheels into; not using them")
            return []
        added = []
        for wheel, data, digest in chosen:
            try:
                added.append(_materialise(data, digest, root))
            except Exception as exc:  # bad zip, unsafe member, full disk, unsupported compression...
                _note(stderr, "not using %s/%s: it does not unpack (%s)" % (
                    WHEELS_DIR, wheel.filename, getattr(exc, "strerror", None) or exc))
        # right after the installer's own zip (sys.path[0]), ahead of every site-packages folder
        first = sys.path[0] if sys.path else ""
        at = 1 if first and os.path.isfile(first) and os.path.dirname(os.path.abspath(first)) == home else 0
        for folder in reversed(added):
            if folder in sys.path:
                sys.path.remove(folder)
            sys.path.insert(at, folder)
        return added
    except Exception as exc:  # the wheels are an optimisation: never the reason an install fails
        _note(stderr, "not using the speed-up wheels: %s: %s" % (type(exc).__name__, exc))
        return []
