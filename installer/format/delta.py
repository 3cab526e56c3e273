"""Blob-level deltas (docs/FORMAT.md "Archive format"; issue 5).

`inventory` lists what a kit holds — bundle names, versions, bundle_ids and the sha256 of every file —
with no paths, hosts or registries, so it can pass an outbound review. A delta archive carries only the
files whose sha256 the base lacks; its signed SHA256SUMS and bundle.json describe the FULL version and
DELTA.json (installer/format/model.py: DeltaDoc) names the base and what was omitted. Installing a delta
finds each omitted file in the kit by sha256 from the installed versions' own signed SHA256SUMS (the
inventory is never trusted) and re-hashes it as it is linked or copied into staging.
"""

import json

from installer.format.meta import canonical_json
from installer.format.model import DELTA_JSON, DeltaDoc

MAX_DELTA_BYTES = 64 * 1024 * 1024
INVENTORY_KIND = "offline-bundle-inventory"


def parse_delta(data: bytes) -> DeltaDoc:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DELTA_JSON.error("not JSON") from exc
    return DeltaDoc.from_dict(doc)


def delta_document(delta: DeltaDoc) -> bytes:
    """DELTA.json's bytes, as the builder writes them."""
    return canonical_json(delta.to_dict())
