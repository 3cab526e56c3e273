"""Deltas: what a base holds (a kit's inventory or an old bundle's signed list), and the staged version cut
down to the files the base lacks (SHA256SUMS and bundle.json still describe the full version)."""

import hashlib
import json
import os
from typing import List, Set, Tuple

from installer.errors import InternalError, InvalidInput, UsageError
from installer.format.model import DeltaBase, DeltaDoc
from installer.format.reference import strict_hex
from installer.format.delta import INVENTORY_KIND, delta_document
from installer.format.sums import DELTA_NAME, format_sums, parse_sums
from installer.format.tarstream import TarReader
from installer.trust.verify import open_archive, read_head
from installer.format.zstd import open_decompressed
from bundler.stage.stage import Staged




MAX_INVENTORY_BYTES = 64 * 1024 * 1024  # as SHA256SUMS: an inventory lists no more than the kit's sums


def load_delta_base(path: str) -> Tuple[List[DeltaBase], Set[str]]:
    """(base bundles, sha256 set) from a kit's inventory or from an old bundle's signed list."""
    if not os.path.isfile(path):
        raise UsageError("--delta-from %s does not exist" % path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"\x28\xb5\x2f\xfd":  # not zstd: an inventory
        return _load_inventory(path)
    with open_archive(path) as fh:
        stream = open_decompressed(fh)
        try:
            v = read_head(TarReader(stream), [], require_trust=False)
        finally:
            stream.close()
    if v.meta is None:  # read_head reads bundle.json or raises when, as here, no size cap is given
        raise InternalError("the base bundle %s was read without its bundle.json" % path)
    return [DeltaBase(v.meta.name, v.meta.version, v.bundle_id)], set(v.sums_entries.values())


def _load_inventory(path: str) -> Tuple[List[DeltaBase], Set[str]]:
    """An inventory's bases and sha256 list; every sha256 and bundle_id strictly 64 lower-case hex (exit 3)."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_INVENTORY_BYTES + 1)
    if len(raw) > MAX_INVENTORY_BYTES:
        raise InvalidInput("the inventory %s is larger than %d MiB" % (path, MAX_INVENTORY_BYTES >> 20))
    try:
        doc = json.loads(raw)
        assert doc.get("kind") == INVENTORY_KIND and isinstance(doc.get("sha256"), list)
        base = [DeltaBase(b["name"], b["version"], b["bundle_id"]) for b in doc["bundles"]]
    except (ValueError, AssertionError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidInput("%s is neither a bundle archive nor an inventory (offline-bundle inventory)" % path) from exc
    source = "the inventory %s" % path
    for b in base:
        strict_hex(b.bundle_id, source)
    return base, {strict_hex(d, source) for d in doc["sha256"]}


def make_delta(staged: Staged, base: List[DeltaBase], digests: Set[str]) -> Staged:
    """Keep only the files the base lacks; SHA256SUMS and bundle.json still describe the full version."""
    omitted = {m.path: m.size for m in staged.members if m.sha256 in digests}
    doc = DeltaDoc.of(base, omitted)
    delta_bytes = delta_document(doc)
    entries = parse_sums(staged.sums)
    entries[DELTA_NAME] = hashlib.sha256(delta_bytes).hexdigest()
    delta = Staged(staged.manifest, staged.epoch, staged.head, staged.meta_bytes, format_sums(entries),
                    [m for m in staged.members if m.path not in omitted])
    delta.delta, delta.delta_bytes = doc, delta_bytes
    delta.helm_check, delta.warnings = staged.helm_check, staged.warnings
    delta.omitted = omitted
    delta.cache = staged.cache
    return delta
