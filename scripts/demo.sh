#!/usr/bin/env bash
# The main job end to end on the shipped default manifest, offline:
# stand-in registries -> keygen -> build (through --mirror) -> verify (ours, then by hand) -> inspect
# -> install into a kit and the "air-gapped" site registry -> status -> check the site's digests -> the deploy
# outputs -> the stack's TLS with the real Prometheus -> the verification report staff file.
set -euo pipefail
cd "$(dirname "$0")/.."
# OFFLINE_BUNDLE_CLI: run the demo with an offline-bundle already installed (the test suite does).
if [ -z "${OFFLINE_BUNDLE_CLI:-}" ]; then scripts/setup.sh; fi
export PATH="$PWD/.tools/bin:$PATH"   # helm, for the build's chart check and for the demo's own checks
OB=${OFFLINE_BUNDLE_CLI:-$PWD/.venv/bin/offline-bundle}
DEMO=${DEMO_DIR:-$PWD/demo}
rm -rf "$DEMO"; mkdir -p "$DEMO"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1795651200}   # 2026-11-26T00:00:00Z: reproducible output

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "stand-ins: a local registry plays docker.io, a local chart server plays the chart repositories,
   and a second registry plays the air-gapped site"
PY=$(dirname "$OB")/python
"$PY" -m tests.helpers.standin "$DEMO/standin" manifests/telemetry-storage.yaml &
STANDIN=$!
trap 'kill $STANDIN 2>/dev/null || true; wait $STANDIN 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -f "$DEMO/standin/standin.env" ] && break; kill -0 $STANDIN; sleep 0.1; done
. "$DEMO/standin/standin.env"
echo "docker.io stand-in: $SOURCE    air-gapped site registry: $SITE"

step "keygen: an Ed25519 signing key (private key 0600)"
"$OB" keygen --out "$DEMO/keys"

step "build: manifests/telemetry-storage.yaml -> one signed archive (images and charts through the stand-ins)"
echo "offline-bundle build manifests/telemetry-storage.yaml --key ... $BUILD_ARGS"
# shellcheck disable=SC2086  # BUILD_ARGS holds the --mirror/--insecure-registry options, one word each
# (its stdout kept in a file and shown: `tee /dev/stderr` would reopen a log the demo is redirected to, from its
# start, truncating it)
"$OB" build manifests/telemetry-storage.yaml --key "$DEMO/keys/bundle.key" --out "$DEMO/out" \
    --cache "$DEMO/cache" --ignore-lock $BUILD_ARGS > "$DEMO/build.out"
cat "$DEMO/build.out"
ARCHIVE=$(tail -n 1 "$DEMO/build.out")
ls -l "$DEMO/out"

step "verify: signature, every checksum, structure"
"$OB" verify "$ARCHIVE" --trust "$DEMO/keys/bundle.pub"

step "verify by hand (docs/VERIFY.md): sha256sum, tar, zstd, openssl only (and jq for the provenance statement)"
mkdir -p "$DEMO/by-hand"
PROCEDURE=$(python3 scripts/verify_md.py ed25519)
(cd "$DEMO/by-hand" && B=$ARCHIVE PUB=$DEMO/keys/bundle.pub bash -euo pipefail -c "$PROCEDURE")
echo "by-hand verification: all checks passed"

step "inspect: what is inside"
"$OB" inspect "$ARCHIVE" --trust "$DEMO/keys/bundle.pub"

step "install into the Offline Kit at $DEMO/kit, push images and charts to the site registry $SITE, render the deploy outputs"
# What the site supplies: the bearer token Prometheus presents (Tempo's object store keys would go in secrets/s3:
# the install names them as missing). --dev-tls makes the TLS set; --secrets-group lets the containers read them.
mkdir -p -m 0700 "$DEMO/kit/secrets/token" && echo "demo-obs-read-token" > "$DEMO/kit/secrets/token/token"
SECRETS_GID=4242   # a group for the stack's secrets: compose gives it to every container (group_add)
"$OB" install "$ARCHIVE" --kit "$DEMO/kit" --trust "$DEMO/keys/bundle.pub" --registry "$SITE" --insecure-registry "$SITE" \
    --dev-tls --secrets-group "$SECRETS_GID"

step "install again: same bundle_id, the archive verified again and the kit's tree checked, nothing written anywhere"
"$OB" install "$ARCHIVE" --kit "$DEMO/kit" --trust "$DEMO/keys/bundle.pub" --registry "$SITE" --insecure-registry "$SITE"

step "status"
"$OB" status --kit "$DEMO/kit"

step "the site registry serves exactly the bundle's digests (checked with skopeo)"
"$PY" - "$DEMO/kit/current/telemetry-storage/bundle.json" "$SITE" <<'PY'
import hashlib, json, subprocess, sys
meta, site = json.load(open(sys.argv[1])), sys.argv[2]
for image in meta["images"]:
    where = "docker://%s/%s:%s" % (site, image["repository"], image["tag"])
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", where], check=True,
                         capture_output=True).stdout
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    assert digest == image["digest"], (where, digest, image["digest"])
    print("%-70s %s  %s" % (where[9:], digest[:19], "derived index" if image["derived"] else ""))
PY

step "the deploy outputs: compose files and chart values pinned to the site, Kubernetes objects, secrets apart"
OUT="$DEMO/kit/deploy/telemetry-storage/2026.11.0/$(echo "$SITE" | tr ':/' '__')"
(cd "$OUT" && find . -type f | sort)
grep -h "image:" "$OUT"/compose/*.yaml
echo "secrets (0700/0600, never in deploy/ or bundles/):"
ls -l "$DEMO/kit/secrets/telemetry-storage/2026.11.0/"*/
echo "helm pull oci://$SITE/charts/prometheus --version 27.19.0 (from the air-gapped site):"
mkdir -p "$DEMO/helm"
HELM_CONFIG_HOME="$DEMO/helm" HELM_CACHE_HOME="$DEMO/helm" HELM_DATA_HOME="$DEMO/helm" \
    helm pull "oci://$SITE/charts/prometheus" --version 27.19.0 --plain-http -d "$DEMO/helm"
HELM_CONFIG_HOME="$DEMO/helm" HELM_CACHE_HOME="$DEMO/helm" HELM_DATA_HOME="$DEMO/helm" \
    helm template prometheus "$DEMO/helm/prometheus-27.19.0.tgz" -f "$OUT/values/prometheus.yaml" | grep "image:"
echo "to deploy (also in $OUT/COMMANDS.txt):"
sed 's/^/  /' "$OUT/COMMANDS.txt"

step "the installed tree checks with coreutils alone, and with verify --kit (hashes, modes, today's keys)"
(cd "$DEMO/kit/current/telemetry-storage" && sha256sum -c --strict --quiet SHA256SUMS && echo "sha256sum: all $(wc -l < SHA256SUMS) files OK")
"$OB" verify --kit "$DEMO/kit" --trust "$DEMO/keys/bundle.pub"
ls -l "$DEMO/kit/current/telemetry-storage/" "$DEMO/kit/current/telemetry-storage/config"

step "the stack's TLS, with the real Prometheus (Debian's package) and the kit's own web config, certificates and grant"
scripts/stack-tls.sh "$DEMO/kit" "$SECRETS_GID"

step "the report security staff file: verified, printable, self-contained (no script, no network)"
"$OB" report "$ARCHIVE" --trust "$DEMO/keys/bundle.pub" --out "$DEMO/report.html"
"$OB" report --kit "$DEMO/kit" --trust "$DEMO/keys/bundle.pub" --out "$DEMO/kit-report.html"
echo "the archive's report: $DEMO/report.html (open it in a browser, print it to PDF)"
echo "the kit's report:     $DEMO/kit-report.html"
