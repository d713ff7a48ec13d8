#!/usr/bin/env bash
# Soak under faults: nginx with the aforo-metering plugin, the sidecar (Redis-backed, disk
# durability, when_full reject on a small tmpfs spool), a real redis-server and the fake ingest under a
# steady paced load for DURATION_SECONDS, while a fault schedule cycles through: ingest outage, 5xx storm,
# Redis killed and restarted, sidecar SIGKILL and restart, nginx -s reload, full disk (tmpfs filled), an
# ingest that takes at most 25 events per request (413: the sidecar splits), per-event failures inside
# 202s (dead-lettered, then re-sent with `aforo-sidecar replay-dead-letter` after the load), and the
# sidecar out of file descriptors (its soft RLIMIT_NOFILE lowered with prlimit), and a long sidecar outage
# (stopped for AFORO_SOAK_OUTAGE_SECONDS: 60 s in runs of 300 s and more) at a rate that overflows the
# plugin's worker buffer (buffer_max_size AFORO_SOAK_BUFFER_MAX_SIZE=200): the overflow file carries it.
# Beside the paced load, a slow load (the upstream answers after 1.5 s) keeps requests in flight, so that
# each nginx -s reload happens with slow requests still running in the exiting worker.
# Then it checks: every response through the metered route was metered and delivered (distinct
# idempotencyKeys at the ingest == responses, by status), nothing dropped, the sidecar's peak RSS under a
# ceiling, no crash (the sidecar only died when killed, no core files, nginx error.log free of
# [alert]/[crit]/[emerg]). Prints a summary; exits non-zero when a check fails. tests/soak/README.md.
#
# Usage: scripts/soak.sh DURATION_SECONDS        (as root for the tmpfs; without it the full-disk fault is skipped)
# Environment (optional):
#   AFORO_BUILD_DIR=build         where aforo-sidecar, aforo-fake-ingest and aforo-soak-loadgen are built
#   AFORO_SOAK_RATE=200           requests per second;  AFORO_SOAK_CONNECTIONS=4
#   AFORO_SOAK_RSS_MAX_MIB=200    the sidecar's VmRSS ceiling
#   AFORO_SOAK_CHURN_RATE=50      short connections per second straight to the sidecar's /healthz (0: none)
#   AFORO_SOAK_SLOT=10            seconds per fault slot (fault + recovery); 6 below 90 s
#   AFORO_SOAK_KEEP=0             1: keep the work dir (logs, ingest record) for inspection
#   AFORO_SOAK_OUTAGE_SECONDS     length of the sidecar_outage fault: 60 when DURATION_SECONDS >= 300,
#                                 else DURATION_SECONDS / 20 (3 s for the CI's 60 s)
#   AFORO_SOAK_BUFFER_MAX_SIZE=200  the plugin's buffer_max_size (small: outages overflow it to the file)
#   AFORO_SOAK_SLOW_RATE=4        slow requests per second (1.5 s each, 8 connections; 0: none)
#   AFORO_SOAK_INGEST_RTT_MS=50   the fake ingest answers every batch after this round trip (a WAN; 0: loopback)
set -uo pipefail

DURATION=${1:?usage: scripts/soak.sh DURATION_SECONDS}
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${AFORO_BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
SIDECAR=$BUILD/daemon/aforo-sidecar
INGEST=$BUILD/tests/aforo-fake-ingest
LOADGEN=$BUILD/tests/aforo-soak-loadgen
RATE=${AFORO_SOAK_RATE:-200}
CONNS=${AFORO_SOAK_CONNECTIONS:-4}
RSS_MAX_MIB=${AFORO_SOAK_RSS_MAX_MIB:-200}
CHURN_RATE=${AFORO_SOAK_CHURN_RATE:-50}
SLOT=${AFORO_SOAK_SLOT:-$(( DURATION >= 90 ? 10 : 6 ))}  # 6 s: every fault kind fits in 60 s
OUTAGE=${AFORO_SOAK_OUTAGE_SECONDS:-$(( DURATION >= 300 ? 60 : (DURATION / 20 > 3 ? DURATION / 20 : 3) ))}
BUFFER_MAX_SIZE=${AFORO_SOAK_BUFFER_MAX_SIZE:-200}
SLOW_RATE=${AFORO_SOAK_SLOW_RATE:-4}
API_KEY=sk_soak_0123456789abcdef
TENANT=tenant_soak

for bin in "$SIDECAR" "$INGEST" "$LOADGEN"; do
  [ -x "$bin" ] || { echo "soak: $bin is missing (build it: ninja -C $BUILD aforo-sidecar aforo-fake-ingest aforo-soak-loadgen)" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "soak: redis-server is not installed" >&2; exit 2; }

WORK=$(mktemp -d /tmp/aforo-soak.XXXXXX)
SIDECAR_PID="" REDIS_PID="" INGEST_PID="" LOADGEN_PID="" SLOW_PID="" CHURN_PID="" SAMPLER_PID="" TMPFS=""
declare -A FAULTS=()
FAILURES=()
fail() { FAILURES+=("$1"); echo "soak: FAIL: $1" >&2; }
say() { printf '[soak %5ss] %s\n' "$SECONDS" "$*"; }

cleanup() {
  [ -n "$LOADGEN_PID" ] && kill "$LOADGEN_PID" 2>/dev/null
  [ -n "$CHURN_PID" ] && kill "$CHURN_PID" 2>/dev/null
  [ -n "$SLOW_PID" ] && kill "$SLOW_PID" 2>/dev/null
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  [ -f "$WORK/nginx/logs/nginx.pid" ] && "$REPO/tests/lua/nginx/stop.sh" "$WORK/nginx" >/dev/null 2>&1
  [ -n "$SIDECAR_PID" ] && kill -KILL "$SIDECAR_PID" 2>/dev/null
  [ -n "$INGEST_PID" ] && kill "$INGEST_PID" 2>/dev/null
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
  wait 2>/dev/null
  [ -n "$TMPFS" ] && umount "$TMPFS" 2>/dev/null
  if [ "${AFORO_SOAK_KEEP:-0}" = 1 ]; then echo "soak: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url seconds
  local i
  for i in $(seq 1 $(($2 * 20))); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  return 1
}

REDIS_PORT=$(free_port) INGEST_PORT=$(free_port) SIDECAR_PORT=$(free_port)
NGINX_PORT=$(free_port) UPSTREAM_PORT=$(free_port)
INGEST_URL=http://127.0.0.1:$INGEST_PORT
SIDECAR_URL=http://127.0.0.1:$SIDECAR_PORT

start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >>"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  fail "redis-server did not start"
}

# The spool on a small tmpfs, so "full disk" is a real ENOSPC. Without mount rights: a plain dir.
mkdir -p "$WORK/spoolfs" "$WORK/dead-letter" "$WORK/state"
if mount -t tmpfs -o size=8m tmpfs "$WORK/spoolfs" 2>/dev/null; then
  TMPFS=$WORK/spoolfs
else
  say "mount -t tmpfs is not permitted here: the full-disk fault is skipped"
fi
cat > "$WORK/snapshot.yaml" <<'EOF'
version: "soak-1"
customers:
  cust_acme:
    plan: enterprise
    status: active
    features:
      advanced_search: { limit: 100000000, period: month }
features:
  - feature: advanced_search
    match: { service: search, path_prefix: /v1/search }
    metric: search_calls
EOF
cat > "$WORK/sidecar.yaml" <<EOF
listen: ["127.0.0.1:$SIDECAR_PORT"]
aforo:
  tenant_id: $TENANT
  ingest_url: "$INGEST_URL/v1/ingest/batch"
  control_url: "$INGEST_URL"
entitlements:
  source: "file:$WORK/snapshot.yaml"
cache:
  redis: "redis://127.0.0.1:$REDIS_PORT/0"
batch:
  max_events: 200
  flush_interval: 200ms
retry:
  max_retries: 3
  backoff: [200ms, 500ms, 1s]
  timeout: 3s
buffer:
  spool_dir: $WORK/spoolfs/spool
  spool_max_bytes: 6MiB
  segment_bytes: 1MiB
  when_full: reject
  durability: disk
  dead_letter_dir: $WORK/dead-letter
discovery:
  enabled: false
  state_dir: $WORK/state
log:
  level: info
EOF

start_sidecar() {
  (cd "$WORK" && exec env AFORO_API_KEY=$API_KEY "$SIDECAR" --config "$WORK/sidecar.yaml") >>"$WORK/sidecar.log" 2>&1 &
  SIDECAR_PID=$!
  echo "$SIDECAR_PID" > "$WORK/sidecar.pid"
  wait_http "$SIDECAR_URL/healthz" 10 || fail "the sidecar did not come up (see sidecar.log)"
}

# A sidecar that exited without being killed by the schedule is a crash.
check_alive() {
  if ! kill -0 "$SIDECAR_PID" 2>/dev/null; then
    wait "$SIDECAR_PID"; fail "the sidecar exited on its own (status $?) at ${SECONDS}s"
    start_sidecar
  fi
}

start_redis
"$INGEST" --listen "127.0.0.1:$INGEST_PORT" --api-key "$API_KEY" --tenant "$TENANT" \
  --rtt-ms "${AFORO_SOAK_INGEST_RTT_MS:-50}" --record "$WORK/ingest.jsonl" >>"$WORK/ingest.log" 2>&1 &
INGEST_PID=$!
wait_http "$INGEST_URL/_control/stats" 10 || { fail "the fake ingest did not start"; exit 1; }
start_sidecar
AFORO_DAEMON=on AFORO_FLUSH_INTERVAL=100 AFORO_BUFFER_MAX_SIZE=$BUFFER_MAX_SIZE "$REPO/tests/lua/nginx/start.sh" "$WORK/nginx" "$SIDECAR_URL" \
  "$NGINX_PORT" "$UPSTREAM_PORT" >"$WORK/nginx-start.log" 2>&1 || { cat "$WORK/nginx-start.log" >&2; fail "nginx did not start"; exit 1; }

# VmRSS of whichever sidecar is current, once a second, in KiB.
( while :; do
    pid=$(cat "$WORK/sidecar.pid" 2>/dev/null)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$rss" ] && echo "$rss" >> "$WORK/rss.log"
    sleep 1
  done ) &
SAMPLER_PID=$!

"$LOADGEN" --target "127.0.0.1:$NGINX_PORT" --path /v1/search/items --tenant cust_acme \
  --connections "$CONNS" --rate "$RATE" --stop-file "$WORK/stop" >"$WORK/loadgen.json" 2>"$WORK/loadgen.err" &
LOADGEN_PID=$!
say "load: $RATE req/s on $CONNS connections for ${DURATION}s; work dir $WORK"
# Slow requests: the upstream answers .../slow/... after 1.5 s, so some are always in flight when nginx
# reloads (the exiting worker finishes them after Kong's timer-ng has stopped, start.sh's default).
SLOW='{"requests":0,"by_status":{},"errors":0}'
if [ "$SLOW_RATE" != 0 ]; then
  "$LOADGEN" --target "127.0.0.1:$NGINX_PORT" --path /v1/search/slow --tenant cust_acme \
    --connections 8 --rate "$SLOW_RATE" --stop-file "$WORK/stop" >"$WORK/slow.json" 2>"$WORK/slow.err" &
  SLOW_PID=$!
  say "slow load: $SLOW_RATE req/s answered after 1.5 s; plugin buffer_max_size $BUFFER_MAX_SIZE"
fi
# Connection churn: short connections (one GET /healthz each) straight to the sidecar, beside the plugin's
# keep-alive traffic; every answer must be 200 (none refused past server.max_connections).
if [ "$CHURN_RATE" != 0 ]; then
  "$LOADGEN" --target "127.0.0.1:$SIDECAR_PORT" --path /healthz --churn --connections 2 --rate "$CHURN_RATE" \
    --stop-file "$WORK/stop" >"$WORK/churn.json" 2>"$WORK/churn.err" &
  CHURN_PID=$!
  say "churn: $CHURN_RATE short connections/s to the sidecar's /healthz"
fi

ctl() { curl -sf -o /dev/null -X POST "$INGEST_URL/_control/$1" -d "$2" || fail "POST /_control/$1 failed"; }

fault_ingest_outage() { ctl refuse '{"on":true,"for_ms":5000}'; sleep 5; }
fault_5xx_storm() {
  ctl faults '{"steps":[{"status":503,"times":15},{"status":500,"times":10},{"status":502,"times":5}]}'; sleep 5
}
fault_redis_restart() {
  kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; sleep 3; start_redis
}
fault_sidecar_kill() {
  check_alive
  kill -KILL "$SIDECAR_PID"; wait "$SIDECAR_PID" 2>/dev/null; sleep 2; start_sidecar
}
fault_nginx_reload() {
  # Slow requests are in flight (SLOW_RATE x 1.5 s of them): the old worker meters them as it exits.
  /usr/sbin/nginx -p "$WORK/nginx" -c "$WORK/nginx/conf/nginx.conf" -s reload 2>>"$WORK/nginx-start.log" || fail "nginx -s reload failed"
  sleep 1
}
fault_sidecar_outage() {
  # The sidecar stopped (SIGTERM: it drains and exits) for OUTAGE seconds under the full load: the plugin's
  # worker buffer (BUFFER_MAX_SIZE) fills, the overflow file takes the rest, and is replayed once it is back.
  check_alive
  kill -TERM "$SIDECAR_PID"; wait "$SIDECAR_PID"; local rc=$?
  [ $rc -eq 0 ] || fail "the sidecar exited $rc on SIGTERM before the outage"
  sleep "$OUTAGE"; start_sidecar
}
fault_disk_full() {
  [ -n "$TMPFS" ] || return 1
  dd if=/dev/zero of="$TMPFS/filler" bs=64k 2>/dev/null # until ENOSPC
  sleep 5
  rm -f "$TMPFS/filler"
}
fault_ingest_413() {
  ctl max_events '{"max_events":25}'; sleep 4; ctl max_events '{"max_events":1000}'
}
fault_partial_failures() {
  ctl faults '{"steps":[{"fail_events":[0,3],"times":5}]}'; sleep 3
}
fault_fd_exhaustion() {
  # The sidecar's soft RLIMIT_NOFILE below every descriptor it holds: no accept, open or socket works
  # for 3 s (EMFILE), then the old limit is back.
  local soft hard
  read -r soft hard < <(prlimit --pid "$SIDECAR_PID" --nofile --noheadings --output SOFT,HARD)
  prlimit --pid "$SIDECAR_PID" --nofile=3:"$hard" || return 1
  sleep 3
  prlimit --pid "$SIDECAR_PID" --nofile="$soft":"$hard" || fail "could not restore the sidecar's fd limit"
}
SCHEDULE=(ingest_outage ingest_413 5xx_storm redis_restart partial_failures fd_exhaustion sidecar_kill nginx_reload
  sidecar_outage disk_full)
# A slot is SLOT seconds; sidecar_outage's is longer when its outage is (OUTAGE + SLOT - 3).
slot_of() { if [ "$1" = sidecar_outage ] && [ $((OUTAGE + 3)) -gt "$SLOT" ]; then echo $((OUTAGE + SLOT - 3)); else echo "$SLOT"; fi; }

# Faults in rotation, one per slot, with the rest of the slot to recover; the load runs throughout.
i=0
end=$((SECONDS + DURATION))
while :; do
  kind=${SCHEDULE[$((i % ${#SCHEDULE[@]}))]}
  slot=$(slot_of "$kind")
  [ $((SECONDS + slot)) -le "$end" ] || break
  slot_end=$((SECONDS + slot))
  i=$((i + 1))
  check_alive
  say "fault: $kind"
  if "fault_$kind"; then
    FAULTS[$kind]=$(( ${FAULTS[$kind]:-0} + 1 ))
  else
    say "fault: $kind skipped"
  fi
  while [ "$SECONDS" -lt "$slot_end" ]; do sleep 0.5; done
done
while [ "$SECONDS" -lt "$end" ]; do sleep 0.5; done
check_alive

touch "$WORK/stop"
wait "$LOADGEN_PID"; LOADGEN_PID=""
LOAD=$(cat "$WORK/loadgen.json")
CHURN='{"requests":0,"by_status":{},"errors":0}'
if [ -n "$CHURN_PID" ]; then wait "$CHURN_PID"; CHURN_PID=""; CHURN=$(cat "$WORK/churn.json"); fi
if [ -n "$SLOW_PID" ]; then wait "$SLOW_PID"; SLOW_PID=""; SLOW=$(cat "$WORK/slow.json"); fi
say "slow load stopped: $SLOW"
# Both loads go through the metered route: every response of either is one event.
LOAD=$(jq -c -s '{requests: (.[0].requests + .[1].requests),
  by_status: (reduce ((.[0].by_status, .[1].by_status) | to_entries[]) as $e ({}; .[$e.key] += $e.value)),
  errors: (.[0].errors + .[1].errors),
  max_latency_ms: ([.[0].max_latency_ms, (.[1].max_latency_ms // 0)] | max)}' <<<"$LOAD $SLOW")
# The plugin's exclude_status_codes (Aforo's default: 401, 403, 429) are answered but not metered.
EXCLUDED='["401","403","429"]'
expected=$(jq --argjson x "$EXCLUDED" '[.by_status | to_entries[] | select(.key as $k | $x | index($k) | not) | .value] | add // 0' <<<"$LOAD")
errors=$(jq .errors <<<"$LOAD")
say "load stopped: $LOAD"

# Drain: the plugin's buffer, the sidecar's memory and spool, until the ingest holds every event (or,
# with events dead-lettered by the partial-failure fault, until nothing moves any more).
drain() {
  local delivered=0 stable=0 last=-1
  for _ in $(seq 1 180); do
    delivered=$(curl -sf "$INGEST_URL/_control/stats" | jq .stored); delivered=${delivered:-0}
    [ "$delivered" -eq "$last" ] && { stable=$((stable + 1)); [ $stable -ge 6 ] && [ "$delivered" -ge "$1" ] && break; [ $stable -ge 10 ] && break; }
    [ "$delivered" -ne "$last" ] && stable=0
    last=$delivered
    sleep 0.5
  done
}
drain "$expected"
# Events ingest refused one by one were dead-lettered: once "fixed", the operator re-sends them.
dead_lettered=$(jq -s 'map(.events) | add // 0' "$WORK/dead-letter/dead-letter.jsonl" 2>/dev/null || echo 0)
replayed="none"
if [ -s "$WORK/dead-letter/dead-letter.jsonl" ]; then
  if "$SIDECAR" replay-dead-letter "$WORK/dead-letter/dead-letter.jsonl" --sidecar-url "$SIDECAR_URL" >"$WORK/replay.log" 2>&1; then
    replayed=$(tail -1 "$WORK/replay.log")
  else
    cat "$WORK/replay.log" >&2; fail "replay-dead-letter failed"
  fi
  drain "$expected"
fi
STATS=$(curl -sf "$INGEST_URL/_control/stats")
METRICS=$(curl -sf "$SIDECAR_URL/metrics")
check_alive

# Distinct idempotencyKeys at the ingest, by statusCode, against the responses the load generator got.
read -r keys bad_keys by_status_ingest < <(jq -rs '
  [.[] | (.event // .)] as $e
  | ($e | map(.idempotencyKey) | unique | length) as $k
  | ($e | map(select(.idempotencyKey | startswith("kong:") | not)) | length) as $bad
  | ($e | group_by(.statusCode) | map({key: (.[0].statusCode | tostring), value: length}) | from_entries | tojson) as $s
  | "\($k) \($bad) \($s)"' "$WORK/ingest.jsonl" 2>/dev/null || echo "0 0 {}")
by_status_load=$(jq -c --argjson x "$EXCLUDED" '.by_status | with_entries(select(.key as $k | $x | index($k) | not))' <<<"$LOAD")
duplicates=$(jq .duplicates <<<"$STATS")
lost=$((expected - keys)); [ $lost -lt 0 ] && lost=0
extra=$((keys - expected)); [ $extra -lt 0 ] && extra=0
# Dead-lettered events other than the injected per-event failures (re-sent above) are losses too.
dropped=$(grep -E '^aforo_sidecar_(events_(dropped|dead_lettered)|plugin_events_dropped)_total' <<<"$METRICS" | grep -v 'reason="event_failed"' | awk '{s += $2} END {print s + 0}')
# The plugin's overflow file at work (nginx error.log): outages it carried, events it replayed.
overflow_spills=$(grep -c 'not taking events: appending them to' "$WORK/nginx/logs/error.log")
overflow_replayed=$(grep -o 'sent [0-9]* events from overflow file' "$WORK/nginx/logs/error.log" | awk '{s += $2} END {print s + 0}')
rejected_full=$(grep -E '^aforo_sidecar_events_rejected_total\{reason="spool_(full|error)"\}' <<<"$METRICS" | awk '{s += $2} END {print s + 0}')
peak_kib=$(sort -n "$WORK/rss.log" 2>/dev/null | tail -1); peak_kib=${peak_kib:-0}
peak_mib=$(awk -v k="$peak_kib" 'BEGIN {printf "%.1f", k / 1024}')

[ "$lost" -eq 0 ] || fail "$lost metered requests were never delivered (expected $expected, delivered $keys)"
[ "$extra" -le "$errors" ] || fail "the ingest holds $extra more events than responses (only $errors unanswered requests)"
[ "$errors" -eq 0 ] || say "note: $errors requests got no response; whether nginx metered them is unknown"
[ "$extra" -eq 0 ] && [ "$by_status_ingest" != "$by_status_load" ] && fail "statuses differ: ingest $by_status_ingest, load $by_status_load"
[ "$bad_keys" -eq 0 ] || fail "$bad_keys events without a kong: idempotencyKey"
[ "$dropped" = 0 ] || fail "the sidecar counted $dropped dropped or dead-lettered events"
[ "$expected" -gt 0 ] || fail "no requests were answered"
[ "$peak_kib" -le $((RSS_MAX_MIB * 1024)) ] || fail "sidecar peak RSS ${peak_mib} MiB is over ${RSS_MAX_MIB} MiB"
[ "$peak_kib" -gt 0 ] || fail "no RSS samples"
churn_ok=$(jq '.by_status["200"] // 0' <<<"$CHURN")
churn_other=$(jq '[.by_status | to_entries[] | select(.key != "200") | .value] | add // 0' <<<"$CHURN")
[ "$churn_other" -eq 0 ] || fail "connection churn got $churn_other answers other than 200: $(jq -c .by_status <<<"$CHURN")"
[ "$CHURN_RATE" = 0 ] || [ "$churn_ok" -gt 0 ] || fail "connection churn got no 200 at all"
if grep -E '\[(alert|crit|emerg)\]' "$WORK/nginx/logs/error.log" >&2; then fail "nginx error.log has [alert]/[crit]/[emerg] lines"; fi
if grep -E 'events could not be sent' "$WORK/nginx/logs/error.log" | grep -v 'kept in' >&2; then fail "an exiting nginx worker lost events"; fi
if grep -E '\[aforo-metering\] ERROR (buffer full|overflow file .* full)' "$WORK/nginx/logs/error.log" >&2; then
  fail "the plugin dropped events (buffer or overflow file full)"
fi
[ "${FAULTS[sidecar_outage]:-0}" -eq 0 ] || [ "$overflow_spills" -gt 0 ] || fail "the sidecar outages never reached the plugin's overflow file"
if compgen -G "$WORK/core*" >/dev/null || compgen -G "$WORK/nginx/core*" >/dev/null; then fail "core dump found"; fi

# Graceful stop: the sidecar must exit 0 on SIGTERM.
kill -TERM "$SIDECAR_PID"; wait "$SIDECAR_PID"; rc=$?; SIDECAR_PID=""
[ $rc -eq 0 ] || fail "the sidecar exited $rc on SIGTERM"

faults_line=""; total_faults=0
for k in "${SCHEDULE[@]}"; do faults_line+=" $k=${FAULTS[$k]:-0}"; total_faults=$((total_faults + ${FAULTS[$k]:-0})); done
cat <<EOF
---- soak summary ----
duration:          ${DURATION}s (wall ${SECONDS}s with setup and drain)
requests:          $(jq .requests <<<"$LOAD") ($RATE/s target, $CONNS connections; by status $by_status_load; $errors without response; max latency $(jq .max_latency_ms <<<"$LOAD") ms)
faults injected:   $total_faults:$faults_line
events expected:   $expected
events delivered:  $keys distinct idempotencyKeys (by status $by_status_ingest)
events lost:       $lost
events duplicated: $extra (events at the ingest beyond one per response)
redeliveries:      $duplicates (sent again with the same idempotencyKey, deduplicated by the ingest)
sidecar outage:    ${OUTAGE}s each; plugin buffer_max_size $BUFFER_MAX_SIZE; overflow file used $overflow_spills times, $overflow_replayed events replayed from it
slow requests:     $(jq .requests <<<"$SLOW") (answered after 1.5 s, in flight across each nginx reload)
refused (503):     $rejected_full events refused while the spool was full or unwritable, retried by the plugin (last sidecar process)
dropped:           $dropped
dead-lettered:     $dead_lettered events refused one by one by the partial-failure fault; replay: $replayed
connection churn:  $(jq .requests <<<"$CHURN") short connections to the sidecar's /healthz ($CHURN_RATE/s target; by status $(jq -c .by_status <<<"$CHURN"); $(jq .errors <<<"$CHURN") without response, while the sidecar restarted)
peak sidecar RSS:  ${peak_mib} MiB (ceiling ${RSS_MAX_MIB} MiB, $(wc -l < "$WORK/rss.log") samples)
result:            $([ ${#FAILURES[@]} -eq 0 ] && echo PASS || echo "FAIL (${#FAILURES[@]})")
EOF
[ ${#FAILURES[@]} -eq 0 ]
