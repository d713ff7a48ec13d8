#!/usr/bin/env bash
# What the aforo-metering plugin costs a Kong worker: the nginx harness (one worker, proxying to a local
# upstream) with the plugin (checks and metering on, against the real sidecar delivering to the fake ingest)
# vs. the same nginx without it (AFORO_PLUGIN=off), in the same run, alternating, over several rounds.
# wrk with one connection (p50, p99) and with 50 connections (requests/s). See bench/README.md.
#
#   bench/plugin/run.sh              # builds a Release sidecar + fake ingest in build-bench if needed
#   SIDECAR_BIN=... FAKE_INGEST_BIN=... ROUNDS=3 DURATION=10s bench/plugin/run.sh
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN, BUILD_DIR (default build-bench), ROUNDS (default 3), DURATION (per wrk
#      run, default 10s), CONNECTIONS (saturation shape, default 50), THREADS (wrk threads of that shape,
#      default 1), TRANSPORT (tcp | unix: the plugin's sidecar_url, default tcp), TARGET (request path,
#      default /v1/search/items/42?cost=0.002), and the harness's
#      AFORO_* plugin settings (tests/lua/nginx/start.sh), e.g. AFORO_BATCH_SIZE, AFORO_FLUSH_INTERVAL,
#      and LAYOUT: shared (default: every process on every core) or isolated (the proxies' nginx on
#      core 0; wrk, the upstreams, the sidecar and the fake ingest on the other cores; see bench/README.md),
#      and OVERFLOW_AB=1: a fourth proxy, "nofile", the plugin with overflow_max_bytes 0 (no overflow file),
#      in the same rounds, to show what the overflow path costs while the sidecar is up.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
export TARGET="${TARGET:-/v1/search/items/42?cost=0.002}"
MODES="on shim off"
[ "${OVERFLOW_AB:-0}" = 1 ] && MODES="on nofile shim off"

need_tools "scripts/install-deps.sh --bench" wrk nginx curl python3 bc
bench_binaries fake-ingest
bench_work plugin
# Besides lib.sh's cleanup: the three nginx harnesses, and KEEP_WORK=1 keeps the work dir.
cleanup() {
  for mode in on off shim nofile; do "$root/tests/lua/nginx/stop.sh" "$work/$mode" >/dev/null 2>&1 || true; done
  stop_pids
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}

echo "machine: $(nproc) cores; before: $(uptime)"

# The fake ingest and the sidecar (Release), for the whole run.
start_fake_ingest --count-only
# The fake ingest stands in for Aforo's remote ingest, whose CPU a gateway host never pays: at nice 19 it
# yields the cores at once to the measured chain (wrk, the proxy, its upstream, the sidecar).
renice -n 19 -p "$fake_pid" >/dev/null
sc_port="$(free_port)"
cat >"$work/sidecar.yaml" <<YAML
listen: ["127.0.0.1:$sc_port", "unix:$work/sidecar.sock"]
aforo: { ingest_url: "http://127.0.0.1:$fake_port/v1/ingest/batch" }
entitlements: { source: "file:$root/bench/check/snapshot.yaml" }
buffer: { spool_dir: "$work/spool" }
discovery: { enabled: false, state_dir: "$work/state" }
log: { level: warn }
YAML
AFORO_API_KEY=bench-key-0001 AFORO_TENANT_ID=bench "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar.log" &
sc_pid=$!
pids+=("${sc_pid}")
wait_port "$sc_port"

# The plugin's sidecar_url: loopback TCP (default) or the sidecar's unix socket (TRANSPORT=unix).
if [ "${TRANSPORT:-tcp}" = unix ]; then sidecar_url="unix:$work/sidecar.sock"; else sidecar_url="http://127.0.0.1:$sc_port"; fi
echo "plugin: sidecar_url $sidecar_url, entitlement ${AFORO_ENTITLEMENT:-true}, metering ${AFORO_METERING:-true}, \
batch_size ${AFORO_BATCH_SIZE:-20}, flush_interval ${AFORO_FLUSH_INTERVAL:-250} ms"

# The three proxies, each with its own upstream (tests/lua/nginx/start.sh), all up for the whole run:
# off = nginx alone; shim = every phase through the PDK shim with no plugin (a stand-in for what Kong does
# per request without this plugin); on = the plugin.
declare -A port worker
for mode in $MODES; do
  port[$mode]="$(free_port)"
  overflow="${AFORO_OVERFLOW_MAX_BYTES:-104857600}"; plugin=$mode
  [ "$mode" = nofile ] && { overflow=0; plugin=on; }
  AFORO_PLUGIN=$plugin AFORO_OVERFLOW_MAX_BYTES=$overflow AFORO_WORKERS=1 AFORO_LOG_LEVEL=notice \
    "$root/tests/lua/nginx/start.sh" "$work/$mode" "$sidecar_url" "${port[$mode]}" "$(free_port)" \
    >"$work/start-$mode.log" 2>&1 || { cat "$work/start-$mode.log" >&2; exit 1; }
  worker[$mode]="$(pgrep -P "$(cat "$work/$mode/logs/nginx.pid")" | head -1)"
done

url() { echo "http://127.0.0.1:${port[$1]}"; }

# LAYOUT=isolated: the measured nginx (master and worker of each proxy) alone on core 0, everything else
# (wrk, the upstreams, the sidecar, the fake ingest) on the other cores, so that what the plugin costs
# the worker is not mixed with the sidecar's and the load generator's competition for the same core.
wrk_cmd=(wrk)
if [ "${LAYOUT:-shared}" = isolated ]; then
  need_tools "apt-get install -y util-linux" taskset
  ncpu="$(nproc)"
  [ "$ncpu" -ge 2 ] || { echo "LAYOUT=isolated needs at least 2 cores" >&2; exit 1; }
  others="1-$((ncpu - 1))"
  for mode in $MODES; do
    master="$(cat "$work/$mode/logs/nginx.pid")"
    for p in "$master" $(pgrep -P "$master"); do taskset -p -c 0 "$p" >/dev/null; done
    master="$(cat "$work/$mode/backends/logs/nginx.pid")"
    for p in "$master" $(pgrep -P "$master"); do taskset -p -c "$others" "$p" >/dev/null; done
  done
  taskset -a -p -c "$others" "$sc_pid" >/dev/null
  taskset -a -p -c "$others" "$fake_pid" >/dev/null
  wrk_cmd=(taskset -c "$others" wrk)
fi
echo "layout: ${LAYOUT:-shared}"
status="$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Tenant-Id: cust_bench' "$(url on)$TARGET")"
[ "$status" = 200 ] || { echo "the plugin proxy answered $status, expected 200" >&2; exit 1; }
if curl -s -D - -o /dev/null -H 'X-Tenant-Id: cust_bench' "$(url on)$TARGET" | grep -qi '^x-aforo-cost'; then
  echo "warning: X-Aforo-Cost reached the client through the plugin" >&2
fi

# Warm-up: JIT traces, keepalive pools, the sidecar's caches.
for mode in $MODES; do "${wrk_cmd[@]}" -t1 -c4 -d2s -s "$here/proxy.lua" "$(url "$mode")" >/dev/null 2>&1; done

declare -A samples
run() {  # MODE SHAPE -> one line, samples appended
  local mode=$1 shape=$2 args out result w0 w1 s0 s1 reqs cpu_ngx cpu_sc="-"
  if [ "$shape" = c1 ]; then args=(-t1 -c1); else args=(-t"$THREADS" -c"$CONNECTIONS"); fi
  w0="$(cpu_s "${worker[$mode]}")"; s0="$(cpu_s "$sc_pid")"
  out="$("${wrk_cmd[@]}" "${args[@]}" -d"$DURATION" -s "$here/proxy.lua" "$(url "$mode")" 2>&1)"
  w1="$(cpu_s "${worker[$mode]}")"; s1="$(cpu_s "$sc_pid")"
  result="$(grep RESULT <<<"$out" || { echo "$out" >&2; exit 1; })"
  reqs="$(field requests "$result")"
  cpu_ngx="$(echo "($w1 - $w0) * 1000000 / $reqs" | bc -l)"
  [ "$mode" = on ] || [ "$mode" = nofile ] && cpu_sc="$(printf '%.1f' "$(echo "($s1 - $s0) * 1000000 / $reqs" | bc -l)")"
  printf "%-4s %-10s %9.0f %8d %8d %8d %8d %12.1f %12s %6d\n" "$mode" "$shape" "$(field rps "$result")" \
    "$(field p50_us "$result")" "$(field p90_us "$result")" "$(field p99_us "$result")" "$(field max_us "$result")" \
    "$cpu_ngx" "$cpu_sc" "$(field errors "$result")"
  samples[$mode.$shape.rps]+=" $(field rps "$result")"
  samples[$mode.$shape.p50]+=" $(field p50_us "$result")"
  samples[$mode.$shape.p99]+=" $(field p99_us "$result")"
  samples[$mode.$shape.cpu]+=" $cpu_ngx"
}

printf "%-4s %-10s %9s %8s %8s %8s %8s %12s %12s %6s\n" plug shape "req/s" "p50 us" "p90 us" "p99 us" "max us" \
  "ngx us/req" "sidecar us/r" errors
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="$(tr ' ' '\n' <<<"$MODES" | tac | tr '\n' ' ')"; else order="$MODES"; fi
  for shape in c1 "c$CONNECTIONS"; do
    for mode in $order; do run "$mode" "$shape"; done
  done
done
echo "after: $(uptime)"

# Everything the plugin metered reached the sidecar and the ingest: the sidecar's last partial batch
# goes out on the batcher's max wait (5 s), so wait for it (up to 15 s).
for _ in $(seq 1 30); do
  sleep 0.5
  accepted="$(metric "$sc_port" aforo_sidecar_events_accepted_total)"
  delivered="$(metric "$sc_port" aforo_sidecar_events_delivered_total)"
  [ "$accepted" = "$delivered" ] && break
done
echo "sidecar: $accepted events accepted, $delivered delivered to the fake ingest"
[ "$accepted" = "$delivered" ] || echo "sidecar: $((accepted - delivered)) accepted events not delivered within 15 s" >&2
echo "CPU over the whole run: sidecar $(echo "scale=2; $(cpu_s "$sc_pid") * 1000000 / ($accepted + 1)" | bc) us," \
  "fake ingest $(echo "scale=2; $(cpu_s "$fake_pid") * 1000000 / ($delivered + 1)" | bc) us per event" \
  "(on this 2-core machine both compete with the proxy and wrk; in production ingest is remote)"
checks="$(curl -s "http://127.0.0.1:$sc_port/metrics" | awk '$1 ~ /^aforo_sidecar_checks_total/ { s += $2 } END { printf "%.0f\n", s }')"
echo "sidecar: $checks checks answered, $(metric "$sc_port" aforo_sidecar_check_leased_requests_total) requests" \
  "admitted under decision leases and reported"
http_total="$(curl -s "http://127.0.0.1:$sc_port/metrics" | awk '$1 == "aforo_sidecar_http_requests_total" { printf "%.0f\n", $2 }')"
echo "sidecar: $((http_total - checks)) other requests (the plugins' event batches, a few handshakes and scrapes):" \
  "$(echo "scale=1; $accepted / ($http_total - $checks + 1)" | bc) events per batch"
# Error lines other than the harness's /down-* instances (sidecar_url http://127.0.0.1:1, unreachable on purpose).
unexpected="$(grep -E '\[(error|crit|alert|emerg)\]' "$work/on/logs/error.log" | grep -v 'unreachable at http://127.0.0.1:1:' || true)"
[ -z "$unexpected" ] || { echo "plugin proxy error.log has unexpected errors:" >&2; head -5 <<<"$unexpected" >&2; }

m() { echo "${samples[$1]}" | median; }
c="c$CONNECTIONS"
p50_add="$(echo "$(m on.c1.p50) - $(m off.c1.p50)" | bc -l)"
p99_add="$(echo "$(m on.c1.p99) - $(m off.c1.p99)" | bc -l)"
ratio="$(echo "$(m on.$c.rps) / $(m off.$c.rps)" | bc -l)"
cpu_add="$(echo "$(m on.$c.cpu) - $(m off.$c.cpu)" | bc -l)"
verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo MISSED; fi; }
echo
echo "medians over $ROUNDS rounds (DURATION=$DURATION, 1 connection and $CONNECTIONS connections x $THREADS threads):"
echo "against nginx alone (off), the issue's baseline:"
printf "  1 conn p50: %s us bare, %s us plugin: %+.0f us (aim <= 50: %s)\n" "$(m off.c1.p50)" "$(m on.c1.p50)" \
  "$p50_add" "$(verdict "$p50_add <= 50")"
printf "  1 conn p99: %s us bare, %s us plugin: %+.0f us (aim <= 150: %s)\n" "$(m off.c1.p99)" "$(m on.c1.p99)" \
  "$p99_add" "$(verdict "$p99_add <= 150")"
printf "  %s conns req/s: %s bare, %s plugin: %.2f (aim >= 0.70: %s)\n" "$CONNECTIONS" "$(m off.$c.rps)" \
  "$(m on.$c.rps)" "$ratio" "$(verdict "$ratio >= 0.70")"
printf "  nginx worker CPU per request at %s conns: %.1f us bare, %.1f us plugin (%+.1f us)\n" "$CONNECTIONS" \
  "$(m off.$c.cpu)" "$(m on.$c.cpu)" "$cpu_add"
echo "against the same phases run through the PDK shim without the plugin (shim), the plugin's own cost:"
printf "  1 conn p50: %s us shim, %+.0f us; p99: %s us shim, %+.0f us\n" "$(m shim.c1.p50)" \
  "$(echo "$(m on.c1.p50) - $(m shim.c1.p50)" | bc -l)" "$(m shim.c1.p99)" \
  "$(echo "$(m on.c1.p99) - $(m shim.c1.p99)" | bc -l)"
printf "  %s conns req/s: %s shim: %.2f; worker CPU per request %.1f us shim (%+.1f us)\n" "$CONNECTIONS" \
  "$(m shim.$c.rps)" "$(echo "$(m on.$c.rps) / $(m shim.$c.rps)" | bc -l)" "$(m shim.$c.cpu)" \
  "$(echo "$(m on.$c.cpu) - $(m shim.$c.cpu)" | bc -l)"
if [ "${OVERFLOW_AB:-0}" = 1 ]; then
  echo "the overflow path while the sidecar is up: the plugin (overflow_max_bytes 100 MiB, on) against the same"
  echo "plugin without an overflow file (overflow_max_bytes 0, nofile), same rounds:"
  printf "  1 conn p50: %s us nofile, %s us on (%+.0f us); p99: %s us nofile, %s us on (%+.0f us)\n" \
    "$(m nofile.c1.p50)" "$(m on.c1.p50)" "$(echo "$(m on.c1.p50) - $(m nofile.c1.p50)" | bc -l)" \
    "$(m nofile.c1.p99)" "$(m on.c1.p99)" "$(echo "$(m on.c1.p99) - $(m nofile.c1.p99)" | bc -l)"
  printf "  %s conns req/s: %s nofile, %s on: %.3f (vs nginx alone: nofile %.2f, on %.2f)\n" "$CONNECTIONS" \
    "$(m nofile.$c.rps)" "$(m on.$c.rps)" "$(echo "$(m on.$c.rps) / $(m nofile.$c.rps)" | bc -l)" \
    "$(echo "$(m nofile.$c.rps) / $(m off.$c.rps)" | bc -l)" "$ratio"
  printf "  nginx worker CPU per request at %s conns: %.1f us nofile, %.1f us on (%+.1f us)\n" "$CONNECTIONS" \
    "$(m nofile.$c.cpu)" "$(m on.$c.cpu)" "$(echo "$(m on.$c.cpu) - $(m nofile.$c.cpu)" | bc -l)"
  { ls "$work"/on/aforo-overflow-* "$work"/nofile/aforo-overflow-* 2>/dev/null || true; } | sed 's/^/  overflow file written (unexpected while the sidecar is up): /'
fi
