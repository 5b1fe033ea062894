#!/usr/bin/env bash
# The README's dashboard screenshot: starts a throwaway localnet with gateways, a real
# Prometheus scraping its twelve endpoints, drives load through the chain and the gateways for
# a few minutes, then draws every panel of localnet/grafana/medledger.json
# (localnet/grafana/render.html runs each panel's PromQL through Prometheus's HTTP API) in
# headless chromium and saves the PNG. Exits non-zero if any panel drew no data.
#
# Grafana itself is AGPL-licensed, which this project keeps off its machines; the dashboard JSON
# is the same file an operator imports into Grafana.
#
# Needs: medledger and cometbft on PATH (scripts/localnet.sh installs both), chromium, python3,
# and Prometheus:  go install github.com/prometheus/prometheus/cmd/prometheus@v0.316.0
# Usage: scripts/dashboard-shot.sh [OUT.png]   (env: SECONDS_OF_LOAD, default 240)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-docs/img/dashboard.png}"
load_s="${SECONDS_OF_LOAD:-240}"
prometheus="${PROMETHEUS:-$(command -v prometheus || echo "$HOME/go/bin/prometheus")}"
[ -x "$prometheus" ] || {
  echo "Prometheus not found: go install github.com/prometheus/prometheus/cmd/prometheus@v0.316.0" >&2
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

home="$(mktemp -d)"
export MEDLEDGER_HOME="$home"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  medledger localnet down >/dev/null 2>&1 || true
  rm -rf "$home"
}
trap cleanup EXIT

base="${BASE_PORT:-26656}"
medledger localnet up --base-port "$base" >/dev/null
medledger localnet status -o json > "$home/status.json"
node0() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0][sys.argv[2]])' "$home/status.json" "$1"; }
export MEDLEDGER_NODE="$(node0 rpc)"

# One scrape target per endpoint, its instance label the node's name, so legends read
# "hospital-a" rather than an address.
python3 - "$home/status.json" > "$home/prometheus.yml" <<'EOF'
import json, sys
from urllib.parse import urlparse
nodes = json.load(open(sys.argv[1]))
def hostport(url):
    u = urlparse(url if "//" in url else "http://" + url)
    return f"{u.hostname}:{u.port}"
jobs = {"medledger": [], "cometbft": [], "medledger-gateway": []}
for n in nodes:
    jobs["medledger"].append((n["name"], hostport(n["metrics"])))
    jobs["cometbft"].append((n["name"], hostport(n["cometbft_metrics"])))
    jobs["medledger-gateway"].append((n["name"], hostport(n["gateway"])))
print("global: {scrape_interval: 2s, evaluation_interval: 2s}")
print("scrape_configs:")
for job, targets in jobs.items():
    print(f"  - job_name: {job}")
    print("    static_configs:")
    for name, target in targets:
        print(f"      - {{targets: ['{target}'], labels: {{instance: {name}}}}}")
EOF
prom_port="$(free_port)"
"$prometheus" --config.file="$home/prometheus.yml" --storage.tsdb.path="$home/prometheus" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn > "$home/prometheus.log" 2>&1 &
pids+=($!)
start="$(date +%s)"

# Load: records through the gateways (a store, reads under consent, a refused read) with
# their pages, and members' reads and patients' consents through the chain.
name="shot-patient"
medledger keys add "$name" >/dev/null
patient="$(medledger keys show "$name" -o json | grep -o '"patient_id": "[^"]*"' | cut -d'"' -f4)"
medledger tx --from hospital-a patient register --patient-key "$name" >/dev/null
medledger tx --from "$name" consent grant --grantee hospital-a --class Observation --purpose TREAT >/dev/null
obs="$home/obs.json"
printf '{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1,"unit":"%%"}}' > "$obs"
gw="$(node0 gateway)"
# The load generator signs with the members' keys too: start it after the setup's txs.
medledger bench load --rate 60 --connections 2 --duration "$((load_s - 20))" --quiet > "$home/load.log" 2>&1 &
pids+=($!)
i=0
while [ "$(date +%s)" -lt $((start + load_s)) ]; do
  i=$((i + 1))
  record="shot-$i"
  medledger vault put --from lab-b --patient "$patient" --type Observation --file "$obs" --record "$record" >/dev/null 2>&1 || true
  medledger vault get --from hospital-a --record "$record" --purpose TREAT --out /dev/null >/dev/null 2>&1 || true
  medledger vault get --from insurer-c --record "$record" --purpose TREAT --out /dev/null >/dev/null 2>&1 || true
  curl -s -o /dev/null "$gw/fhir/metadata" || true
  curl -s -o /dev/null "$gw/patient" || true
  sleep 1
done
sleep 6
end="$(date +%s)"

http_port="$(free_port)"
python3 -m http.server --bind 127.0.0.1 --directory localnet/grafana "$http_port" > /dev/null 2>&1 &
pids+=($!)
sleep 1
url="http://127.0.0.1:$http_port/render.html?prom=http://127.0.0.1:$prom_port&start=$start&end=$end&step=4&rate=20s"
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$home/chrome" --hide-scrollbars --window-size=1600,2880 --virtual-time-budget=30000)
"${chrome[@]}" --dump-dom "$url" > "$home/dom.html" 2>/dev/null
mkdir -p "$(dirname "$out")"
"${chrome[@]}" --screenshot="$out" "$url" 2>/dev/null
grep -q '<title>rendered</title>' "$home/dom.html" || { echo "the page did not finish rendering" >&2; exit 1; }
empty="$(grep -o 'class="empty"' "$home/dom.html" | wc -l || true)"
panels="$(python3 -c 'import json,sys; print(sum(p["type"] != "row" for p in json.load(open(sys.argv[1]))["panels"]))' localnet/grafana/medledger.json)"
echo "wrote $out: $panels panels, $((end - start)) s of data; $empty drew none"
[ "$empty" -eq 0 ] || { grep -o 'class="panel"[^>]*><h2>[^<]*</h2><div class="empty">[^<]*' "$home/dom.html" >&2; exit 2; }
