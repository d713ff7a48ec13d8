#!/usr/bin/env bash
# Keeps the reference docs complete (run by ctest as "docs: ..."; tests/CMakeLists.txt). Fails, listing
# what is missing, when
#   (a) a metric the daemon registers has no row in README.md's "### Metrics" tables (or a row names a
#       metric the daemon no longer registers);
#   (b) a config field of the Kong plugin (lua/kong/plugins/aforo-metering/schema.lua) has no row in
#       lua/README.md's "## Configuration" table (or a row names a field the schema no longer has);
#   (c) a config key of the daemon (visit_config in daemon/src/config/schema.hpp) is not in the reference
#       configuration config/sidecar.yaml.
# Usage: scripts/check-docs.sh [repository root]   (default: the parent of this script's directory)
set -euo pipefail

root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$root"

readme=README.md
plugin_readme=lua/README.md
plugin_schema=lua/kong/plugins/aforo-metering/schema.lua
config_schema=daemon/src/config/schema.hpp
config_yaml=config/sidecar.yaml
for f in "$readme" "$plugin_readme" "$plugin_schema" "$config_schema" "$config_yaml"; do
  [ -f "$f" ] || { echo "check-docs: $root/$f not found" >&2; exit 2; }
done
[ -d daemon/src ] || { echo "check-docs: $root/daemon/src not found" >&2; exit 2; }

problems=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# report TITLE FILE: prints the title and FILE's lines (indented) when FILE is not empty.
report() {
  if [ -s "$2" ]; then
    echo "check-docs: $1:" >&2
    sed 's/^/  /' "$2" >&2
    problems=$((problems + $(wc -l <"$2")))
  fi
}

# (a) Metrics. A metric is registered by passing its full name as a string literal (to counter, gauge,
# gauge_fn, histogram, or a helper that forwards to them), so the registered names are exactly the
# string literals that consist of nothing but a name. Names in comments, the `aforo_sidecar_*` prefix
# and names mentioned inside help texts are never a whole literal.
{ grep -rhoE --include='*.cpp' --include='*.hpp' '"aforo_sidecar_[a-z0-9_]+"' daemon/src || true; } |
  tr -d '"' | sort -u >"$tmp/metrics.registered"
[ -s "$tmp/metrics.registered" ] || { echo "check-docs: no metric registration found in daemon/src" >&2; exit 2; }
# The rows of the tables in README.md's "### Metrics" section: | `aforo_sidecar_...` | type | ...
awk '/^#+ /{ in_section = ($0 == "### Metrics") } in_section' "$readme" |
  { grep -oE '^\| `aforo_sidecar_[a-z0-9_]+` \|' || true; } | tr -d '|` ' | sort -u >"$tmp/metrics.documented"
comm -23 "$tmp/metrics.registered" "$tmp/metrics.documented" >"$tmp/metrics.missing"
comm -13 "$tmp/metrics.registered" "$tmp/metrics.documented" >"$tmp/metrics.stale"
report "metrics registered in daemon/src without a row in $readme (### Metrics)" "$tmp/metrics.missing"
report "rows in $readme (### Metrics) naming metrics daemon/src does not register" "$tmp/metrics.stale"

# (b) Plugin fields: the entries `{ name = ...` of the config record in schema.lua.
awk '/\{ config = \{/{ in_config = 1; next } in_config' "$plugin_schema" |
  { grep -oE '^[[:space:]]*\{ [a-z_]+ = ' || true; } | sed -E 's/^[[:space:]]*\{ //; s/ = $//' | sort -u >"$tmp/fields.declared"
[ -s "$tmp/fields.declared" ] || { echo "check-docs: no config field found in $plugin_schema" >&2; exit 2; }
# The rows of the table in lua/README.md's "## Configuration" section: | `field` | type | ...
awk '/^#+ /{ in_section = ($0 == "## Configuration") } in_section' "$plugin_readme" |
  { grep -oE '^\| `[a-z_]+` \|' || true; } | tr -d '|` ' | sort -u >"$tmp/fields.documented"
comm -23 "$tmp/fields.declared" "$tmp/fields.documented" >"$tmp/fields.missing"
comm -13 "$tmp/fields.declared" "$tmp/fields.documented" >"$tmp/fields.stale"
report "fields of $plugin_schema without a row in $plugin_readme (## Configuration)" "$tmp/fields.missing"
report "rows in $plugin_readme (## Configuration) naming fields $plugin_schema does not declare" "$tmp/fields.stale"

# (c) Daemon config keys: the first argument of every v.<kind>("key", ...) call in visit_config.
sed -n '/void visit_config(/,/^}/p' "$config_schema" |
  { grep -oE '\bv\.[a-z_]+\("[a-z0-9_.]+"' || true; } | sed -E 's/.*\("//; s/"$//' | sort -u >"$tmp/keys.declared"
[ -s "$tmp/keys.declared" ] || { echo "check-docs: no config key found in visit_config ($config_schema)" >&2; exit 2; }
# Every key path in sidecar.yaml (two spaces per level), e.g. "listen", "server.max_body".
awk '
  /^[[:space:]]*(#|$)/ { next }
  match($0, /^ *[A-Za-z0-9_]+:/) {
    indent = match($0, /[^ ]/) - 1
    depth = int(indent / 2)
    key = substr($0, indent + 1)
    sub(/:.*/, "", key)
    path[depth] = key
    full = path[0]
    for (i = 1; i <= depth; i++) full = full "." path[i]
    print full
  }' "$config_yaml" | sort -u >"$tmp/keys.documented"
comm -23 "$tmp/keys.declared" "$tmp/keys.documented" >"$tmp/keys.missing"
report "config keys of visit_config ($config_schema) missing from $config_yaml" "$tmp/keys.missing"

if [ "$problems" -ne 0 ]; then
  echo "check-docs: FAILED, $problems problem(s): document them (or drop stale rows)" >&2
  exit 1
fi
echo "check-docs: ok ($(wc -l <"$tmp/metrics.registered") metrics in $readme," \
  "$(wc -l <"$tmp/fields.declared") plugin fields in $plugin_readme," \
  "$(wc -l <"$tmp/keys.declared") config keys in $config_yaml)"
