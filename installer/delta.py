"""Blob-level deltas (PRODUCT.md "Archive format"; issue 5).

`inventory` lists what a kit holds — bundle names, versions, bundle_ids and the sha256 of every file —
with no paths, hosts or registries, so it can pass an outbound review. A delta archive carries only the
files whose sha256 the base lacks; its signed SHA256SUMS and bundle.json describe the FULL version and
DELTA.json names the base and what was omitted. Installing a delta finds each omitted file in the kit
by sha256 from the installed versions' own signed SHA256SUMS (the inventory is never trusted) and
re-hashes it as it is linked or copied into staging.
"""

import errno
import json
import os
from typing import Dict, List, Optional

from .errors import ContentMismatch, InvalidInput, LocalEnvironmentError, UsageError
from .fsutil import copy_hashed, sha256_file
from .kit import Kit
from .meta import NAME_RE, canonical_json
from .paths import path_problem
from .semver import is_semver
from .sums import SUMS_NAME, bundle_id, parse_sums

MAX_DELTA_BYTES = 64 * 1024 * 1024
INVENTORY_KIND = "offline-bundle-inventory"


def inventory(kit_dir: str) -> dict:
    kit = Kit(kit_dir)
    if not kit.exists():
        raise UsageError("the kit %s does not exist" % kit_dir)
    bundles, digests = [], set()
    for name in kit.names():
        for version in kit.versions(name):
            with open(os.path.join(kit.version_dir(name, version), SUMS_NAME), "rb") as fh:
                sums = fh.read()
            bundles.append({"name": name, "version": version, "bundle_id": bundle_id(sums)})
            digests.update(parse_sums(sums).values())
    return {"kind": INVENTORY_KIND, "format": 1, "bundles": bundles, "sha256": sorted(digests)}


class KitIndex:
    """sha256 -> a file of an installed version, from each version's signed SHA256SUMS."""

    def __init__(self, kit: Kit) -> None:
        self.files: Dict[str, str] = {}
        for name in kit.names():
            for version in kit.versions(name):
                root = kit.version_dir(name, version)
                try:
                    with open(os.path.join(root, SUMS_NAME), "rb") as fh:
                        entries = parse_sums(fh.read())
                except (OSError, InvalidInput):
                    continue
                for path, digest in entries.items():
                    self.files.setdefault(digest, os.path.join(root, *path.split("/")))

    def find(self, digest: str) -> Optional[str]:
        return self.files.get(digest)


def parse_delta(data: bytes) -> dict:
    def fail(why: str) -> InvalidInput:
        return InvalidInput("DELTA.json is malformed: %s" % why)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise fail("not JSON")
    if not isinstance(doc, dict) or set(doc) != {"base", "omitted", "omitted_bytes"}:
        raise fail("it must hold exactly base, omitted and omitted_bytes")
    if not isinstance(doc["base"], list) or not isinstance(doc["omitted"], list):
        raise fail("base and omitted are lists")
    for b in doc["base"]:
        if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not NAME_RE.fullmatch(b["name"]) \
                or not is_semver(b.get("version")) or not isinstance(b.get("bundle_id"), str):
            raise fail("a base entry is not {name, version, bundle_id}")
    for path in doc["omitted"]:
        if not isinstance(path, str) or path_problem(path):
            raise fail("an omitted path is not a valid member path")
    if not isinstance(doc["omitted_bytes"], int) or isinstance(doc["omitted_bytes"], bool):
        raise fail("omitted_bytes is not an integer")
    return doc


def delta_document(base: List[dict], omitted: Dict[str, int]) -> bytes:
    paths = sorted(omitted, key=lambda p: p.encode())
    return canonical_json({"base": base, "omitted": paths, "omitted_bytes": sum(omitted.values())})


def materialize(source: str, dest: str, digest: str, executable: bool) -> int:
    """Hard-link (else copy) ``source`` to ``dest`` and prove it has ``digest`` by re-hashing it."""
    actual, size = sha256_file(source)
    if actual != digest:
        raise ContentMismatch("the kit's copy %s no longer has sha256 %s; it cannot serve a delta" % (source, digest))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        os.link(source, dest)
        return size
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise LocalEnvironmentError("cannot link %s into the staging area: %s" % (source, exc.strerror))
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        copied, _ = copy_hashed(src, out)
        out.flush()
        os.fchmod(out.fileno(), 0o555 if executable else 0o444)
        os.fsync(out.fileno())
    if copied != digest:  # it changed while we copied it
        raise ContentMismatch("the kit's copy %s changed while it was copied" % source)
    return size
