#!/usr/bin/env bash
# Instructions per /v1/check in the sidecar: the sidecar runs under `valgrind --tool=callgrind` with the
# bench snapshot (as in run.sh: every check is allowed and takes the quota path) and one keep-alive client
# posts the Kong-like check body LOW and then HIGH times; the difference of the two runs' instruction counts
# divided by the extra checks excludes startup and shutdown. Instructions, not time: repeatable on a busy
# machine, so two builds compare within a fraction of a percent. See bench/README.md.
#
#   bench/check/callgrind.sh           # builds a Release sidecar in build-bench if needed
#   SIDECAR_BIN=... KEEP=/tmp/cg bench/check/callgrind.sh
#
# Env: SIDECAR_BIN, BUILD_DIR (default build-bench), LOW (default 200), HIGH (default 2200), KEEP (a directory
#      to keep callgrind.out.{low,high} in, for callgrind_annotate).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
LOW="${LOW:-200}"
HIGH="${HIGH:-2200}"

need_tools "apt-get install -y valgrind python3 bc" valgrind python3 bc
bench_binaries
bench_work check-callgrind

# run NAME CHECKS -> prints the sidecar's total instructions (Ir) for a whole run of CHECKS checks.
run() {
  local name="$1" n="$2" port
  port="$(free_port)"
  rm -rf "$work/spool" "$work/state"
  cat >"$work/sidecar.yaml" <<YAML
listen: ["127.0.0.1:$port"]
aforo: { ingest_url: "http://127.0.0.1:9/v1/ingest/batch" }
entitlements: { source: "file:$here/snapshot.yaml" }
buffer: { spool_dir: "$work/spool", durability: memory }
discovery: { enabled: false, state_dir: "$work/state" }
log: { level: warn }
YAML
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out.$name" \
    "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar-$name.log" &
  local pid=$!
  pids+=("${pid}")
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  python3 - "$port" "$n" <<'PY' >&2
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
body = ('{"customer_id":"cust_bench","service":"search","method":"GET",'
        '"path":"/v1/search/items/42"}')
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    conn.request("POST", "/v1/check", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    answer = r.read()
    if r.status != 200 or b'"allowed":true' not in answer:
        sys.exit("unexpected /v1/check answer: %d %r" % (r.status, answer[:200]))
print("posted %d checks on one connection, all allowed" % n)
PY
  kill -TERM "$pid"
  wait "$pid" || { echo "the sidecar exited with an error; its log:" >&2; cat "$work/sidecar-$name.log" >&2; exit 1; }
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$work/callgrind.out.$name" "$KEEP/"
  awk '/^(summary|totals):/ { print $2; exit }' "$work/callgrind.out.$name"
}

low="$(run low "$LOW")"
high="$(run high "$HIGH")"
printf "sidecar instructions: %d checks %d, %d checks %d\n" "$LOW" "$low" "$HIGH" "$high"
printf "instructions per check: %.0f  (%d extra checks)\n" "$(echo "($high - $low) / ($HIGH - $LOW)" | bc -l)" "$((HIGH - LOW))"
