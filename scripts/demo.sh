#!/usr/bin/env bash
# The main job end to end on the shipped default manifest:
# keygen -> build -> verify (ours, then by hand) -> install into a kit -> status.
set -euo pipefail
cd "$(dirname "$0")/.."
# OFFLINE_BUNDLE_CLI: run the demo with an offline-bundle already installed (the test suite does).
if [ -z "${OFFLINE_BUNDLE_CLI:-}" ]; then scripts/setup.sh; fi
OB=${OFFLINE_BUNDLE_CLI:-$PWD/.venv/bin/offline-bundle}
DEMO=${DEMO_DIR:-$PWD/demo}
rm -rf "$DEMO"; mkdir -p "$DEMO"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1795651200}   # 2026-11-26T00:00:00Z: reproducible output

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "keygen: an Ed25519 signing key (private key 0600)"
"$OB" keygen --out "$DEMO/keys"

step "build: manifests/telemetry-storage.yaml -> one signed archive"
ARCHIVE=$("$OB" build manifests/telemetry-storage.yaml --key "$DEMO/keys/bundle.key" --out "$DEMO/out" | tail -n 1)
ls -l "$DEMO/out"

step "verify: signature, every checksum, structure"
"$OB" verify "$ARCHIVE" --trust "$DEMO/keys/bundle.pub"

step "verify by hand (docs/VERIFY.md): sha256sum, tar, zstd, openssl only"
mkdir -p "$DEMO/by-hand"
PROCEDURE=$(python3 scripts/verify_md.py ed25519)
(cd "$DEMO/by-hand" && B=$ARCHIVE PUB=$DEMO/keys/bundle.pub bash -euo pipefail -c "$PROCEDURE")
echo "by-hand verification: all checks passed"

step "inspect: what is inside"
"$OB" inspect "$ARCHIVE" --trust "$DEMO/keys/bundle.pub"

step "install into the Offline Kit at $DEMO/kit"
"$OB" install "$ARCHIVE" --kit "$DEMO/kit" --trust "$DEMO/keys/bundle.pub"

step "install again: same bundle_id, nothing to do"
"$OB" install "$ARCHIVE" --kit "$DEMO/kit" --trust "$DEMO/keys/bundle.pub"

step "status"
"$OB" status --kit "$DEMO/kit"

step "the installed tree checks with coreutils alone"
(cd "$DEMO/kit/current/telemetry-storage" && sha256sum -c --strict SHA256SUMS)
ls -lR "$DEMO/kit/current/telemetry-storage/" | head -n 40
