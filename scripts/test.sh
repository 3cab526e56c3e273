#!/usr/bin/env bash
# The test command: set up (idempotent), then run the whole suite against the installed wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export OFFLINE_BUNDLE_WHEEL=$(ls "$PWD"/dist/offline_bundle-*.whl)
export PATH="$PWD/.tools/bin:$PATH"   # the helm and kubectl setup.sh installed, before any other
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
