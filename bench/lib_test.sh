#!/usr/bin/env bash
# Checks bench/lib.sh's helpers that compute what the bench tables print. Run by ctest; needs no build.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
fail=0
expect() {  # NAME WANT GOT
  if [ "$2" != "$3" ]; then echo "FAIL $1: want '$2', got '$3'" >&2; fail=1; fi
}
# Every round counts, the first included: 250 is the median of 250, 100, 300 (not the lower of the last two).
expect "median of three rounds" "250 5 7" "$(printf '250 5 9\n100 1 7\n300 9 1\n' | median_columns)"
expect "one round is its own median" "180 3" "$(printf '180 3\n' | median_columns)"
expect "blank lines are not rounds" "20" "$(printf '\n10\n\n20\n30\n' | median_columns)"
expect "even count: the lower middle" "2" "$(printf '4\n1\n2\n3\n' | median_columns)"
[ "$fail" = 0 ] && echo "bench/lib.sh: all checks passed"
exit "$fail"
