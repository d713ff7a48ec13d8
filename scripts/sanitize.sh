#!/usr/bin/env bash
# The whole test suite (unit + integration, including the aforo-sidecar and fake-ingest children they
# spawn) built with AddressSanitizer + UndefinedBehaviorSanitizer, run by ctest with the leak check on.
# Fails on a test failure or on any sanitizer report from any process (reports are written to
# per-process files, so a report in a child that the test did not notice still fails the run).
#   scripts/sanitize.sh [ctest args...]    env: AFORO_ASAN_BUILD_DIR (build-asan), AFORO_JOBS (nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

build_dir=${AFORO_ASAN_BUILD_DIR:-build-asan}
jobs=${AFORO_JOBS:-$(nproc)}
# Debug-ish optimisation keeps stacks readable while staying fast enough for the integration tests.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${AFORO_ASAN_BUILD_TYPE:-Debug} -DAFORO_SANITIZE=ON \
  ${AFORO_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$jobs"

report_dir=$(mktemp -d /tmp/aforo-sanitize-XXXXXX)
trap 'rm -rf "$report_dir"' EXIT
# log_path: every process writes its report to $report_dir/<tool>.<pid> instead of stderr.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1:check_initialization_order=1:log_path=$report_dir/asan${ASAN_EXTRA:+:$ASAN_EXTRA}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:log_path=$report_dir/ubsan"
export LSAN_OPTIONS="exitcode=88"

status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@" || status=$?

reports=$(find "$report_dir" -type f -size +0 | sort)
if [ -n "$reports" ]; then
  echo "sanitize: sanitizer reports from $(echo "$reports" | wc -l) process(es):" >&2
  for f in $reports; do
    echo "==== $(basename "$f")" >&2
    cat "$f" >&2
  done
  status=1
fi
if [ "$status" -eq 0 ]; then echo "sanitize: all tests passed under ASan+UBSan with leak check, no reports"; fi
echo "sanitize: ${SECONDS}s in all (build included)"
exit $status
