#!/usr/bin/env bash
# Recovery from an ingest outage over a WAN: the fake ingest (RTT ms away) answers 503 for
# OUTAGE seconds while events arrive at RATE events/s (the plugin's 20-event posts), then answers again
# while events keep arriving at RATE; prints how long the sidecar took to deliver the backlog (until
# delivered caught up with accepted). A then B in the same run (VARIANTS as in run.sh: one request at a
# time, then the defaults).
#
#   SIDECAR_BIN=... FAKE_INGEST_BIN=... RATE=5000 OUTAGE=120 RTT=50 bench/delivery/recover.sh
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN, BUILD_DIR (default build-bench), RATE (5000), OUTAGE (s, 120), RTT (ms,
#      50), AFTER (s of traffic after recovery at most, 300), VARIANTS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
RATE="${RATE:-5000}"
OUTAGE="${OUTAGE:-120}"
RTT="${RTT:-50}"
AFTER="${AFTER:-300}"
default_variants='A one at a time=batch: { max_concurrency: 1 };B default (adaptive, up to 16)='
VARIANTS="${VARIANTS:-$default_variants}"

bench_binaries fake-ingest
bench_work recover

printf "%-32s %12s %14s %14s %10s\n" "variant" "backlog ev" "drain s" "drain ev/s net" "limit"
IFS=';' read -r -a variant_list <<<"$VARIANTS"
for variant in "${variant_list[@]}"; do
  label="${variant%%=*}"
  vyaml="${variant#*=}"
  start_fake_ingest --no-store --rtt-ms "$RTT"
  start_delivery_sidecar 'retry: { backoff: [1s, 2s, 4s] }' "$vyaml"
  curl -s -X POST -d '[{"status":503,"times":100000000}]' "http://127.0.0.1:$fake_port/_control/faults" >/dev/null
  python3 "$here/post_paced.py" "$sc_port" "$RATE" "$((OUTAGE + AFTER))" >"$work/post.log" &
  post_pid=$!
  sleep "$OUTAGE"
  backlog=$(( $(metric "$sc_port" aforo_sidecar_events_accepted_total) - $(metric "$sc_port" aforo_sidecar_events_delivered_total) ))
  t0=$(date +%s.%N)
  curl -s -X POST -d '[]' "http://127.0.0.1:$fake_port/_control/faults" >/dev/null
  # Caught up: less than one second of traffic waits (the rest is in flight or in the next batch).
  drained=""
  while [ -z "$drained" ]; do
    sleep 0.2
    lag=$(( $(metric "$sc_port" aforo_sidecar_events_accepted_total) - $(metric "$sc_port" aforo_sidecar_events_delivered_total) ))
    now=$(date +%s.%N)
    if [ "$lag" -lt "$RATE" ]; then drained=$now; fi
    if [ "$(echo "$now - $t0 > $AFTER" | bc)" = 1 ]; then drained=never; fi
  done
  limit="$(metric "$sc_port" aforo_sidecar_ingest_concurrency_limit)"
  kill "$post_pid" 2>/dev/null || true
  wait "$post_pid" 2>/dev/null || true
  if [ "$drained" = never ]; then
    printf "%-32s %12d %14s %14s %10s\n" "$label" "$backlog" "> $AFTER" "-" "$limit"
  else
    secs=$(echo "$drained - $t0" | bc -l)
    printf "%-32s %12d %14.1f %14.0f %10s\n" "$label" "$backlog" "$secs" "$(echo "$backlog / $secs" | bc -l)" "$limit"
  fi
  kill -TERM "$sc_pid" "$fake_pid" 2>/dev/null || true
  wait "$sc_pid" "$fake_pid" 2>/dev/null || true
done
echo "rate $RATE events/s in posts of 20, outage ${OUTAGE}s, ingest ${RTT} ms away"
