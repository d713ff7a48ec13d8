#!/usr/bin/env bash
# Delivery over a network: how many events/s one sidecar delivers to an ingest one round trip away.
# For each RTT in RTTS, aforo-fake-ingest answers every request after that delay (--rtt-ms, ±JITTER);
# a fresh sidecar (defaults: durability disk, batches of 100, LZ4) takes BATCHES posts of EVENTS
# events (the plugin's usual 20-event flushes, bench/pipeline/post_batches.py) as fast as one client
# sends them, and the run ends when the sidecar counts every event delivered. Prints accepted and
# delivered events/s per RTT. See bench/README.md.
#
#   bench/delivery/run.sh                       # builds a Release sidecar + fake ingest in build-bench if needed
#   SIDECAR_BIN=... FAKE_INGEST_BIN=... RTTS="1 10 50 100" bench/delivery/run.sh
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN, BUILD_DIR (default build-bench), RTTS (ms, default "1 10 50 100"),
#      JITTER (ms, default 0), BATCHES (default 1000), EVENTS (per post, default 20), EXTRA_YAML (appended
#      to the sidecar's config, e.g. "batch: { max_events: 1000 }").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../lib.sh"
RTTS="${RTTS:-1 10 50 100}"
JITTER="${JITTER:-0}"
BATCHES="${BATCHES:-1000}"
EVENTS="${EVENTS:-20}"

bench_binaries fake-ingest
bench_work delivery

printf "%-8s %10s %14s %14s %12s %14s\n" "rtt ms" "events" "accepted ev/s" "delivered ev/s" "requests" "sidecar us/ev"
for rtt in $RTTS; do
  start_fake_ingest --no-store --rtt-ms "$rtt" --jitter-ms "$JITTER"
  sc_port="$(free_port)"
  rm -rf "$work/spool"
  cat >"$work/sidecar.yaml" <<YAML
listen: ["127.0.0.1:$sc_port"]
aforo: { ingest_url: "http://127.0.0.1:$fake_port/v1/ingest/batch" }
entitlements: { source: "file:$root/config/snapshot.example.yaml" }
buffer: { spool_dir: "$work/spool" }
discovery: { enabled: false, state_dir: "$work/state" }
log: { level: warn }
${EXTRA_YAML:-}
YAML
  AFORO_API_KEY=bench-key-0001 AFORO_TENANT_ID=bench "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar-$rtt.log" &
  sc_pid=$!
  pids+=($sc_pid)
  wait_port "$sc_port"
  t0=$(date +%s.%N)
  python3 "$root/bench/pipeline/post_batches.py" "$sc_port" "$fake_port" "$BATCHES" "$EVENTS" >"$work/post.log" \
    & post_pid=$!
  # Accepted: when the sidecar has answered every post.
  total=$((BATCHES * EVENTS))
  until [ "$(metric "$sc_port" aforo_sidecar_events_accepted_total)" -ge "$total" ]; do sleep 0.05; done
  t_acc=$(date +%s.%N)
  wait "$post_pid"
  t1=$(date +%s.%N)
  requests="$(metric "$sc_port" 'aforo_sidecar_ingest_requests_total{status="202"}')"
  cpu="$(cpu_s "$sc_pid")"
  printf "%-8s %10d %14.0f %14.0f %12s %14.2f\n" "$rtt" "$total" "$(echo "$total / ($t_acc - $t0)" | bc -l)" \
    "$(echo "$total / ($t1 - $t0)" | bc -l)" "$requests" "$(echo "$cpu * 1000000 / $total" | bc -l)"
  kill -TERM "$sc_pid" "$fake_pid" 2>/dev/null || true
  wait "$sc_pid" "$fake_pid" 2>/dev/null || true
done
echo "posts: $BATCHES of $EVENTS events; jitter ±${JITTER} ms${EXTRA_YAML:+; extra config: $EXTRA_YAML}"
