#!/usr/bin/env bash
# Usage pipeline throughput: POST /v1/ingest/batch under wrk with the sidecar delivering to a local
# aforo-fake-ingest (LZ4 on), durability disk vs. a same-run baseline (durability memory, and the
# sidecar's own /healthz as the request floor). Prints accepted and delivered events/s and wire
# bytes per event. See bench/README.md.
#
#   bench/pipeline/run.sh              # builds a Release sidecar + fake ingest in build-bench if needed
#   SIDECAR_BIN=... FAKE_INGEST_BIN=... DURATION=10s bench/pipeline/run.sh
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN, BUILD_DIR (default build-bench), DURATION (per run, default 10s),
#      CONNECTIONS (default 8), EVENTS (per request, default 200), BATCH (batch.max_events, default 100),
#      COMPRESSION (lz4 | none, default lz4), MODES (default "disk/off disk/interval disk/always memory":
#      buffer.durability, and for disk the buffer.fsync mode).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-8}"
EVENTS="${EVENTS:-200}"
BATCH="${BATCH:-100}"
COMPRESSION="${COMPRESSION:-lz4}"
MODES="${MODES:-disk/off disk/interval disk/always memory}"

need_tools "apt-get install -y wrk" wrk
bench_binaries fake-ingest
bench_work pipeline

# The fake ingest, for the whole run.
start_fake_ingest

start_sidecar() {  # DURABILITY[/FSYNC] -> sets sc_port, sc_pid
  local durability="${1%%/*}" fsync="off"
  [[ "$1" == */* ]] && fsync="${1#*/}"
  sc_port="$(free_port)"
  rm -rf "$work/spool"
  cat >"$work/sidecar.yaml" <<YAML
listen: ["127.0.0.1:$sc_port"]
aforo: { ingest_url: "http://127.0.0.1:$fake_port/v1/ingest/batch" }
entitlements: { source: "file:$root/config/snapshot.example.yaml" }
batch: { max_events: $BATCH, compression: $COMPRESSION }
buffer: { spool_dir: "$work/spool", durability: $durability, fsync: $fsync }
discovery: { enabled: false, state_dir: "$work/state" }
log: { level: warn }
YAML
  AFORO_API_KEY=bench-key-0001 AFORO_TENANT_ID=bench "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar-${1//\//-}.log" &
  sc_pid=$!
  pids+=("${sc_pid}")
  wait_port "$sc_port"
}

stop_sidecar() {
  kill -TERM "$sc_pid" 2>/dev/null || true
  wait "$sc_pid" 2>/dev/null || true
}

printf "%-26s %14s %14s %10s %10s %10s %10s %10s %10s %12s %8s\n" "run" "accepted ev/s" "delivered ev/s" "req/s" "p50 ms" "p99 ms" "wire B/ev" "raw B/ev" "disk B/ev" "sidecar us/ev" "syncs"
declare -A accepted_rate
for mode in $MODES; do
  start_sidecar "$mode"
  out="$(EVENTS=$EVENTS wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$here/ingest.lua" "http://127.0.0.1:$sc_port" 2>&1)"
  result="$(grep RESULT <<<"$out" || { echo "$out" >&2; exit 1; })"
  secs="$(field secs "$result")"
  accepted="$(metric "$sc_port" aforo_sidecar_events_accepted_total)"
  # Delivery keeps going after the load stops: time until everything accepted is delivered.
  t0=$(date +%s.%N)
  delivered=0
  for _ in $(seq 1 600); do
    delivered="$(metric "$sc_port" aforo_sidecar_events_delivered_total)"
    [ "$delivered" -ge "$accepted" ] && break
    sleep 0.1
  done
  drain="$(echo "$(date +%s.%N) - $t0" | bc -l)"
  wire="$(metric "$sc_port" aforo_sidecar_batch_bytes_compressed_total)"
  raw="$(metric "$sc_port" aforo_sidecar_batch_bytes_raw_total)"
  cpu="$(cpu_s "$sc_pid")"
  spooled="$(metric "$sc_port" aforo_sidecar_spool_written_bytes_total)"
  syncs="$(metric "$sc_port" aforo_sidecar_spool_syncs_total)"
  acc_rate="$(echo "$accepted / $secs" | bc -l)"
  del_rate="$(echo "$delivered / ($secs + $drain)" | bc -l)"
  accepted_rate[$mode]="$acc_rate"
  printf "%-26s %14.0f %14.0f %10.0f %10.2f %10.2f %10.1f %10.1f %10.1f %12.2f %8s\n" "ingest/batch $mode" "$acc_rate" "$del_rate" \
    "$(field rps "$result")" "$(echo "$(field p50_us "$result") / 1000" | bc -l)" \
    "$(echo "$(field p99_us "$result") / 1000" | bc -l)" \
    "$(echo "$wire / ($delivered + 0.0001)" | bc -l)" "$(echo "$raw / ($delivered + 0.0001)" | bc -l)" \
    "$(echo "$spooled / ($accepted + 0.0001)" | bc -l)" "$(echo "$cpu * 1000000 / ($accepted + 0.0001)" | bc -l)" "$syncs"
  [ "$(field errors "$result")" = "0" ] || echo "  (wrk reported $(field errors "$result") errors / non-2xx)"
  [ "$delivered" -ge "$accepted" ] || echo "  (not drained: $delivered of $accepted delivered)"
  stop_sidecar
done

# The request floor: the same connections against /healthz.
start_sidecar memory
out="$(METHOD=GET TARGET=/healthz wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$here/ingest.lua" "http://127.0.0.1:$sc_port" 2>&1)"
result="$(grep RESULT <<<"$out")"
printf "%-26s %14s %14s %10.0f %10.2f %10.2f\n" "GET /healthz (floor)" "-" "-" "$(field rps "$result")" \
  "$(echo "$(field p50_us "$result") / 1000" | bc -l)" "$(echo "$(field p99_us "$result") / 1000" | bc -l)"
stop_sidecar

for mode in $MODES; do
  [ "$mode" = "disk/off" ] || [ -z "${accepted_rate[disk/off]:-}" ] || [ -z "${accepted_rate[$mode]:-}" ] ||
    printf "%s / disk/off accepted ratio: %.2f\n" "$mode" "$(echo "${accepted_rate[$mode]} / ${accepted_rate[disk/off]}" | bc -l)"
done
echo "events per request: $EVENTS, batch.max_events: $BATCH, compression: $COMPRESSION, connections: $CONNECTIONS, duration: $DURATION"
