#!/usr/bin/env bash
# Keeps the reference docs complete (run by ctest as "docs: ..."; tests/CMakeLists.txt). Fails, listing
# what is missing, when
#   (a) a metric the daemon registers has no row in the tables of docs/metrics.md (or a row names a
#       metric the daemon no longer registers);
#   (b) a config field of the Kong plugin (lua/kong/plugins/aforo-metering/schema.lua) has no row in
#       lua/README.md's "## Configuration" table (or a row names a field the schema no longer has);
#   (c) a config key of the daemon (visit_config in daemon/src/config/schema.hpp) is not in the reference
#       configuration config/sidecar.yaml;
#   (d) such a key is not in the key table of docs/configuration.md (or the table names a key that
#       visit_config no longer has);
#   (e) a relative link in README.md or docs/**/*.md names a file that does not exist, or an anchor
#       that is neither a heading nor an <a id="..."> of the markdown file it points at.
# Usage: scripts/check-docs.sh [repository root]   (default: the parent of this script's directory)
set -euo pipefail

root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$root"

metrics_doc=docs/metrics.md
config_doc=docs/configuration.md
plugin_readme=lua/README.md
plugin_schema=lua/kong/plugins/aforo-metering/schema.lua
config_schema=daemon/src/config/schema.hpp
config_yaml=config/sidecar.yaml
for f in README.md "$metrics_doc" "$config_doc" "$plugin_readme" "$plugin_schema" "$config_schema" "$config_yaml"; do
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

# table_rows FILE HEADING PATTERN: the first cells (backquotes and bars removed) of the table rows under
# the markdown heading HEADING (up to the next heading) that match PATTERN, sorted.
table_rows() {
  awk -v h="$2" '/^#+ /{ in_section = ($0 == h) } in_section' "$1" |
    { grep -oE "$3" || true; } | tr -d '|` ' | sort -u
}

# compare NAME WHAT WHERE: NAME.declared against NAME.documented in $tmp; reports both differences.
compare() {
  comm -23 "$tmp/$1.declared" "$tmp/$1.documented" >"$tmp/$1.missing"
  comm -13 "$tmp/$1.declared" "$tmp/$1.documented" >"$tmp/$1.stale"
  report "$2 without a row in $3" "$tmp/$1.missing"
  report "rows in $3 naming $2 no longer declared" "$tmp/$1.stale"
}

# (a) Metrics. A metric is registered by passing its full name as a string literal (to counter, gauge,
# gauge_fn, histogram, or a helper that forwards to them), so the registered names are exactly the
# string literals that consist of nothing but a name. Names in comments, the `aforo_sidecar_*` prefix
# and names mentioned inside help texts are never a whole literal.
{ grep -rhoE --include='*.cpp' --include='*.hpp' '"aforo_sidecar_[a-z0-9_]+"' daemon/src || true; } |
  tr -d '"' | sort -u >"$tmp/metrics.declared"
[ -s "$tmp/metrics.declared" ] || { echo "check-docs: no metric registration found in daemon/src" >&2; exit 2; }
# The rows of the tables in docs/metrics.md (all under its "# Metrics" title): | `aforo_sidecar_...` | type | ...
table_rows "$metrics_doc" "# Metrics" '^\| `aforo_sidecar_[a-z0-9_]+` \|' >"$tmp/metrics.documented"
compare metrics "metrics registered in daemon/src" "$metrics_doc"

# (b) Plugin fields: the entries `{ name = ...` of the config record in schema.lua.
awk '/\{ config = \{/{ in_config = 1; next } in_config' "$plugin_schema" |
  { grep -oE '^[[:space:]]*\{ [a-z_]+ = ' || true; } | sed -E 's/^[[:space:]]*\{ //; s/ = $//' | sort -u >"$tmp/fields.declared"
[ -s "$tmp/fields.declared" ] || { echo "check-docs: no config field found in $plugin_schema" >&2; exit 2; }
# The rows of the table in lua/README.md's "## Configuration" section: | `field` | type | ...
table_rows "$plugin_readme" "## Configuration" '^\| `[a-z_]+` \|' >"$tmp/fields.documented"
compare fields "fields of $plugin_schema" "$plugin_readme (## Configuration)"

# (c) Daemon config keys: the first argument of every v.<kind>("key", ...) call in visit_config.
# (One line: a formatter may put the key on the line after "v.choice(".)
sed -n '/void visit_config(/,/^}/p' "$config_schema" | tr '\n' ' ' |
  { grep -oE '\bv\.[a-z_]+\([[:space:]]*"[a-z0-9_.]+"' || true; } | sed -E 's/.*"([a-z0-9_.]+)"$/\1/' |
  sort -u >"$tmp/keys.declared"
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

# (d) The key table of docs/configuration.md: | `section` | `key`, `key`; `sub.`: `key`, ... | ((top) for
# top-level keys). A group after ';' that starts with `sub.`: names keys of that subsection.
awk -F'|' '/^\| (\(top\)|`[a-z_]+`) \|/ {
  section = $2; gsub(/[ `]/, "", section)
  section = (section == "(top)") ? "" : section "."
  n = split($3, groups, ";")
  for (g = 1; g <= n; g++) {
    group = groups[g]; sub_section = ""
    if (match(group, /`[a-z_]+\.`:/)) {
      sub_section = substr(group, RSTART + 1, RLENGTH - 3); group = substr(group, RSTART + RLENGTH)
    }
    while (match(group, /`[a-z0-9_]+`/)) {
      print section sub_section substr(group, RSTART + 1, RLENGTH - 2); group = substr(group, RSTART + RLENGTH)
    }
  }
}' "$config_doc" | sort -u >"$tmp/config_table.documented"
cp "$tmp/keys.declared" "$tmp/config_table.declared"
compare config_table "config keys of visit_config ($config_schema)" "$config_doc (the key table)"

# (e) Links. Every relative link [text](target) in README.md and docs/**/*.md names an existing file
# (or directory), and a #anchor in it names a heading of that markdown file (GitHub's slug: lower
# case, punctuation but '-' and '_' dropped, spaces to '-') or an <a id="..."> in it. Links inside
# code spans and fenced blocks are not links.
# anchors FILE: the anchors a link may name in FILE, one per line.
anchors() {
  awk '
    /^```/ { fence = !fence; next }
    fence { next }
    /^#+ / {
      h = $0; sub(/^#+ +/, "", h); h = tolower(h)
      gsub(/[^a-z0-9 _-]/, "", h); gsub(/ /, "-", h)
      print h
    }
    { line = $0
      while (match(line, /<a id="[^"]+"/)) {
        print substr(line, RSTART + 7, RLENGTH - 8)
        line = substr(line, RSTART + RLENGTH)
      } }' "$1"
}
# links FILE: "target" of every relative markdown link in FILE, one per line.
links() {
  awk '
    /^```/ { fence = !fence; next }
    fence { next }
    { line = $0; gsub(/`[^`]*`/, "", line)
      while (match(line, /\]\([^)[:space:]]+\)/)) {
        print substr(line, RSTART + 2, RLENGTH - 3)
        line = substr(line, RSTART + RLENGTH)
      } }' "$1" | { grep -vE '^(https?|mailto):' || true; }
}
: >"$tmp/links.broken"
: >"$tmp/links.checked"
while IFS= read -r doc; do
  dir=$(dirname "$doc")
  while IFS= read -r target; do
    path=${target%%#*}
    anchor=
    [ "$path" != "$target" ] && anchor=${target#*#}
    file=$doc
    [ -n "$path" ] && file=$dir/$path
    if [ ! -e "$file" ]; then
      echo "$doc: $target (no such file)" >>"$tmp/links.broken"
    elif [ -n "$anchor" ] && [ -f "$file" ] && [[ $file == *.md ]] && ! anchors "$file" | grep -xF -- "$anchor" >/dev/null; then
      echo "$doc: $target (no such anchor)" >>"$tmp/links.broken"
    fi
    echo "$doc: $target" >>"$tmp/links.checked"
  done < <(links "$doc")
done < <(find README.md docs -name '*.md' | sort)
report "relative links in README.md and docs/ that do not resolve" "$tmp/links.broken"

if [ "$problems" -ne 0 ]; then
  echo "check-docs: FAILED, $problems problem(s): document them (or drop stale rows, fix the links)" >&2
  exit 1
fi
echo "check-docs: ok ($(wc -l <"$tmp/metrics.declared") metrics in $metrics_doc," \
  "$(wc -l <"$tmp/fields.declared") plugin fields in $plugin_readme," \
  "$(wc -l <"$tmp/keys.declared") config keys in $config_yaml and $config_doc," \
  "$(wc -l <"$tmp/links.checked") relative links resolved)"
