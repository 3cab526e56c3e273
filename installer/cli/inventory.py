"""What the kit holds, as input for delta builds."""

import json
from typing import List, Optional

from installer.cli.options import KIT_OPT, Command, Opt


def run_inventory(kit: str, out: Optional[str] = None, **_) -> dict:
    from installer.kit.deltaindex import inventory

    doc = inventory(kit)
    if out:
        with open(out, "w", encoding="ascii") as fh:
            json.dump(doc, fh, sort_keys=True, indent=2)
            fh.write("\n")
        return {"out": out, "bundles": doc["bundles"], "files": len(doc["sha256"])}
    return doc


def text_inventory(r: dict) -> List[str]:
    if "out" in r:
        return ["wrote %s: %d bundle versions, %d file digests (no paths, hosts or registries)"
                % (r["out"], len(r["bundles"]), r["files"])]
    return json.dumps(r, sort_keys=True, indent=2).split("\n")  # one item per line (cli escapes newlines in items)


COMMANDS = [Command("inventory", "the digests, names, versions and bundle_ids the kit holds (input for delta builds)",
            [KIT_OPT, Opt("--out", metavar="FILE", help="write to FILE (default: stdout)")],
            run_inventory, text_inventory)]
