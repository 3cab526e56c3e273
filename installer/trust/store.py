"""Which keys may admit a bundle: ``--trust`` paths for one run, else the kit's own store.

A key's scope is a list of name globs and an optional expiry date. Keys and trust folders
that others could write to are refused: whoever can write them can choose what we trust.
"""

import datetime
import fnmatch
import json
import os
import stat
from typing import Iterable, List, Optional, Sequence, Tuple, TypedDict

from installer.errors import TrustError, UsageError
from installer.fsutil import PathRefused, open_regular, read_fd, write_atomic
from installer.trust.signing import MAX_KEY_FILE_BYTES, PublicKey, load_public_key, parse_public_key


class TrustedKeyJSON(TypedDict):
    fingerprint: str
    algorithm: str
    names: List[str]
    not_after: Optional[str]
    origin: str


class TrustedKey:
    __slots__ = ("key", "names", "not_after", "origin")

    def __init__(self, key: PublicKey, names: Sequence[str] = ("*",), not_after: Optional[str] = None,
                 origin: str = "--trust") -> None:
        self.key = key
        self.names = tuple(names)
        self.not_after = not_after
        self.origin = origin

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    def scope_problem(self, name: str, today: Optional[datetime.date] = None) -> str:
        if not any(fnmatch.fnmatchcase(name, glob) for glob in self.names):
            return "key %s is trusted only for bundles named %s, not %r" % (
                self.fingerprint, ", ".join(self.names), name)
        if self.not_after:
            today = today or datetime.datetime.now(datetime.timezone.utc).date()
            if today > datetime.date.fromisoformat(self.not_after):
                return "key %s expired on %s" % (self.fingerprint, self.not_after)
        return ""

    def to_json(self) -> TrustedKeyJSON:
        return {"fingerprint": self.fingerprint, "algorithm": self.key.algorithm, "names": list(self.names),
                "not_after": self.not_after, "origin": self.origin}


MAX_SCOPE_BYTES = 64 * 1024


def _scope(doc: object, path: str) -> Tuple[List[str], Optional[str]]:
    """(names, not_after) from a scope file, or exit 4 naming it."""
    names, not_after = (doc.get("names"), doc.get("not_after")) if isinstance(doc, dict) else (None, None)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise TrustError("%s does not hold a list of bundle-name globs; re-add the key with trust add" % path)
    if not_after is not None:
        try:
            datetime.date.fromisoformat(not_after)
        except (TypeError, ValueError) as exc:
            raise TrustError("%s holds an unreadable expiry date; re-add the key with trust add" % path) from exc
    return names, not_after


def _refuse_if_writable_by_others(path: str, st: os.stat_result) -> None:
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise TrustError("%s is writable by group or others; fix with chmod go-w before trusting it" % path)


def load_trust_paths(paths: Iterable[str]) -> List[TrustedKey]:
    """Keys named by ``--trust``: files, or folders of which only ``*.pub`` files are read."""
    keys: List[TrustedKey] = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise UsageError("the trust path %s does not exist" % path) from exc
        _refuse_if_writable_by_others(path, st)
        if stat.S_ISDIR(st.st_mode):
            names = sorted(n for n in os.listdir(path) if n.endswith(".pub"))
            if not names:
                raise TrustError("the trust folder %s holds no *.pub key" % path)
            for n in names:
                full = os.path.join(path, n)
                # The user's own folder: links in it are followed (a Kubernetes Secret mount is all links), but
                # what they point at must be a regular key file nobody else can write (load_public_key).
                _refuse_if_writable_by_others(full, os.stat(full))
                keys.append(TrustedKey(load_public_key(full), origin=full))
        else:
            keys.append(TrustedKey(load_public_key(path), origin=path))
    return keys


class TrustStore:
    """KIT/.state/trust: <hex>.pub beside <hex>.json holding the key's scope."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def _paths(self, fp: str) -> Tuple[str, str]:
        hexdigest = fp.split(":", 1)[-1]
        return os.path.join(self.folder, hexdigest + ".pub"), os.path.join(self.folder, hexdigest + ".json")

    def keys(self) -> List[TrustedKey]:
        """The kit's keys with their scopes. Kit.check() has already refused links and files others can write;
        each file is still opened without following a link, and a scope that is not what `trust add` writes
        is exit 4 naming it (a damaged scope must not widen what a key may sign)."""
        if not os.path.isdir(self.folder):
            return []
        _refuse_if_writable_by_others(self.folder, os.lstat(self.folder))
        out = []
        for name in sorted(os.listdir(self.folder)):
            if not name.endswith(".pub"):
                continue
            pub = os.path.join(self.folder, name)
            key = parse_public_key(self._read(pub, MAX_KEY_FILE_BYTES), pub)
            scope_path = self._paths(key.fingerprint)[1]
            try:
                scope = json.loads(self._read(scope_path, MAX_SCOPE_BYTES).decode("utf-8"))
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                raise TrustError("the kit's trust entry for %s has no readable scope file" % key.fingerprint) from exc
            out.append(TrustedKey(key, *_scope(scope, scope_path), origin="kit"))
        return out

    @staticmethod
    def _read(path: str, cap: int) -> bytes:
        try:
            fd = open_regular(path, cap)
        except PathRefused as exc:
            raise TrustError("%s %s; the kit's trust store holds only regular files" % (exc.path, exc.why)) from exc
        try:
            _refuse_if_writable_by_others(path, os.fstat(fd))
        except TrustError:
            os.close(fd)
            raise
        return read_fd(fd, cap, path)

    def add(self, key_path: str, names: Sequence[str], not_after: Optional[str]) -> TrustedKey:
        key = load_public_key(key_path)
        if any(not n for n in names):
            raise UsageError("--names takes a bundle-name glob, not an empty string")
        if not_after:
            try:
                datetime.date.fromisoformat(not_after)
            except ValueError as exc:
                raise UsageError("--not-after takes a date as YYYY-MM-DD, not %r" % not_after) from exc
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        pub_path, scope_path = self._paths(key.fingerprint)
        entry = TrustedKey(key, names or ["*"], not_after, origin="kit")
        write_atomic(scope_path, json.dumps({"names": list(entry.names), "not_after": not_after}, indent=2).encode())
        write_atomic(pub_path, key.pem())
        return entry

    def remove(self, fp: str) -> bool:
        removed = False
        for path in self._paths(fp):
            try:
                os.unlink(path)
                removed = True
            except FileNotFoundError:
                pass
        return removed

