"""Blob-level deltas (PRODUCT.md "Archive format"; issue 5).

`inventory` lists what a kit holds — bundle names, versions, bundle_ids and the sha256 of every file —
with no paths, hosts or registries, so it can pass an outbound review. A delta archive carries only the
files whose sha256 the base lacks; its signed SHA256SUMS and bundle.json describe the FULL version and
DELTA.json names the base and what was omitted. Installing a delta finds each omitted file in the kit
by sha256 from the installed versions' own signed SHA256SUMS (the inventory is never trusted) and
re-hashes it as it is linked or copied into staging.
"""

import json
from typing import Dict, List

from installer.errors import InvalidInput
from installer.format.meta import NAME_RE, canonical_json
from installer.format.paths import path_problem
from installer.format.semver import is_semver

MAX_DELTA_BYTES = 64 * 1024 * 1024
INVENTORY_KIND = "offline-bundle-inventory"


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
