#!/usr/bin/env bash
# clang-tidy (.clang-tidy: a small set of bug-finding checks, warnings are errors) on the daemon's pure
# layers, core/ and util/: no Boost in them, so it takes seconds per file rather than minutes. Needs a
# configured build directory (compile_commands.json); scripts/test.sh runs it before the build.
# Usage: scripts/lint-cpp.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
[ -f "$build_dir/compile_commands.json" ] || { echo "lint-cpp: no $build_dir/compile_commands.json (run cmake first)" >&2; exit 2; }
mapfile -t files < <(git ls-files 'daemon/src/core/*.cpp' 'daemon/src/util/*.cpp')
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build_dir" --quiet 2> >(grep -v "warnings generated" >&2)
echo "lint-cpp: clang-tidy clean on ${#files[@]} files of core/ and util/"
