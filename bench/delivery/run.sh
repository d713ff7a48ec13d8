#!/usr/bin/env bash
# Delivery over a network: how many events/s one sidecar delivers to an ingest one round trip away.
# For each RTT in RTTS, aforo-fake-ingest answers every request after that delay (--rtt-ms, ±JITTER);
# a fresh sidecar (defaults: durability disk, batches of 100, LZ4) takes BATCHES posts of EVENTS
# events (the plugin's usual 20-event flushes, bench/pipeline/post_batches.py) as fast as POSTERS clients
# (one connection each, as nginx workers) send them, and the run ends when the sidecar counts every
# event delivered. Prints accepted and delivered events/s per RTT and variant (VARIANTS; MODE=backlog
# times the drain of a backlog built while ingest refused). See bench/README.md.
#
#   bench/delivery/run.sh                       # builds a Release sidecar + fake ingest in build-bench if needed
#   SIDECAR_BIN=... FAKE_INGEST_BIN=... RTTS="1 10 50 100" bench/delivery/run.sh
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN, BUILD_DIR (default build-bench), RTTS (ms, default "1 10 50 100"),
#      JITTER (ms, default 0), BATCHES (default 1000), EVENTS (per post, default 20), POSTERS (clients posting
#      at once, default 1), EXTRA_YAML (appended to the sidecar's config, e.g. "aforo: { ... }"; it must
#      not repeat a top-level key a variant sets),
#      VARIANTS, MODE (live | backlog: the retry backoff is then 100 ms, so the drain starts at once),
#      LOADER (python: post_batches.py posts BATCHES bodies, the default | wrk: wrk keeps POSTERS connections
#      busy for DURATION (default 10s) with bench/pipeline/ingest.lua's EVENTS-event bodies, BODIES distinct
#      ones (default 2000; their keys repeat after that, which the fake counts as duplicates
#      and the sidecar as delivered): a client that is not the bottleneck on a small machine).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
RTTS="${RTTS:-1 10 50 100}"
JITTER="${JITTER:-0}"
BATCHES="${BATCHES:-1000}"
EVENTS="${EVENTS:-20}"
POSTERS="${POSTERS:-1}"
LOADER="${LOADER:-python}"
DURATION="${DURATION:-10s}"
BODIES="${BODIES:-2000}"

bench_binaries fake-ingest
bench_work delivery
if [ "$LOADER" = wrk ]; then need_tools "apt-get install -y wrk" wrk; fi

# Each RTT runs every variant in VARIANTS ("label=yaml" separated by ';') in the same run: by default A0
# is the deliverer before concurrent delivery (one request at a time, batches of 100 even when behind), A one
# request at a time with batches growing to 1,000 when behind (batch.backlog_events), and B the defaults;
# all with a 200 ms flush interval (else the last partial batch waits the default 5 s and that dominates).
default_variants='A0 original (1 at a time, 100)=batch: { max_concurrency: 1, backlog_events: 100, flush_interval: 200ms }'
default_variants+=';A one at a time=batch: { max_concurrency: 1, flush_interval: 200ms }'
default_variants+=';B default (adaptive, up to 16)=batch: { flush_interval: 200ms }'
VARIANTS="${VARIANTS:-$default_variants}"
MODE="${MODE:-live}"   # live: delivered while posting; backlog: posted while ingest answers 503, then drained

printf "%-8s %-30s %10s %14s %14s %10s %12s %10s\n" "rtt ms" "variant" "events" "accepted ev/s" \
  "delivered ev/s" "requests" "sidecar us/ev" "limit"
IFS=';' read -r -a variant_list <<<"$VARIANTS"
for rtt in $RTTS; do
 for variant in "${variant_list[@]}"; do
  label="${variant%%=*}"
  vyaml="${variant#*=}"
  start_fake_ingest --no-store --rtt-ms "$rtt" --jitter-ms "$JITTER"
  backlog_retry=""
  [ "$MODE" = backlog ] && backlog_retry='retry: { backoff: [100ms], jitter: 0% }'
  start_delivery_sidecar "$vyaml" "${EXTRA_YAML:-}" "$backlog_retry"
  if [ "$MODE" = backlog ]; then  # ingest answers 503 to every batch until the drain starts
    curl -s -X POST -d '[{"status":503,"times":1000000}]' "http://127.0.0.1:$fake_port/_control/faults" >/dev/null
  fi
  post_pid=""
  if [ "$LOADER" = wrk ]; then
    # wrk keeps POSTERS connections busy for DURATION; the events are what the sidecar accepted meanwhile.
    t0=$(date +%s.%N)
    EVENTS="$EVENTS" BODIES="$BODIES" wrk -t1 -c"$POSTERS" -d"$DURATION" -s "$root/bench/pipeline/ingest.lua" \
      "http://127.0.0.1:$sc_port" >"$work/post.log" 2>&1
    t_acc=$(date +%s.%N)
    total="$(metric "$sc_port" aforo_sidecar_events_accepted_total)"
  else
    total=$((BATCHES * EVENTS))
    python3 "$root/bench/pipeline/post_batches.py" "$sc_port" "$fake_port" "$BATCHES" "$EVENTS" 1 "$POSTERS" \
      >"$work/post.log" \
      & post_pid=$!
    # The clock starts with the first post taken (the poster builds its bodies first, which takes seconds).
    until [ "$(metric "$sc_port" aforo_sidecar_events_accepted_total)" -gt 0 ]; do sleep 0.01; done
    t0=$(date +%s.%N)
    # Accepted: when the sidecar has answered every post.
    until [ "$(metric "$sc_port" aforo_sidecar_events_accepted_total)" -ge "$total" ]; do sleep 0.05; done
    t_acc=$(date +%s.%N)
  fi
  if [ "$MODE" = backlog ]; then
    cpu0="$(cpu_s "$sc_pid")"
    t0=$(date +%s.%N)   # the drain starts when ingest answers again
    curl -s -X POST -d '[]' "http://127.0.0.1:$fake_port/_control/faults" >/dev/null
  else
    cpu0=0
  fi
  until [ "$(metric "$sc_port" aforo_sidecar_events_delivered_total)" -ge "$total" ]; do sleep 0.02; done
  t1=$(date +%s.%N)
  if [ -n "$post_pid" ]; then wait "$post_pid" || true; fi
  requests="$(metric "$sc_port" 'aforo_sidecar_ingest_requests_total{status="202"}')"
  limit="$(metric "$sc_port" aforo_sidecar_ingest_concurrency_limit)"
  cpu="$(echo "$(cpu_s "$sc_pid") - $cpu0" | bc -l)"
  printf "%-8s %-30s %10d %14.0f %14.0f %10s %12.2f %10s\n" "$rtt" "$label" "$total" \
    "$(echo "$total / ($t_acc - $t0)" | bc -l | sed 's/^-.*/0/')" "$(echo "$total / ($t1 - $t0)" | bc -l)" "$requests" \
    "$(echo "$cpu * 1000000 / $total" | bc -l)" "$limit"
  kill -TERM "$sc_pid" "$fake_pid" 2>/dev/null || true
  wait "$sc_pid" "$fake_pid" 2>/dev/null || true
 done
done
if [ "$LOADER" = wrk ]; then posts="wrk -c$POSTERS for $DURATION, $EVENTS events per post"
else posts="$BATCHES of $EVENTS events from $POSTERS client(s)"; fi
echo "mode $MODE; posts: $posts; jitter ±${JITTER} ms${EXTRA_YAML:+; extra config: $EXTRA_YAML}"
