#!/usr/bin/env python3
"""Print the runnable procedure of docs/VERIFY.md for one key type (its `sh` blocks, in order).

Used by scripts/demo.sh and by tests/integration/test_verify_by_hand.py, so the demo and the test
run exactly what the document says. Refuses to print an empty or partial procedure.
"""

import re
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "VERIFY.md"
ALGORITHMS = ("ed25519", "ecdsa-p256")


def procedure(algorithm: str, doc: Path = DOC) -> str:
    if algorithm not in ALGORITHMS:
        raise SystemExit("verify_md: the algorithm is ed25519 or ecdsa-p256, not %r" % algorithm)
    blocks = [body for info, body in re.findall(r"```(sh[^\n]*)\n(.*?)```", doc.read_text(), re.S)
              if info[2:].strip() in ("", algorithm)]
    if len(blocks) < 6 or not any("openssl" in b for b in blocks):
        raise SystemExit("verify_md: %s has lost its runnable blocks" % doc)
    return "\n".join(blocks)


def cosign_procedure(algorithm: str, doc: Path = DOC) -> str:
    """The by-hand check of an upstream cosign signature on the site (its `sh cosign` blocks, then the one for
    the key's type)."""
    if algorithm not in ALGORITHMS:
        raise SystemExit("verify_md: the algorithm is ed25519 or ecdsa-p256, not %r" % algorithm)
    blocks = [body for info, body in re.findall(r"```(sh[^\n]*)\n(.*?)```", doc.read_text(), re.S)
              if info[2:].strip() in ("cosign", "cosign-" + algorithm)]
    if len(blocks) < 2 or not any("openssl" in b for b in blocks):
        raise SystemExit("verify_md: %s has lost its cosign blocks" % doc)
    return "\n".join(blocks)


if __name__ == "__main__":
    sys.stdout.write(procedure(sys.argv[1] if len(sys.argv) > 1 else "ed25519"))
