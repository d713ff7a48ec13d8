#!/usr/bin/env bash
# Include directions between the layers of daemon/src (daemon/src/README.md): every `#include "..."`
# of a file names a path under daemon/src whose top folder its own folder may use. Run by ctest.
# Usage: scripts/check-layers.sh [REPO_ROOT]   (exit 1 and one line per violation when any)
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root/daemon/src" || { echo "check-layers: $root/daemon/src not found" >&2; exit 2; }

# Folder -> the folders its files may include (itself included). util sits below everything, core is
# pure (nothing but core), config reads YAML into structs, io does every kind of I/O, app glues.
declare -A allowed=(
  [util]="util"
  [core]="core"
  [config]="config core util"
  [io]="io config core util"
  [app]="app io config core util"
)
# io/*.cpp and io/spool/ build the library without networking (daemon/CMakeLists.txt): they must not
# include the networking part of io.
io_net='^io/(http|redis|clients|process)/'
# hiredis stays in one translation unit.
hiredis_home='io/redis/redis_codec.cpp'

problems=0
report() { echo "$1" >&2; problems=$((problems + 1)); }

while IFS= read -r file; do
  layer=${file%%/*}
  [ "$layer" != "$file" ] || continue  # files at the top (empty.cpp) belong to no layer
  if [ -z "${allowed[$layer]+set}" ]; then
    report "$file: folder '$layer' is not in the table of scripts/check-layers.sh"
    continue
  fi
  while IFS=: read -r line target; do
    to=${target%%/*}
    if [ "$to" = "$target" ] || [ -z "${allowed[$to]+set}" ]; then
      report "daemon/src/$file:$line: #include \"$target\" is not a path under daemon/src/<layer>/"
    elif [[ " ${allowed[$layer]} " != *" $to "* ]]; then
      report "daemon/src/$file:$line: $layer/ may not include $to/ (\"$target\"; $layer/ may include: ${allowed[$layer]})"
    elif [[ $file =~ ^io/[^/]+$|^io/spool/ ]] && [[ $target =~ $io_net ]]; then
      report "daemon/src/$file:$line: io files and spool build without networking; \"$target\" is networking"
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" | sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
  if [ "$file" != "$hiredis_home" ] && grep -qE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<hiredis/' "$file"; then
    report "daemon/src/$file: includes hiredis, which only $hiredis_home may"
  fi
done < <(find . -type f \( -name '*.hpp' -o -name '*.cpp' \) | sed 's#^\./##' | sort)

if [ "$problems" -gt 0 ]; then
  echo "check-layers: $problems include(s) against the allowed directions (daemon/src/README.md)" >&2
  exit 1
fi
echo "check-layers: every include follows the allowed directions"
