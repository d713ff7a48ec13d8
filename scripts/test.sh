#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, builds, runs the C++ unit and
# integration tests (ctest), the Lua plugin specs (busted), then the fuzzers briefly and the
# sanitizer suite (scripts/fuzz.sh, scripts/sanitize.sh). Usage: scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

# Lint first, it takes seconds: luacheck on the plugin, its shim and specs (.luacheckrc), shellcheck
# (warnings and errors) on every shell script, clang-format on every C++ file.
luacheck -q lua tests/lua
mapfile -t shell_scripts < <(git ls-files '*.sh')
shellcheck -x -S warning "${shell_scripts[@]}" .ci/run
# C++ formatting (.clang-format): `clang-format -i <file>` fixes what this reports.
mapfile -t cpp_files < <(git ls-files '*.cpp' '*.hpp' '*.h')
clang-format --dry-run -Werror "${cpp_files[@]}"

build_dir=${AFORO_BUILD_DIR:-build}
jobs=${AFORO_JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${AFORO_BUILD_TYPE:-RelWithDebInfo} ${AFORO_CMAKE_ARGS:-} >/dev/null
# clang-tidy on core/ and util/ (.clang-tidy), from the configured build's compile_commands.json.
scripts/lint-cpp.sh "$build_dir"
cmake --build "$build_dir" -j "$jobs"

# catch_discover_tests splits test names at ';', and the halves then match no test and "pass".
if grep -n 'TEST_CASE("[^"]*;' tests/unit/*.cpp tests/integration/*.cpp; then
  echo "test.sh: a TEST_CASE name above holds ';', which ctest would split into tests that never run" >&2
  exit 1
fi

status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@" || status=$?

# Operations checks (tests/ops): systemd-analyze verify + the unit's settings, the Kubernetes manifests'
# required fields, the Dockerfile (statically: no container engine needed). Debian's python3 has python3-yaml.
for check in check_systemd_unit check_kubernetes check_dockerfile; do
  /usr/bin/python3 "tests/ops/$check.py" . --sidecar "$build_dir/daemon/aforo-sidecar" || status=$?
done

# Short soak under faults (tests/soak/README.md): AFORO_SOAK_SECONDS (60; 0 skips) of load through nginx,
# the plugin, the sidecar, Redis and the fake ingest with every fault kind; 0 events lost. Not with ctest args.
if [ $# -eq 0 ] && [ "${AFORO_SOAK_SECONDS:-60}" != 0 ]; then
  AFORO_BUILD_DIR="$build_dir" scripts/soak.sh "${AFORO_SOAK_SECONDS:-60}" || status=$?
fi

if [ -d tests/lua/spec ] && ls tests/lua/spec/*_spec.lua >/dev/null 2>&1; then
  busted tests/lua/spec || status=$?
fi

# Hardening (fuzz/README.md): every libFuzzer target for AFORO_FUZZ_SECONDS (15) each, then the whole
# suite again under ASan+UBSan with the leak check. Skipped when ctest args select a subset, or with
# AFORO_SKIP_HARDENING=1.
if [ $# -eq 0 ] && [ "${AFORO_SKIP_HARDENING:-0}" != 1 ]; then
  # A fixed seed keeps CI's brief run reproducible (the same mutation sequence from the same seeds);
  # scripts/fuzz.sh alone, for longer runs, uses a fresh random seed each time.
  AFORO_FUZZ_ARGS="${AFORO_FUZZ_ARGS:--seed=1}" scripts/fuzz.sh "${AFORO_FUZZ_SECONDS:-15}" || status=$?
  scripts/sanitize.sh || status=$?
fi
exit $status
