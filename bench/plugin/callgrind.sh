#!/usr/bin/env bash
# What the aforo-metering plugin costs one nginx worker in instructions per request: the harness's proxy
# (tests/lua/nginx/start.sh) runs in the foreground under `valgrind --tool=callgrind` (one process, no
# master), against a real Release sidecar delivering to the fake ingest; requests go one at a time on
# one keep-alive connection. Two runs (N/3 and N requests): the difference of the worker's instruction
# counts over the extra requests is one request, without startup or shutdown. Instructions, not time: the
# number does not move with the machine's load (the wall-clock numbers are bench/plugin/run.sh's). It does
# move with LuaJIT's trace decisions, which differ from one nginx start to the next (48k-84k instructions
# per request over five runs of the same plugin): ROUNDS runs each mode that many times and prints every
# run and the median. User space only: the kernel's share is not counted.
#
#   bench/plugin/callgrind.sh                        # nginx alone, the PDK shim, and the plugin of this tree
#   BASELINE=/path/to/other/checkout bench/plugin/callgrind.sh   # adds that tree's plugin, same run
#   MODES="on" N=6000 bench/plugin/callgrind.sh
#   JIT=off BASELINE=/path/to/other ROUNDS=3 bench/plugin/callgrind.sh   # LuaJIT's compiler off: the
#                                                          # interpreter's count, which trace decisions do not move
#   MODES="on nofile" ROUNDS=5 bench/plugin/callgrind.sh   # nofile: the plugin with overflow_max_bytes 0 (no
#                                                          # overflow file), to see what the overflow path costs
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN, BUILD_DIR (default build-bench), N (requests of the long run, default
#      3000), JIT (on | off: off runs every mode's Lua in the interpreter only), ROUNDS (runs per mode, default 3), MODES (default "off shim on"), BASELINE (a source tree whose lua/ and tests/lua/ are measured as
#      mode "baseline"), KEEP (a directory to keep the callgrind.out files in).
# Time-based work is pushed out of the window so that every run does the same: flush_interval 60 s (a flush
# every batch_size = 20 events) and lease_ttl 60 s (a check every lease of 200 requests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
N="${N:-3000}"
JIT="${JIT:-on}"
case "$JIT" in on | off) ;; *) echo "JIT: on or off" >&2; exit 2 ;; esac
ROUNDS="${ROUNDS:-3}"
MODES="${MODES:-off shim on}"
[ -z "${BASELINE:-}" ] || MODES="$MODES baseline"

need_tools "apt-get install -y valgrind nginx libnginx-mod-http-lua python3" valgrind nginx python3 callgrind_annotate
bench_binaries fake-ingest
bench_work plugin-callgrind
cleanup() {
  for mode in $MODES; do "$root/tests/lua/nginx/stop.sh" "$work/$mode" >/dev/null 2>&1 || true; done
  stop_pids
  rm -rf "$work"
}

start_fake_ingest --count-only
sc_port="$(free_port)"
cat >"$work/sidecar.yaml" <<YAML
listen: ["127.0.0.1:$sc_port"]
aforo: { ingest_url: "http://127.0.0.1:$fake_port/v1/ingest/batch" }
entitlements: { source: "file:$root/bench/check/snapshot.yaml", lease_ttl: 60s }
buffer: { spool_dir: "$work/spool" }
discovery: { enabled: false, state_dir: "$work/state" }
log: { level: warn }
YAML
AFORO_API_KEY=bench-key-0001 AFORO_TENANT_ID=bench "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar.log" &
pids+=($!)
wait_port "$sc_port"

# total_ir FILE -> the run's instruction count
total_ir() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'; }

echo "worker instructions per request (user space), $N requests, one connection, LuaJIT compiler $JIT:"
for mode in $MODES; do
  tree="$root" plugin=on overflow=104857600
  case $mode in
    off | shim) plugin=$mode ;;
    baseline) tree="$BASELINE" ;;
    nofile) overflow=0 ;;
  esac
  port="$(free_port)"
  AFORO_FLUSH_INTERVAL=60000 AFORO_PLUGIN=$plugin AFORO_WORKERS=1 AFORO_OVERFLOW_MAX_BYTES=$overflow \
    "$tree/tests/lua/nginx/start.sh" "$work/$mode" "http://127.0.0.1:$sc_port" "$port" "$(free_port)" \
    >"$work/start-$mode.log" 2>&1 || { cat "$work/start-$mode.log" >&2; exit 1; }
  # The proxy again, in the foreground under callgrind (its upstream stays up).
  pid="$(cat "$work/$mode/logs/nginx.pid")"
  kill -QUIT "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  sed -i -e 's/^daemon .*/daemon off; master_process off;/' "$work/$mode/conf/nginx.conf"
  if [ "$JIT" = off ] && [ -f "$work/$mode/conf/plugin_init.conf" ]; then
    sed -i -e 's/^init_by_lua_block { /&require("jit").off() /' "$work/$mode/conf/plugin_init.conf"
    grep -q 'require("jit").off()' "$work/$mode/conf/plugin_init.conf" || { echo "JIT=off: not applied" >&2; exit 1; }
  fi
  results=()
  for round in $(seq 1 "$ROUNDS"); do
    for run in short long; do
      n=$N
      [ $run = short ] && n=$((N / 3))
      valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$mode.$round.$run" \
        /usr/sbin/nginx -p "$work/$mode" -c "$work/$mode/conf/nginx.conf" 2>"$work/valgrind.$mode.$run.log" &
      vg=$!
      for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
      python3 - "$port" "$n" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    c.request("GET", "/v1/search/items/42?cost=0.002", headers={"X-Tenant-Id": "cust_bench"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"proxy answered {r.status}")
PY
      sleep 1.5 # the last flush
      kill -QUIT "$vg"
      wait "$vg" || true
      printf -v "ir_$run" '%s' "$(total_ir "$work/callgrind.$mode.$round.$run")"
    done
    results+=($(((ir_long - ir_short) / (N - N / 3))))
  done
  printf "  %-8s median %8d   runs: %s\n" "$mode" "$(printf '%s\n' "${results[@]}" | sort -n | \
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" "${results[*]}"
  [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP" && cp "$work"/callgrind.$mode.* "$KEEP/"; }
done
accepted="$(metric "$sc_port" aforo_sidecar_events_accepted_total)"
echo "sidecar: $accepted events accepted (the plugin modes' requests, metered)"
