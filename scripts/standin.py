#!/usr/bin/env python3
"""Serve stand-ins for the default manifest's images (the demo's 'internet' and its 'air-gapped' site).

  scripts/standin.py FOLDER [MANIFEST]

Starts two real registries on loopback (docker-registry): SOURCE, seeded with small multi-platform
stand-in images for every docker.io reference of MANIFEST, and SITE, empty. Writes FOLDER/standin.env
(SOURCE=host:port, SITE=host:port) when ready, and stops both on SIGTERM.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.standin import serve  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    serve(Path(sys.argv[1]).resolve(),
          Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "manifests" / "telemetry-storage.yaml")
