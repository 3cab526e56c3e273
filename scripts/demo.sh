#!/usr/bin/env bash
# The main job end to end on the shipped default manifest:
# keygen -> build -> verify (ours, then by hand) -> install into a kit -> status.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
OB=$PWD/.venv/bin/offline-bundle
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
(cd "$DEMO/by-hand" && B=$ARCHIVE PUB=$DEMO/keys/bundle.pub bash -euo pipefail -c "$(
    python3 - <<'PY'
import re
doc = open("docs/VERIFY.md").read()
print("\n".join(body for info, body in re.findall(r"```(sh[^\n]*)\n(.*?)```", doc, re.S)
                if info[2:].strip() in ("", "ed25519")))
PY
)" && echo "by-hand verification: all checks passed")

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
