#!/usr/bin/env bash
# On a connected host: fetch the default manifest's upstream charts (with the subcharts vendored in each
# chart's .tgz) into DIR, untarred, for tests/integration/test_k8s_validate.py, which renders them with
# `helm template` and checks every object with kubernetes-validate --strict. The tests cannot fetch them:
# they run offline. The versions are manifests/telemetry-storage.yaml's; keep them in step.
# Usage: scripts/upstream-charts.sh [DIR]   (default ./upstream-charts; never commit it)
set -euo pipefail
out=$(realpath -m "${1:-upstream-charts}")   # relative to where it is run, before the cd
cd "$(dirname "$0")/.."
PATH="$PWD/.tools/bin:$PATH"   # the helm scripts/setup.sh installs, before any other

# A private helm home: no repository, credential or cache of this host is read or changed.
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
export HELM_CONFIG_HOME="$home/config" HELM_CACHE_HOME="$home/cache" HELM_DATA_HOME="$home/data"

pull() {  # NAME VERSION REPO_URL
    rm -rf "${out:?}/$1"   # helm refuses to untar over an existing folder
    helm pull "$1" --repo "$3" --version "$2" --untar --destination "$out"
}
mkdir -p "$out"
pull prometheus 27.19.0 https://prometheus-community.github.io/helm-charts
pull loki 6.29.0 https://grafana.github.io/helm-charts
pull tempo 1.23.3 https://grafana.github.io/helm-charts

echo "upstream charts in $out; now run:"
echo "  cd $PWD && OFFLINE_BUNDLE_UPSTREAM_CHARTS=$out PATH=\$PWD/.tools/bin:\$PATH PYTHONPATH=\$PWD" \
     ".venv/bin/pytest -q -p no:cacheprovider tests/integration/test_k8s_validate.py"
