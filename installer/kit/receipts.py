"""Receipts: one JSON document per install or rollback attempt, rewritten atomically after every phase
(PRODUCT.md "Kit and install phases")."""

import os
from typing import Optional

from installer.errors import BundleError
from installer.fsutil import write_atomic
from installer.kit.layout import Kit, new_receipt_name, utc_now
from installer.format.meta import canonical_json

PHASES = {1: "verify-and-stage", 2: "promote", 3: "push-and-load", 4: "render", 5: "switch-current",
          6: "tags-and-apply"}


class Receipt:
    """One install attempt, rewritten atomically after every phase."""

    def __init__(self, kit: Kit, archive: str) -> None:
        self.kit = kit
        self.path = os.path.join(kit.receipts, new_receipt_name())
        self.doc = {"receipt": 1, "archive": os.path.basename(archive), "started": utc_now(), "finished": None,
                    "name": None, "version": None, "bundle_id": None, "signer": None, "previous": None,
                    "downgrade_reason": None, "phases": [], "outcome": "running", "error": None}

    def phase(self, number: int, status: str, detail: str = "") -> None:
        self.doc["phases"].append({"phase": number, "name": PHASES[number], "status": status,
                                   "detail": detail, "at": utc_now()})
        self.save()

    def save(self) -> None:
        write_atomic(self.path, canonical_json(self.doc))

    def finish(self, outcome: str, error: Optional[BundleError] = None) -> None:
        self.doc["outcome"] = outcome
        self.doc["finished"] = utc_now()
        if error is not None:
            self.doc["error"] = error.to_json()
        self.save()
