#!/usr/bin/env bash
# Instructions per usage event in the sidecar, accepted and delivered: the sidecar runs under
# `valgrind --tool=callgrind` with the default pipeline (durability disk, batch.max_events 100, lz4,
# discovery on) and delivers to a real aforo-fake-ingest (--no-store); post_batches.py posts batches
# of plugin-built events one request at a time and waits until all are delivered. Two runs (LOW and
# BATCHES requests) and the difference of their instruction counts divided by the extra events: no
# startup or shutdown cost, and repeatable on a busy machine (instructions, not time). See bench/README.md.
#
#   bench/pipeline/callgrind.sh        # builds a Release sidecar + fake ingest in build-bench if needed
#   SIDECAR_BIN=... FAKE_INGEST_BIN=... KEEP=/tmp/cg bench/pipeline/callgrind.sh
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN, BUILD_DIR (default build-bench), BATCHES (default 40), LOW (default 5),
#      EVENTS (per request, default 200), DISCOVERY (discovery.enabled, default true), KEEP (a directory to
#      keep callgrind.out.{low,high} in, for callgrind_annotate; build with -DCMAKE_CXX_FLAGS=-g for names).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
BATCHES="${BATCHES:-40}"
LOW="${LOW:-5}"
EVENTS="${EVENTS:-200}"
DISCOVERY="${DISCOVERY:-true}"

need_tools "apt-get install -y valgrind python3 bc" valgrind python3 bc
bench_binaries fake-ingest
bench_work pipeline-callgrind

start_fake_ingest --no-store

# run NAME BATCHES -> prints the sidecar's total instructions (Ir) for a whole run of BATCHES requests.
run() {
  local name="$1" n="$2" port admin_port
  port="$(free_port)"
  admin_port="$(free_port)"  # nothing listens there: discovery polls it and finds no Kong Admin API
  rm -rf "$work/spool" "$work/state"
  cat >"$work/sidecar.yaml" <<YAML
listen: ["127.0.0.1:$port"]
aforo: { ingest_url: "http://127.0.0.1:$fake_port/v1/ingest/batch" }
entitlements: { source: "file:$root/bench/check/snapshot.yaml" }
buffer: { spool_dir: "$work/spool" }
discovery: { enabled: $DISCOVERY, state_dir: "$work/state", kong_admin_url: "http://127.0.0.1:$admin_port" }
log: { level: warn }
YAML
  AFORO_API_KEY=bench-key-0001 AFORO_TENANT_ID=bench valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out.$name" \
    "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar-$name.log" &
  local pid=$!
  pids+=("${pid}")
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  python3 "$here/post_batches.py" "$port" "$fake_port" "$n" "$EVENTS" "$n" >&2
  kill -TERM "$pid"
  wait "$pid" || { echo "the sidecar exited with an error; its log:" >&2; cat "$work/sidecar-$name.log" >&2; exit 1; }
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$work/callgrind.out.$name" "$KEEP/"
  awk '/^(summary|totals):/ { print $2; exit }' "$work/callgrind.out.$name"
}

# Fresh keys per run: the fake ingest remembers idempotency keys across runs (each run uses its own seed).
low="$(run low "$LOW")"
high="$(run high "$BATCHES")"
events=$(( (BATCHES - LOW) * EVENTS ))
printf "sidecar instructions: %d requests %d, %d requests %d\n" "$LOW" "$low" "$BATCHES" "$high"
printf "instructions per event (accepted and delivered): %.0f  (%d events of %d per request, discovery %s)\n" \
  "$(echo "($high - $low) / $events" | bc -l)" "$events" "$EVENTS" "$DISCOVERY"
