"""Integrity of what is installed (issue 10, point 5): `verify --kit`, `status --verify`, the reinstall
repair and rollback's check of its target.

An installed version is exactly its archive's tree, so it can be checked the way the archive was:
  (1) SHA256SUMS and SHA256SUMS.sig are read (no link followed, sizes capped) and, when keys are given,
      the signature is checked with today's trusted keys and their name scope;
  (2) bundle.json must match its signed line, parse, and name this very name and version;
  (3) every listed file is a regular file with the signed sha256 and the mode bundle.json gives it
      (0444, or 0555 when executable), every folder is 0555, and nothing else is there (no extra file,
      no link, no FIFO).
Problems are collected, one line each, and never stop the walk: the operator sees all of them.
"""

import hashlib
import os
import stat
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from installer.errors import BundleError
from installer.fsutil import PathRefused, kind_of_file, open_under, sha256_fd
from installer.kit.layout import Kit, make_read_only, remove_tree
from installer.format.meta import MAX_META_BYTES, parse_meta
from installer.format.model import BundleHead
from installer.trust.signing import find_signer
from installer.format.sums import MAX_SIG_BYTES, MAX_SUMS_BYTES, META_NAME, SIG_NAME, SUMS_NAME, bundle_id, parse_sums
from installer.trust.store import TrustedKey

class VersionCheck:
    """What one installed version turned out to be. ``damaged`` lists paths a repair must replace or remove."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self.bundle_id: Optional[str] = None
        self.signer: Optional[str] = None
        self.problems: List[str] = []        # content: hashes, modes, missing or extra entries
        self.trust_problems: List[str] = []  # the signature against today's keys
        self.damaged: Dict[str, str] = {}    # path -> "replace" | "remove"

    @property
    def ok(self) -> bool:
        return not self.problems and not self.trust_problems

    def lines(self) -> List[str]:
        return ["%s %s: %s" % (self.name, self.version, p) for p in self.problems + self.trust_problems]


def _walk(root: str) -> Dict[str, os.stat_result]:
    """Every entry under ``root`` by relative path, never through a link (links are entries themselves)."""
    found: Dict[str, os.stat_result] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as entries:
            for entry in entries:
                path = rel + "/" + entry.name if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                found[path] = st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)
    return found


def _read_head(kit: Kit, check: VersionCheck, name: str, cap: int) -> Optional[bytes]:
    try:
        return kit.read_member(check.name, check.version, name, cap)
    except FileNotFoundError:
        check.problems.append("%s is missing" % name)
    except PathRefused as exc:
        check.problems.append("%s %s" % (name, exc.why))
    check.damaged[name] = "replace"
    return None


def _check_signature(check: VersionCheck, sums: bytes, signature: Optional[bytes], keys: Sequence[TrustedKey]) -> None:
    """(1) today's keys: a removed key or a narrowed scope shows here."""
    if signature is None:
        check.trust_problems.append("there is no readable signature")
        return
    public = find_signer([k.key for k in keys], sums, signature) if keys else None
    signer = next((k for k in keys if public is not None and k.fingerprint == public.fingerprint), None)
    if signer is None:
        check.trust_problems.append("SHA256SUMS is not signed by any key trusted today (%s)"
                                    % (", ".join(k.fingerprint for k in keys) or "none: pass --trust or use trust add"))
        return
    check.signer = signer.fingerprint
    scope = signer.scope_problem(check.name)
    if scope:
        check.trust_problems.append(scope)


def _check_meta(kit: Kit, check: VersionCheck, entries: Dict[str, str]) -> Optional[BundleHead]:
    """(2) bundle.json against its signed line, then its own name and version."""
    data = _read_head(kit, check, META_NAME, MAX_META_BYTES)
    if data is None:
        return None
    if hashlib.sha256(data).hexdigest() != entries.get(META_NAME):
        check.problems.append("bundle.json does not match its SHA256SUMS line")
        check.damaged[META_NAME] = "replace"
        return None
    try:
        meta = parse_meta(data)
    except BundleError as exc:
        check.problems.append(exc.message)
        return None
    if (meta.name, meta.version) != (check.name, check.version):
        check.problems.append("bundle.json says %s %s, but it is installed as %s %s"
                              % (meta.name, meta.version, check.name, check.version))
    return meta


def _check_files(kit: Kit, check: VersionCheck, entries: Dict[str, str], executable: FrozenSet[str]) -> None:
    """(3) every file: regular, signed sha256, signed mode; every folder 0555; nothing unlisted."""
    root = kit.version_dir(check.name, check.version)
    found = _walk(root)
    wanted = set(entries) | {SUMS_NAME, SIG_NAME}
    folders = {"/".join(p.split("/")[:i]) for p in wanted for i in range(1, p.count("/") + 1)}
    for path in sorted(wanted):
        st = found.get(path)
        if path in check.damaged:  # already said while reading the head
            continue
        if st is None:
            check.problems.append("%s is missing" % path)
            check.damaged[path] = "replace"
            continue
        why = _file_problem(kit, check, path, st, entries.get(path), 0o555 if path in executable else 0o444)
        if why:
            check.problems.append("%s %s" % (path, why))
            check.damaged[path] = "replace"
    for path, st in sorted(found.items()):
        if path in wanted:
            continue
        if path in folders and stat.S_ISDIR(st.st_mode):
            if stat.S_IMODE(st.st_mode) != 0o555:
                check.problems.append("folder %s has mode %04o, not 0555" % (path, stat.S_IMODE(st.st_mode)))
            continue
        if not any(path.startswith(other + "/") for other in check.damaged if check.damaged[other] == "remove"):
            check.problems.append("%s is not listed in SHA256SUMS (%s)" % (path, kind_of_file(st.st_mode)))
            check.damaged[path] = "remove"
    mode = stat.S_IMODE(os.lstat(root).st_mode)
    if mode != 0o555:
        check.problems.append("the version folder has mode %04o, not 0555" % mode)


def _file_problem(kit: Kit, check: VersionCheck, path: str, st: os.stat_result, digest: Optional[str],
                  mode: int) -> str:
    if not stat.S_ISREG(st.st_mode):
        return "is %s, not a regular file" % kind_of_file(st.st_mode)
    if stat.S_IMODE(st.st_mode) != mode:
        return "has mode %04o; it was signed %04o" % (stat.S_IMODE(st.st_mode), mode)
    if digest is None:  # SHA256SUMS.sig: not listed, its check is the signature's
        return ""
    try:
        fd = open_under(kit.root, kit.version_rel(check.name, check.version) + "/" + path)
    except (PathRefused, OSError) as exc:
        return "cannot be read (%s)" % (getattr(exc, "why", None) or getattr(exc, "strerror", None) or exc)
    try:
        actual, _size = sha256_fd(fd)
    finally:
        os.close(fd)
    return "" if actual == digest else "has sha256 %s; it was signed %s" % (actual, digest)


def check_version(kit: Kit, name: str, version: str, keys: Optional[Sequence[TrustedKey]] = None,
                  signature: Optional[bytes] = None) -> VersionCheck:
    """Steps (1)-(3) for bundles/<name>/<version>. With ``keys`` the signature is checked against them; with
    ``signature`` (the bytes an archive of the same bundle_id just proved) the installed copy must equal it."""
    check = VersionCheck(name, version)
    sums = _read_head(kit, check, SUMS_NAME, MAX_SUMS_BYTES)
    if sums is None:
        return check
    check.bundle_id = bundle_id(sums)
    if keys is not None:
        _check_signature(check, sums, _read_head(kit, check, SIG_NAME, MAX_SIG_BYTES), keys)
    elif signature is not None and SIG_NAME not in check.damaged:
        installed = _read_head(kit, check, SIG_NAME, MAX_SIG_BYTES)
        if installed is not None and installed != signature:
            check.problems.append("%s differs from the archive's" % SIG_NAME)
            check.damaged[SIG_NAME] = "replace"
    try:
        entries = parse_sums(sums)
    except BundleError as exc:
        check.problems.append("SHA256SUMS: %s" % exc.message)
        return check
    meta = _check_meta(kit, check, entries)
    _check_files(kit, check, entries, meta.executable if meta else frozenset())
    return check


def repair(kit: Kit, check: VersionCheck, staged_tree: str) -> List[str]:
    """Replace each damaged path of an installed version from a staged, verified copy of the same bundle_id,
    file by file (each an atomic rename; hard links shared with other versions are never written through),
    remove what does not belong, and make the folders read-only again. Returns what was repaired."""
    root = kit.version_dir(check.name, check.version)
    for folder, _dirs, _files in os.walk(root):  # real folders only: os.walk does not enter links
        os.chmod(folder, 0o755)
    done = []
    for path, action in sorted(check.damaged.items(), key=lambda kv: (kv[1] != "remove", kv[0])):
        target = os.path.join(root, *path.split("/"))
        if os.path.lexists(target) and (action == "remove" or not os.path.isfile(target) or os.path.islink(target)):
            remove_tree(target)
        if action == "replace":
            _ensure_folders(root, path)
            os.replace(os.path.join(staged_tree, *path.split("/")), target)
        done.append("%s %s" % ("removed" if action == "remove" else "restored", path))
    make_read_only(root)
    return done


def _ensure_folders(root: str, path: str) -> None:
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        folder = os.path.join(root, *parts[:i])
        if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
            remove_tree(folder)
        if not os.path.isdir(folder):
            os.mkdir(folder, 0o755)


def check_kit(kit: Kit, keys: Sequence[TrustedKey], name: Optional[str] = None,
              version: Optional[str] = None) -> List[VersionCheck]:
    """Every installed version (or those of ``name``, or one version) against today's keys."""
    names = [name] if name else kit.names()
    out = []
    for n in names:
        versions = kit.versions(n)
        if version is not None:
            versions = [v for v in versions if v == version]
        out += [check_version(kit, n, v, keys) for v in versions]
    return out


def summary_error(checks: Sequence[VersionCheck]) -> Optional[Tuple[type, str, List[str]]]:
    """(error class, sentence, problem lines) when anything differs: content is exit 5, trust alone exit 4."""
    from installer.errors import ContentMismatch, TrustError

    bad = [c for c in checks if not c.ok]
    if not bad:
        return None
    lines = [line for c in bad for line in c.lines()]
    if any(c.problems for c in bad):
        return ContentMismatch, "%d installed version(s) differ from what was signed" % len(bad), lines
    return TrustError, "%d installed version(s) are not signed by a key trusted today for their name" % len(bad), lines
