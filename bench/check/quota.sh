#!/usr/bin/env bash
# POST /v1/check with a Redis-shared quota, A/B in the same run: three sidecars on one loopback
# redis-server, the same snapshot (bench/check/snapshot.yaml, a limit no run exhausts):
#   counters  cache.quota_mode counters   (count locally, share every sync_interval: the previous mode)
#   reserve   cache.quota_mode reserve    (admit from chunks reserved in Redis: the default)
#   exact     reserve + quota_max_chunk 1 (every check waits for its own reservation: what a check
#                                          costs near the limit, where chunks shrink to 1)
# Shapes as in run.sh (1 connection, saturation, paced ~5k req/s); ROUNDS rounds with the targets
# alternating, the median round shown. See bench/README.md.
#
#   SIDECAR_BIN=build/daemon/aforo-sidecar DURATION=5s bench/check/quota.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-3}"
SAT_CONNECTIONS="${SAT_CONNECTIONS:-50}"
RATE_CONNECTIONS="${RATE_CONNECTIONS:-12}"
RATE_DELAY_MS="${RATE_DELAY_MS:-2}"

need_tools "apt-get install -y wrk" wrk
need_tools "apt-get install -y redis-server" redis-server
bench_binaries
bench_work quota

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"

declare -A port pid
start_sidecar() {  # NAME EXTRA_CACHE_YAML
  local name="$1" extra="$2" p
  p="$(free_port)"
  cat >"$work/$name.yaml" <<YAML
listen: ["127.0.0.1:$p"]
aforo: { tenant_id: "bench-$name", ingest_url: "http://127.0.0.1:9/v1/ingest/batch" }
entitlements: { source: "file:$here/snapshot.yaml" }
cache: { redis: "redis://127.0.0.1:$redis_port/0", $extra }
buffer: { spool_dir: "$work/spool-$name", durability: memory }
discovery: { enabled: false, state_dir: "$work/state-$name" }
log: { level: warn }
YAML
  "$SIDECAR_BIN" --config "$work/$name.yaml" 2>"$work/$name.log" &
  pid[$name]=$!
  pids+=("${pid[$name]}")
  port[$name]="$p"
}
start_sidecar counters "quota_mode: counters"
start_sidecar reserve "quota_mode: reserve"
start_sidecar exact "quota_mode: reserve, quota_max_chunk: 1"
targets=(counters reserve exact)
for t in "${targets[@]}"; do
  wait_port "${port[$t]}"
  for _ in $(seq 1 50); do  # the snapshot loads and Redis connects
    probe="$(curl -s -X POST -d '{"customer_id":"cust_bench","service":"search","method":"GET","path":"/v1/search/items/42"}' \
      "http://127.0.0.1:${port[$t]}/v1/check" || true)"
    case "$probe" in *'"allowed":true'*) break ;; esac
    sleep 0.1
  done
  case "$probe" in *'"allowed":true'*) ;; *) echo "$t: unexpected /v1/check answer: $probe" >&2; exit 1 ;; esac
done

# run TARGET CONNECTIONS THREADS DELAY_MS -> "rps p50 p99 max errors cpu_us_per_request"
run() {
  local t="$1" conns="$2" threads="$3" delay="$4" out before after line
  before="$(cpu_s "${pid[$t]}")"
  out="$(DELAY_MS="$delay" wrk -t "$threads" -c "$conns" -d "$DURATION" -s "$here/check.lua" \
    "http://127.0.0.1:${port[$t]}/v1/check" 2>&1)"
  after="$(cpu_s "${pid[$t]}")"
  line="$(grep '^RESULT' <<<"$out")" || { echo "$out" >&2; exit 1; }
  sed -E 's/RESULT rps=([0-9]+) p50_us=([0-9]+) p99_us=([0-9]+) max_us=([0-9]+) requests=([0-9]+) errors=([0-9]+)/\1 \2 \3 \4 \6 \5/' <<<"$line" |
    awk -v t0="$before" -v t1="$after" '{ printf "%s %s %s %s %s %.1f\n", $1, $2, $3, $4, $5, ($6 > 0 ? (t1 - t0) * 1e6 / $6 : 0) }'
}

# hist TARGET -> "within_0.5ms within_1ms count" of its aforo_sidecar_check_duration_seconds so far
hist() {
  curl -s "http://127.0.0.1:${port[$1]}/metrics" | awk '
    $1 == "aforo_sidecar_check_duration_seconds_bucket{le=\"0.0005\"}" { a = $2 }
    $1 == "aforo_sidecar_check_duration_seconds_bucket{le=\"0.001\"}" { b = $2 }
    $1 == "aforo_sidecar_check_duration_seconds_count" { n = $2 }
    END { printf "%d %d %d\n", a, b, n }'
}
declare -A H  # TARGET.SHAPE -> summed "within_0.5ms within_1ms count" over the rounds
for t in "${targets[@]}"; do DURATION=2s run "$t" 1 1 0 >/dev/null; done  # warm-up
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A P
for _round in $(seq 1 "$ROUNDS"); do
  for shape in one sat rate; do
    for t in "${targets[@]}"; do
      h0="$(hist "$t")"
      case $shape in
        one) P[$t.$shape]+="$(run "$t" 1 1 0)"$'\n' ;;
        sat) P[$t.$shape]+="$(run "$t" "$SAT_CONNECTIONS" 2 0)"$'\n' ;;
        rate) P[$t.$shape]+="$(run "$t" "$RATE_CONNECTIONS" 1 "$RATE_DELAY_MS")"$'\n' ;;
      esac
      H[$t.$shape]="$(awk -v s="${H[$t.$shape]:-0 0 0}" -v a="$h0" -v b="$(hist "$t")" 'BEGIN {
        split(s, x); split(a, y); split(b, z); printf "%d %d %d", x[1] + z[1] - y[1], x[2] + z[2] - y[2], x[3] + z[3] - y[3] }')"
    done
  done
done
median() {  # field I over the rounds of one cell
  awk -v i="$2" 'NF { a[n++] = $i } END { for (x = 0; x < n; x++) for (y = x + 1; y < n; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
    print a[int((n - 1) / 2)] }' <<<"${P[$1]}"
}
rounds() { awk -v i="$2" 'NF { printf "%s%s", s, $i; s = "," }' <<<"${P[$1]}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

echo
echo "POST /v1/check with Redis-shared quota, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk $DURATION x $ROUNDS rounds (median)"
echo "sidecar: $SIDECAR_BIN"
printf '%-34s %10s %10s %10s %14s\n' "run" "counters" "reserve" "exact" "reserve/cntrs"
for shape in one sat rate; do
  case $shape in
    one) label="1 conn" ;;
    sat) label="$SAT_CONNECTIONS conns x 2 threads" ;;
    rate) label="paced ${RATE_CONNECTIONS}c x ${RATE_DELAY_MS} ms" ;;
  esac
  for f in "1 req/s" "2 p50 us" "3 p99 us" "6 CPU us/req"; do
    i="${f%% *}"
    name="${f#* }"
    a="$(median counters.$shape "$i")"
    b="$(median reserve.$shape "$i")"
    c="$(median exact.$shape "$i")"
    printf '%-34s %10s %10s %10s %14s\n' "$label $name" "$a" "$b" "$c" "$(ratio "$b" "$a")"
  done
  printf '%-34s %s / %s / %s\n' "$label p99 rounds" "$(rounds counters.$shape 3)" "$(rounds reserve.$shape 3)" "$(rounds exact.$shape 3)"
done
errors=0
for k in "${!P[@]}"; do errors=$((errors + $(awk 'NF { s += $5 } END { print s + 0 }' <<<"${P[$k]}"))); done
echo "wrk errors: $errors; exact waits: $(metric "${port[exact]}" aforo_sidecar_quota_reservation_waits_total);" \
  "reserve waits: $(metric "${port[reserve]}" aforo_sidecar_quota_reservation_waits_total)"
# Inside the sidecar (aforo_sidecar_check_duration_seconds, from the request's parse to its answer,
# the reservation wait included), per shape over the rounds: the share of checks within 0.5 and 1 ms.
for shape in one sat rate; do
  for t in "${targets[@]}"; do
    awk -v t="$t" -v sh="$shape" -v h="${H[$t.$shape]}" 'BEGIN { split(h, x)
      if (x[3] > 0) printf "in-sidecar %-5s %-9s %8.3f%% within 0.5 ms %8.3f%% within 1 ms (%d checks)\n", sh, t, 100 * x[1] / x[3], 100 * x[2] / x[3], x[3] }'
  done
done
echo "load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
