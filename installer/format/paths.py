"""Member path rules and member layout of format 1 (docs/FORMAT.md "Archive format").

A path is checked here before it is ever joined to a folder on disk. The builder names members with the
same functions the installer checks them with (`tenant_path`, `chart_path`, ...): one rule, one place.
"""

import os
import re
from typing import Dict, Iterable, List

from installer.errors import UnsafePath

PATH_RE = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")  # used with fullmatch
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 1024

# Names the bundle itself owns; manifest files may not land under them.
RESERVED_EXACT = ("bundle.json", "DELTA.json")
RESERVED_PREFIXES = ("SHA256SUMS", )
RESERVED_DIRS = ("images", "charts", "tenants", "sbom", "attestations")  # the last two: issue 14

# Where the bundle's own members live.
INDEX_PATH = "images/index.json"
LAYOUT_PATH = "images/oci-layout"
BLOB_PREFIX = "images/blobs/sha256/"


def tenant_path(component: str) -> str:
    """A tenant component's file: the only member ever read for that tenant."""
    return "tenants/%s.yaml" % component


def chart_path(name: str, version: str) -> str:
    return "charts/%s-%s.tgz" % (name, version)


def chart_values_path(name: str, version: str) -> str:
    """A chart's base values, as canonical JSON (the installer edits them with the standard library)."""
    return "charts/%s-%s.values.json" % (name, version)


def blob_path(digest: str) -> str:
    """images/blobs/sha256/<hex> for ``sha256:<hex>``."""
    return BLOB_PREFIX + digest.split(":", 1)[1]


def reserved_names() -> str:
    """The reserved names, as a message shows them."""
    return ", ".join([RESERVED_PREFIXES[0] + "*"] + list(RESERVED_EXACT) + [d + "/" for d in RESERVED_DIRS])


def path_problem(path: object) -> str:
    """Why ``path`` (perhaps not even a string, when it comes from JSON) is not a valid member path, or ''."""
    if not isinstance(path, str) or not path:
        return "empty path"
    if not PATH_RE.fullmatch(path):
        return "path %r has characters or slashes the format does not allow" % path
    parts = path.split("/")
    if any(p in (".", "..") for p in parts):
        return "path %r has a '.' or '..' component" % path
    if any(len(p.encode()) > MAX_COMPONENT_BYTES for p in parts):
        return "path %r has a component longer than %d bytes" % (path, MAX_COMPONENT_BYTES)
    if len(path.encode()) > MAX_PATH_BYTES:
        return "path %r is longer than %d bytes" % (path[:64] + "...", MAX_PATH_BYTES)
    return ""


def is_reserved(path: str) -> bool:
    first = path.split("/", 1)[0]
    return path in RESERVED_EXACT or path.startswith(RESERVED_PREFIXES) or first in RESERVED_DIRS


def c_key(path: str) -> bytes:
    """The sort key of member paths: their bytes, as `LC_ALL=C sort` and coreutils order them."""
    return path.encode("utf-8")


def c_sorted(paths: Iterable[str]) -> List[str]:
    """Sort by path bytes, as `LC_ALL=C sort` and coreutils do."""
    return sorted(paths, key=c_key)


def case_duplicates(paths: Iterable[str]) -> List[str]:
    seen: Dict[str, str] = {}
    dups = []
    for p in paths:
        key = p.lower()
        if key in seen:
            dups.append("%s and %s differ only in case or repeat" % (seen[key], p))
        else:
            seen[key] = p
    return dups


def contained(root: str, path: str) -> str:
    """Join a validated member path to ``root`` and prove the result stays inside it."""
    problem = path_problem(path)
    if problem:
        raise UnsafePath(problem)
    root_abs = os.path.abspath(root)
    full = os.path.abspath(os.path.join(root_abs, *path.split("/")))
    if os.path.commonpath([root_abs, full]) != root_abs or full == root_abs:
        raise UnsafePath("path %r escapes %s" % (path, root))
    return full
