"""What the kit holds, as input for delta builds."""

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from installer.cli.options import KIT_OPT, Command, Opt
from installer.format.model import Json
from installer.kit.deltaindex import InventoryDoc


@dataclass(frozen=True)
class InventoryWritten:
    """inventory --out FILE: what was written there."""

    out: str
    bundles: Tuple[Dict[str, str], ...]  # {name, version, bundle_id}
    files: int                           # file digests


def run_inventory(kit: str, out: Optional[str] = None, **_: Any) -> Union[InventoryDoc, InventoryWritten]:
    from installer.kit.deltaindex import inventory

    doc = inventory(kit)
    if out:
        with open(out, "w", encoding="ascii") as fh:
            json.dump(doc, fh, sort_keys=True, indent=2)
            fh.write("\n")
        return InventoryWritten(out, tuple(doc["bundles"]), len(doc["sha256"]))
    return doc


def json_inventory(r: Union[InventoryDoc, InventoryWritten]) -> Dict[str, Json]:
    if isinstance(r, InventoryWritten):
        return {"out": r.out, "bundles": list(r.bundles), "files": r.files}
    return dict(r)


def text_inventory(r: Union[InventoryDoc, InventoryWritten]) -> List[str]:
    if isinstance(r, InventoryWritten):
        return ["wrote %s: %d bundle versions, %d file digests (no paths, hosts or registries)"
                % (r.out, len(r.bundles), r.files)]
    return json.dumps(r, sort_keys=True, indent=2).split("\n")  # one item per line (cli escapes newlines in items)


COMMANDS = [Command("inventory", "the digests, names, versions and bundle_ids the kit holds (input for delta builds)",
            [KIT_OPT, Opt("--out", metavar="FILE", help="write to FILE (default: stdout)")],
            run_inventory, text_inventory, json_inventory)]
