# shellcheck shell=bash
# Helpers shared by the bench scripts (bench/*/run.sh), sourced after `set -euo pipefail`.
# Sets `root` (the source tree). Everything runs on loopback; see bench/README.md.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# need_tools HINT TOOL... -> exits with "TOOL is missing: HINT" unless each tool is on PATH or in /usr/sbin.
need_tools() {
  local hint="$1" tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "$tool is missing: $hint" >&2; exit 1; }
  done
}

# bench_binaries [fake-ingest]: unless the environment names them, points SIDECAR_BIN (and, with the
# argument, FAKE_INGEST_BIN) at a Release build in BUILD_DIR (default build-bench), building what is missing.
bench_binaries() {
  local with_fake="${1:-}"
  if [ -n "${SIDECAR_BIN:-}" ] && { [ -z "$with_fake" ] || [ -n "${FAKE_INGEST_BIN:-}" ]; }; then return 0; fi
  local build="${BUILD_DIR:-$root/build-bench}"
  local targets=(aforo-sidecar) bins=("$build/daemon/aforo-sidecar") bin
  if [ -n "$with_fake" ]; then
    targets+=(aforo-fake-ingest)
    bins+=("$build/tests/aforo-fake-ingest")
  fi
  for bin in "${bins[@]}"; do
    if [ ! -x "$bin" ]; then
      cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
      ninja -C "$build" -j2 "${targets[@]}"
      break
    fi
  done
  SIDECAR_BIN="${SIDECAR_BIN:-$build/daemon/aforo-sidecar}"
  if [ -n "$with_fake" ]; then FAKE_INGEST_BIN="${FAKE_INGEST_BIN:-$build/tests/aforo-fake-ingest}"; fi
}

# bench_work NAME: a fresh work dir in `work` (/tmp/aforo-bench-NAME.*) and an empty `pids`; on exit,
# `cleanup` runs. The default one ends every process in `pids` and removes the work dir; a script that
# must stop more (or keep the dir) defines its own cleanup after this, calling stop_pids.
bench_work() {
  work="$(mktemp -d "/tmp/aforo-bench-$1.XXXXXX")"
  pids=()
  trap cleanup EXIT
}
stop_pids() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
cleanup() {
  stop_pids
  rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2
  return 1
}

# start_fake_ingest [ARG...]: aforo-fake-ingest (FAKE_INGEST_BIN) on a free port for the whole run, API key
# bench-key-0001, tenant bench, log in $work/fake.log; sets fake_port and fake_pid.
start_fake_ingest() {
  fake_port="$(free_port)"
  "$FAKE_INGEST_BIN" --listen "127.0.0.1:$fake_port" --api-key bench-key-0001 --tenant bench "$@" 2>"$work/fake.log" &
  fake_pid=$!
  pids+=("${fake_pid}")
  wait_port "$fake_port"
}

# median_columns: rows of numbers on stdin (blank lines skipped) -> one row, each column's median (the lower
# middle for an even count). bench/lib_test.sh checks it.
median_columns() {
  awk 'BEGIN { n = 0 }
    NF { for (i = 1; i <= NF; i++) v[i, n] = $i; if (NF > w) w = NF; n++ }
    END { for (i = 1; i <= w; i++) { for (j = 0; j < n; j++) a[j] = v[i, j]
          for (x = 0; x < n; x++) for (y = x + 1; y < n; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
          printf "%s%s", a[int((n - 1) / 2)], (i < w ? " " : "\n") } }'
}

# metric PORT SERIES -> the sidecar's /metrics value of that series (0 when absent)
metric() {
  curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s { v = $2 } END { printf "%.0f\n", v + 0 }'
}
# field NAME RESULT -> NAME's value in a wrk script's "RESULT name=value ..." line
field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / hz }' "/proc/$1/stat"; }
# The median of the numbers on stdin (separated by spaces or newlines).
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# start_delivery_sidecar YAML...: a sidecar on the defaults (durability disk, its spool in $work) that sends
# to the fake ingest (start_fake_ingest first), with the YAML lines given appended to its config; sets
# sc_port and sc_pid, log in $work/sidecar.log.
start_delivery_sidecar() {
  sc_port="$(free_port)"
  rm -rf "$work/spool"
  {
    printf 'listen: ["127.0.0.1:%s"]\n' "$sc_port"
    printf 'aforo: { ingest_url: "http://127.0.0.1:%s/v1/ingest/batch" }\n' "$fake_port"
    printf 'entitlements: { source: "file:%s/config/snapshot.example.yaml" }\n' "$root"
    printf 'buffer: { spool_dir: "%s/spool" }\n' "$work"
    printf 'discovery: { enabled: false, state_dir: "%s/state" }\nlog: { level: warn }\n' "$work"
    printf '%s\n' "$@"
  } >"$work/sidecar.yaml"
  AFORO_API_KEY=bench-key-0001 AFORO_TENANT_ID=bench "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar.log" &
  sc_pid=$!
  pids+=("$sc_pid")
  wait_port "$sc_port" || { cat "$work/sidecar.log" >&2; exit 1; }
}
