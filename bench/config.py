"""Constants shared by the benchmark: targets, limits, the operations measured, and small utilities."""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository

GENERATOR_VERSION = 1          # bump when the image set changes: invalidates --data-dir
MiB = 1 << 20
SAMPLE_INTERVAL = 0.05         # s between /proc polls for the process tree's RSS
SKOPEO_CACHE = "/var/lib/containers/cache"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy")

# issue 7 item 2: ratios of medians (ours / baseline)
TARGETS = {
    "build": 1.0,
    "verify": 0.8,
    "install": 0.8,
    "install_push": 1.0,
    "warm_rebuild": 0.15,
    "sbom_cost": 1.10,         # issue 14: SBOMs on may cost the cold build at most 10%
}
RSS_LIMIT_MB = 200.0
RSS_FLAT_GROWTH = 0.10        # "flat": peak at 2X at most 10% above peak at X

OPS = ("build", "verify", "install", "install_push", "warm_rebuild", "delta", "sbom_cost")


class BenchError(Exception):
    """A clear, one-line reason the benchmark cannot go on."""


def log(msg: str) -> None:
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()
