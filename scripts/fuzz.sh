#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, separate build dir) and runs each one for a bounded
# time starting from its seed corpus in fuzz/corpus/<target>/; prints the executions per target and
# fails on any crash, sanitizer report, leak, timeout or invariant failure (see fuzz/README.md).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 15
# env: AFORO_FUZZ_BUILD_DIR (build-fuzz), AFORO_JOBS (nproc; also how many targets run at once),
#      AFORO_FUZZ_TARGETS ("ingest_batch check_request ..."; default all), AFORO_FUZZ_ARGS (extra libFuzzer flags)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --fuzz
root=$PWD

seconds=${1:-15}
build_dir=${AFORO_FUZZ_BUILD_DIR:-build-fuzz}
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
jobs=${AFORO_JOBS:-$(nproc)}
all_targets=(ingest_batch ingest_single ingest_ack check_request spool_records batch_split snapshot_json snapshot_text
  config_yaml lz4_frame http_router)
read -r -a targets <<<"${AFORO_FUZZ_TARGETS:-${all_targets[*]}}"

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAFORO_FUZZ=ON \
  -DAFORO_BUILD_TESTS=OFF >/dev/null
fuzz_targets=()
for t in "${targets[@]}"; do fuzz_targets+=("fuzz_$t"); done
cmake --build "$build_dir" -j "$jobs" --target "${fuzz_targets[@]}"

dict_of() {
  case "$1" in
    http_router) echo "$root/fuzz/dict/http_router.dict" ;;
    ingest_*|check_request|snapshot_json|batch_split) echo "$root/fuzz/dict/json.dict" ;;
    snapshot_text|config_yaml) echo "$root/fuzz/dict/yaml.dict" ;;
    spool_records) echo "$root/fuzz/dict/spool.dict" ;;
    lz4_frame) echo "$root/fuzz/dict/lz4.dict" ;;
  esac
}

# -max_len per target: long enough to reach its limits (JSON nesting 64 levels, 32 in snapshots, and
# yaml-cpp's own 500; server.max_header 16 KiB and 1000 events a batch need more).
max_len_of() {
  case "$1" in
    ingest_batch|http_router) echo 65536 ;;
    ingest_single|ingest_ack|check_request|snapshot_json|snapshot_text|config_yaml) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1${ASAN_EXTRA:+:$ASAN_EXTRA}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

out_dir="$build_dir/fuzz-runs"
mkdir -p "$out_dir"

run_one() {
  local t=$1
  local work="$out_dir/$t"
  mkdir -p "$work/corpus" "$work/crashes"
  rm -f "$work/crashes"/* "$work/log"
  local dict args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048
    -max_len="$(max_len_of "$t")" -artifact_prefix="$work/crashes/")
  dict=$(dict_of "$t")
  [ -n "$dict" ] && args+=(-dict="$dict")
  # The first directory collects new inputs (kept between runs, outside the repository); the seeds are read-only.
  "$build_dir/fuzz/fuzz_$t" "${args[@]}" ${AFORO_FUZZ_ARGS:-} "$work/corpus" "$root/fuzz/corpus/$t" \
    >"$work/log" 2>&1
  echo $? >"$work/rc"
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

status=0
printf '%-16s %12s %10s %8s %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
  work="$out_dir/$t"
  rc=$(cat "$work/rc" 2>/dev/null || echo 99)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  units=$(find "$work/corpus" -type f | wc -l)
  result=ok
  if [ "$rc" != 0 ] || [ -n "$(ls -A "$work/crashes")" ] || [ -z "$execs" ]; then result="FAILED (exit $rc)"; status=1; fi
  printf '%-16s %12s %10s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$units" "$result"
done
if [ "$status" -ne 0 ]; then
  for t in "${targets[@]}"; do
    work="$out_dir/$t"
    if [ "$(cat "$work/rc" 2>/dev/null || echo 99)" != 0 ] || [ -n "$(ls -A "$work/crashes" 2>/dev/null)" ]; then
      echo "==== fuzz_$t (log $work/log, inputs in $work/crashes/)" >&2
      grep -v '^#[0-9]\|^INFO: \|^stat::' "$work/log" | tail -60 >&2
    fi
  done
  echo "fuzz: FAILED; reproduce with $build_dir/fuzz/fuzz_<target> <crash file>" >&2
fi
echo "fuzz: ${#targets[@]} targets x ${seconds}s, ${SECONDS}s in all (build included)"
exit $status
