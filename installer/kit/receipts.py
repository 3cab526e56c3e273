"""Receipts: one JSON document per install or rollback attempt, rewritten atomically after every phase
(docs/FORMAT.md "Kit and install phases"). The document is installer/format/model.py's ReceiptRecord."""

import os
from dataclasses import replace
from typing import Optional

from installer.errors import BundleError
from installer.fsutil import write_atomic
from installer.kit.layout import Kit, new_receipt_name, utc_now
from installer.format.meta import canonical_json
from installer.format.model import Json, Outcome, Phase, PhaseRecord, ReceiptRecord, SiteOptions


class Receipt:
    """One attempt, written to .state/receipts/<UTC time>-<pid>.json."""

    def __init__(self, kit: Kit, archive: str) -> None:
        self.kit = kit
        self.path = os.path.join(kit.receipts, new_receipt_name())
        self.record = ReceiptRecord(archive=os.path.basename(archive), started=utc_now())

    def update(self, **fields: Json) -> None:
        """Set fields of the record (written with the next phase, or ``save``)."""
        self.record = replace(self.record, **fields)

    def record_site(self, site: str, report: Json, options: SiteOptions) -> None:
        """What phase 3 pushed to a site registry, and how rollback can reach that site again."""
        self.update(sites={**(self.record.sites or {}), site: report},
                    site_options={**self.record.site_options, site: options})

    def phase(self, phase: Phase, status: str, detail: str = "") -> None:
        self.record = self.record.with_phase(PhaseRecord.new(phase, status, detail, utc_now()))
        self.save()

    def save(self) -> None:
        write_atomic(self.path, canonical_json(self.record.to_dict()))

    def finish(self, outcome: str, error: Optional[BundleError] = None) -> None:
        self.update(outcome=outcome, finished=utc_now())
        if error is not None:
            self.update(error=error.to_json())
        self.save()

    @property
    def running(self) -> bool:
        return bool(self.record.outcome == Outcome.RUNNING)
