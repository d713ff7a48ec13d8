#!/usr/bin/env bash
# POST /v1/check with entitlements.source aforo_api against a local fake of Aforo's decision endpoints
# (aforo-fake-aforo-api, answering after FAKE_DELAY_MS to stand for the round trip to Aforo), beside the
# same sidecar build on the snapshot source in the same run. Prints p50/p99 of /v1/check and the calls
# the fake received per customer per minute. See bench/README.md.
#
#   SIDECAR_BIN=build/daemon/aforo-sidecar FAKE_API_BIN=build/tests/aforo-fake-aforo-api bench/check/aforo_api.sh
#
# Env: DURATION (per run, default 20s), CONNECTIONS (default 4), CUSTOMERS (the many-customer run, default
#      100), FAKE_DELAY_MS (default 20), RATE_DELAY_MS (pause before each request per connection, default 1),
#      API_CONNECTIONS (entitlements.aforo_api.connections of the sidecar, default 4: the config default).
# Each customer set is warmed up for WARMUP (default 3s) before it is measured, so the table shows the
# steady state; the first checks of a customer never seen wait for its first answer (up to aforo_api.wait).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-4}"
CUSTOMERS="${CUSTOMERS:-100}"
FAKE_DELAY_MS="${FAKE_DELAY_MS:-20}"
RATE_DELAY_MS="${RATE_DELAY_MS:-1}"
API_CONNECTIONS="${API_CONNECTIONS:-4}"
WARMUP="${WARMUP:-3s}"
need_tools "apt-get install -y wrk" wrk curl

bench_binaries
FAKE_API_BIN="${FAKE_API_BIN:-$(dirname "$SIDECAR_BIN")/../tests/aforo-fake-aforo-api}"
[ -x "$FAKE_API_BIN" ] || { echo "no fake at $FAKE_API_BIN (build the aforo-fake-aforo-api target)" >&2; exit 1; }
bench_work check-api

api_port="$(free_port)"
"$FAKE_API_BIN" --listen "127.0.0.1:$api_port" --delay-ms "$FAKE_DELAY_MS" >"$work/fake.log" 2>&1 &
pids+=($!)

# start_sidecar NAME ENTITLEMENTS_YAML: sets `port` (no subshell: pids must reach cleanup)
start_sidecar() {
  port="$(free_port)"
  cat >"$work/$1.yaml" <<YAML
listen: ["127.0.0.1:$port"]
aforo: { ingest_url: "http://127.0.0.1:9/v1/ingest/batch", control_url: "http://127.0.0.1:$api_port", tenant_id: bench }
entitlements: $2
buffer: { spool_dir: "$work/spool-$1", durability: memory }
discovery: { enabled: false, state_dir: "$work/state-$1" }
log: { level: warn }
YAML
  AFORO_API_KEY=bench-key-0000 "$SIDECAR_BIN" --config "$work/$1.yaml" 2>"$work/$1.log" &
  pids+=($!)
  wait_port "$port"
}
start_sidecar snapshot "{ source: \"file:$here/snapshot.yaml\" }"
snap_port="$port"
start_sidecar api "{ source: aforo_api, aforo_api: { connections: $API_CONNECTIONS } }"
api_sc_port="$port"
wait_port "$api_port"

calls() { curl -s "http://127.0.0.1:$api_port/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["quota"], d["margin"])'; }

# run PORT CUSTOMERS -> "rps p50 p99 max errors requests"
run() {
  local out
  out="$(CUSTOMERS="$2" DELAY_MS="$RATE_DELAY_MS" wrk -t1 -c "$CONNECTIONS" -d "$DURATION" -s "$here/check.lua" \
    "http://127.0.0.1:$1/v1/check" 2>&1)"
  grep '^RESULT' <<<"$out" | sed -E 's/RESULT rps=([0-9]+) p50_us=([0-9]+) p99_us=([0-9]+) max_us=([0-9]+) requests=([0-9]+) errors=([0-9]+)/\1 \2 \3 \4 \6 \5/' ||
    { echo "$out" >&2; exit 1; }
}
secs="$(sed -E 's/s$//' <<<"$DURATION")"

DURATION=2s run "$snap_port" 1 >/dev/null  # warm-up
echo
echo "POST /v1/check by decision source, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sidecar: $SIDECAR_BIN; wrk -t1 -c$CONNECTIONS, ${RATE_DELAY_MS} ms pause per request, $DURATION per run after $WARMUP warm-up;"
echo "fake Aforo answers after $FAKE_DELAY_MS ms; aforo_api.connections $API_CONNECTIONS"
printf '%-44s %8s %9s %9s %7s %12s %12s\n' run req/s p50_us p99_us errors "quota/cust/m" "margin/cust/m"
line() { # LABEL RESULT CUSTOMERS QUOTA MARGIN
  read -r rps p50 p99 _max errors _req <<<"$2"
  printf '%-44s %8s %9s %9s %7s %12s %12s\n' "$1" "$rps" "$p50" "$p99" "$errors" \
    "$(awk -v c="$4" -v n="$3" -v s="$secs" 'BEGIN { printf "%.1f", c / n / (s / 60) }')" \
    "$(awk -v c="$5" -v n="$3" -v s="$secs" 'BEGIN { printf "%.1f", c / n / (s / 60) }')"
}
r="$(run "$snap_port" 1)"
line "snapshot (file), 1 customer" "$r" 1 0 0
for n in 1 "$CUSTOMERS"; do
  DURATION="$WARMUP" run "$api_sc_port" "$n" >/dev/null
  read -r q0 m0 <<<"$(calls)"
  r="$(run "$api_sc_port" "$n")"
  read -r q1 m1 <<<"$(calls)"
  line "aforo_api, $n customer(s)" "$r" "$n" "$((q1 - q0))" "$((m1 - m0))"
done
