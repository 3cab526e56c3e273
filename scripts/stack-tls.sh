#!/usr/bin/env bash
# The stack's TLS, shown with the real Prometheus (Debian's `prometheus` package) and the files an install put in a
# kit: the kit's config/prometheus-web.yaml and config/prometheus.yaml, the dev TLS set in KIT/secrets/tls, the
# site's token in KIT/secrets/token, and the group `install --secrets-group GID` granted them to.
#
# Prometheus runs as compose runs it: as the image's user 65534 with only that group, the two secrets folders
# bind-mounted (a private mount namespace: unshare -m, as Docker mounts them), so it reads its key through exactly
# that grant. Then curl asks it, as an operator would (docs/TLS.md), with and without a client certificate, and
# Prometheus's own target list shows its self-scrape over TLS. The collector, Tempo and Loki do not run here: their
# jobs show as down. Only the mount paths, the listen address and the scrape interval differ from the kit's files.
#
# Usage: scripts/stack-tls.sh KIT GID   (as root: mount and setpriv need it). Linux, curl, unshare, setpriv.
set -euo pipefail
KIT=$(realpath "$1"); GID=$2
VERSION="$KIT/current/telemetry-storage"
TLS="$KIT/secrets/tls"
W=$(mktemp -d /tmp/stack-tls.XXXXXX)
PROM=
cleanup() { if [ -n "$PROM" ]; then kill "$PROM" 2>/dev/null || true; wait "$PROM" 2>/dev/null || true; fi; rm -rf "$W"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$W/tls" "$W/auth" "$W/data" && chown 65534:65534 "$W/data" && chmod 755 "$W"
python3 - "$VERSION/config" "$W" "$PORT" <<'PY'
import json, sys
config, work, port = sys.argv[1], sys.argv[2], sys.argv[3]
def rewrite(text):
    return (text.replace("/etc/telemetry/tls/", work + "/tls/").replace("/etc/telemetry/auth/", work + "/auth/")
            .replace("localhost:9090", "127.0.0.1:" + port).replace("scrape_interval: 30s", "scrape_interval: 2s")
            .replace("scrape_timeout: 10s", "scrape_timeout: 2s"))
for src, dst in (("prometheus-web.yaml", "web.yml"), ("prometheus.yaml", "prometheus.yml")):
    with open("%s/%s" % (config, src)) as f, open("%s/%s" % (work, dst), "w") as g:
        g.write(rewrite(f.read()))
PY
chmod 644 "$W/web.yml" "$W/prometheus.yml"

echo "KIT/secrets as the install left them (group $GID may read what the containers mount, no one else):"
ls -ld "$TLS" "$KIT/secrets/token"
ls -l "$TLS/tls.key" "$TLS/ca.key" "$KIT/secrets/token/token"
echo "the web config Prometheus serves with (config/prometheus-web.yaml; the Helm values carry the same):"
sed -n '/^tls_server_config/,$p' "$VERSION/config/prometheus-web.yaml"

# shellcheck disable=SC2016  # $1..$4 are the inner shell's
unshare -m sh -c 'mount --bind "$1" "$3/tls" && mount --bind "$2" "$3/auth" && exec setpriv --reuid=65534 \
    --regid=65534 --groups="$5" -- prometheus --config.file="$3/prometheus.yml" --web.config.file="$3/web.yml" \
    --web.listen-address=127.0.0.1:"$4" --storage.tsdb.path="$3/data"' \
    sh "$TLS" "$KIT/secrets/token" "$W" "$PORT" "$GID" > "$W/prometheus.log" 2>&1 &
PROM=$!
ask() { curl -sS --max-time 5 --cacert "$TLS/ca.crt" "$@" "https://127.0.0.1:$PORT/-/ready"; }
for _ in $(seq 1 100); do ask --cert "$TLS/client.crt" --key "$TLS/client.key" >/dev/null 2>&1 && break
    kill -0 "$PROM" 2>/dev/null || { cat "$W/prometheus.log"; exit 1; }; sleep 0.2; done

echo
echo "\$ curl --cacert ca.crt --cert client.crt --key client.key https://127.0.0.1:$PORT/-/ready"
ask --cert "$TLS/client.crt" --key "$TLS/client.key"
echo
echo "\$ curl --cacert ca.crt https://127.0.0.1:$PORT/-/ready        (no client certificate)"
if ask 2>&1; then echo "UNEXPECTED: answered without a client certificate"; exit 1; fi
echo "  -> refused during the TLS handshake"
targets() { curl -sS --cacert "$TLS/ca.crt" --cert "$TLS/client.crt" --key "$TLS/client.key" \
    "https://127.0.0.1:$PORT/api/v1/targets"; }
# the first scrape comes once the scrape manager has taken the targets (it updates every 5 s)
self_up() { targets | python3 -c 'import json, sys; sys.exit(not any(t["labels"]["job"] == "prometheus" and
    t["health"] == "up" for t in json.load(sys.stdin)["data"]["activeTargets"]))'; }
for _ in $(seq 1 60); do self_up && break; sleep 0.5; done
echo
echo "Prometheus's targets (it scrapes itself over TLS with tls.crt; the others are not running here):"
targets | python3 -c '
import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    print("  %-15s %-28s %-5s %s" % (t["labels"]["job"], t["scrapeUrl"], t["health"], t.get("lastError", "")[:60]))'
