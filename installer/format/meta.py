"""bundle.json as bytes: the one serialisation the builder writes and the entry point the installer reads.

It is parsed only after its bytes matched their signed SHA256SUMS line, and checked field by field by the
typed model (installer/format/model.py) with the standard library: the installer carries no schema engine.
"""

import json
from typing import Any, Tuple

from installer.format.model import BUNDLE_JSON, BundleHead

MAX_META_BYTES = 64 * 1024 * 1024


def parse_meta(data: bytes) -> BundleHead:
    """bundle.json's bytes -> the checked model, or InvalidInput (exit 3) naming the first bad value."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BUNDLE_JSON.error("not JSON (%s)" % type(exc).__name__) from exc
    return BundleHead.from_dict(raw)


def canonical_json(obj: Any) -> bytes:
    """The one serialisation the builder uses, so equal content gives equal bytes."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def member_paths(meta: BundleHead) -> Tuple[str, ...]:
    return tuple(m.path for m in meta.members)
