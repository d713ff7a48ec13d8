#!/usr/bin/env bash
# What protocol-aware metering (lua/README.md "Protocol-aware metering") costs one nginx worker, measured
# in one run, alternating, over several rounds (see bench/README.md):
#   off:     the plugin as of BASE_REV (before protocol metering) vs this tree's plugin, every option off,
#            the same GET: the ratio shows what the options cost a route that leaves them off;
#   graphql: a 2 KB GraphQL POST (operationName + query + variables) to a route with every option off
#            (location /) vs one with graphql_enabled (location /p/, all options on): the added cost of
#            reading the body, decoding it and finding the operation;
#   mcp:     the same with a 2 KB JSON-RPC tools/call body and mcp_enabled;
#   gqljson: the 2 KB GraphQL POST again, to a GraphQL upstream answering application/json: 100 items
#            of data, the last with a field named errors, no top-level errors (about 6.7 KB,
#            .../errors/graphql?items=100: the gqlHasErrors scan's worst case for its size, read from
#            its start to that field); with graphql_enabled the response goes through that scan too
#            (when the handler has its body_filter); compare its on-off difference with graphql's.
#            GQLJSON_QUERY (default items=100) sets the query string: items=100&errors=last adds a
#            top-level errors member after the data, which the scan finds without reading the data.
# Checks are off (AFORO_ENTITLEMENT=false): the comparison is about the request and log phases, not the
# sidecar's /v1/check round trip, which no option changes.
#
#   SIDECAR_BIN=build/daemon/aforo-sidecar FAKE_INGEST_BIN=build/tests/aforo-fake-ingest bench/plugin/protocols.sh
#
# Env: SIDECAR_BIN, FAKE_INGEST_BIN (else a Release build in BUILD_DIR, default build-bench), ROUNDS (3),
#      DURATION (per wrk run, 5s), CONNECTIONS (20), BASE_REV (885b1f9: the commit before protocol-aware metering),
#      GQLJSON_QUERY (above).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-20}"
BASE_REV="${BASE_REV:-885b1f9}"
GQLJSON_QUERY="${GQLJSON_QUERY:-items=100}"

need_tools "scripts/install-deps.sh --bench" wrk nginx curl python3 bc git
bench_binaries fake-ingest
bench_work protocols
cleanup() {
  for mode in base new; do "$work/tree-$mode/tests/lua/nginx/stop.sh" "$work/$mode" >/dev/null 2>&1 || true; done
  stop_pids
  rm -rf "$work"
}

echo "machine: $(nproc) cores; before: $(uptime)"
start_fake_ingest --count-only
renice -n 19 -p "$fake_pid" >/dev/null
sc_port="$(free_port)"
cat >"$work/sidecar.yaml" <<YAML
listen: ["127.0.0.1:$sc_port"]
aforo: { ingest_url: "http://127.0.0.1:$fake_port/v1/ingest/batch" }
entitlements: { source: "file:$root/bench/check/snapshot.yaml" }
buffer: { spool_dir: "$work/spool" }
discovery: { enabled: false, state_dir: "$work/state" }
log: { level: warn }
YAML
AFORO_API_KEY=bench-key-0001 AFORO_TENANT_ID=bench "$SIDECAR_BIN" --config "$work/sidecar.yaml" 2>"$work/sidecar.log" &
sc_pid=$!
pids+=("${sc_pid}")
wait_port "$sc_port"

# The two plugin trees: BASE_REV's (git archive, the repository untouched) and this one.
mkdir -p "$work/tree-base"
git -C "$root" archive "$BASE_REV" lua tests/lua | tar -x -C "$work/tree-base"
# This tree's harness runs a body_filter phase in every location (as Kong's nginx template does) and
# BASE_REV's did not: the same phase goes into the base harness, so that only the plugin differs.
python3 - "$work/tree-base/tests/lua" <<'PY'
import sys
d = sys.argv[1]
p = d + "/nginx/start.sh"
s = open(p).read()
hf = 'header_filter_by_lua_block { require("aforo_shim.runner").header_filter("$inst") }\n'
if "body_filter_by_lua_block" not in s:
    assert hf in s
    s = s.replace(hf, hf + 'body_filter_by_lua_block { require("aforo_shim.runner").body_filter("$inst") }\n')
    open(p, "w").write(s)
p = d + "/shim/aforo_shim/runner.lua"
s = open(p).read()
if "_M.body_filter" not in s:
    assert "function _M.log(name)" in s
    s = s.replace("function _M.log(name)", """function _M.body_filter(name)
  local conf = instance(name).conf
  if noop then
    return conf
  end
  if handler.body_filter then
    return handler:body_filter(conf)
  end
end


function _M.log(name)""", 1)
    open(p, "w").write(s)
PY
ln -s "$root" "$work/tree-new"
declare -A port worker
for mode in base new; do
  port[$mode]="$(free_port)"
  AFORO_PLUGIN=on AFORO_ENTITLEMENT=false AFORO_WORKERS=1 AFORO_LOG_LEVEL=warn \
    "$work/tree-$mode/tests/lua/nginx/start.sh" "$work/$mode" "http://127.0.0.1:$sc_port" "${port[$mode]}" \
    "$(free_port)" >"$work/start-$mode.log" 2>&1 || { cat "$work/start-$mode.log" >&2; exit 1; }
  worker[$mode]="$(pgrep -P "$(cat "$work/$mode/logs/nginx.pid")" | head -1)"
done

# 2 KB bodies as clients send them.
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def pad(doc, key_path, size):
    base = json.dumps(doc, separators=(",", ":"))
    fill = size - len(base)
    d = doc
    for k in key_path[:-1]:
        d = d[k]
    d[key_path[-1]] = "x" * fill
    out = json.dumps(doc, separators=(",", ":"))
    assert len(out) == size, len(out)
    return out
gql = {"operationName": "SearchItems",
       "query": "query SearchItems($q: String!, $first: Int = 20) { search(q: $q, first: $first) "
                "{ edges { node { id name price { amount currency } seller { id name rating } } } "
                "pageInfo { hasNextPage endCursor } } }",
       "variables": {"q": ""}}
mcp = {"jsonrpc": "2.0", "id": 42, "method": "tools/call",
       "params": {"name": "search_docs", "arguments": {"query": "", "limit": 10}}}
open(f"{w}/graphql.json", "w").write(pad(gql, ["variables", "q"], 2048))
open(f"{w}/mcp.json", "w").write(pad(mcp, ["params", "arguments", "query"], 2048))
PY

declare -A samples
run() {  # NAME MODE METHOD TARGET [BODY_FILE]
  local name=$1 mode=$2 method=$3 target=$4 body=${5:-} out result w0 w1 reqs cpu
  w0="$(cpu_s "${worker[$mode]}")"
  out="$(METHOD=$method TARGET=$target BODY_FILE=$body wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$here/post.lua" \
         "http://127.0.0.1:${port[$mode]}" 2>&1)"
  w1="$(cpu_s "${worker[$mode]}")"
  result="$(grep RESULT <<<"$out" || { echo "$out" >&2; exit 1; })"
  reqs="$(field requests "$result")"
  cpu="$(echo "($w1 - $w0) * 1000000 / $reqs" | bc -l)"
  printf "%-14s %-4s %9.0f %8d %8d %10.1f %6d\n" "$name" "$mode" "$(field rps "$result")" "$(field p50_us "$result")" \
    "$(field p99_us "$result")" "$cpu" "$(field errors "$result")"
  samples[$name.rps]+=" $(field rps "$result")"
  samples[$name.cpu]+=" $cpu"
}

# Each case once before measuring (JIT traces, keepalive pools), and a check that each answers 200.
for t in /v1/search/items/42 /p/graphql /p/mcp "/p/errors/graphql?$GQLJSON_QUERY"; do
  s="$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Tenant-Id: cust_bench' -H 'Content-Type: application/json' \
       --data-binary @"$work/graphql.json" "http://127.0.0.1:${port[new]}$t")"
  [ "$s" = 200 ] || { echo "new proxy answered $s for $t" >&2; exit 1; }
done
for mode in base new; do
  METHOD=GET TARGET=/v1/search/items/42 wrk -t1 -c4 -d2s -s "$here/post.lua" "http://127.0.0.1:${port[$mode]}" >/dev/null
done

printf "%-14s %-4s %9s %8s %8s %10s %6s\n" case tree "req/s" "p50 us" "p99 us" "ngx us/req" errors
for r in $(seq 1 "$ROUNDS"); do
  cases=(
    "off.base base GET /v1/search/items/42"
    "off.new new GET /v1/search/items/42"
    "graphql.off new POST /v1/graphql $work/graphql.json"
    "graphql.on new POST /p/graphql $work/graphql.json"
    "mcp.off new POST /v1/mcp $work/mcp.json"
    "mcp.on new POST /p/mcp $work/mcp.json"
    "gqljson.off new POST /v1/errors/graphql?$GQLJSON_QUERY $work/graphql.json"
    "gqljson.on new POST /p/errors/graphql?$GQLJSON_QUERY $work/graphql.json"
  )
  if [ $((r % 2)) = 0 ]; then  # alternate the order of each pair
    cases=("${cases[1]}" "${cases[0]}" "${cases[3]}" "${cases[2]}" "${cases[5]}" "${cases[4]}" "${cases[7]}" "${cases[6]}")
  fi
  for c in "${cases[@]}"; do
    # shellcheck disable=SC2086
    run $c
  done
done
echo "after: $(uptime)"

m() { echo "${samples[$1]}" | median; }
echo
echo "medians over $ROUNDS rounds (DURATION=$DURATION, $CONNECTIONS connections):"
printf "  options off, this tree vs %s: req/s %.0f vs %.0f (ratio %.3f); worker CPU %.1f vs %.1f us/req (%+.1f us)\n" \
  "$BASE_REV" "$(m off.new.rps)" "$(m off.base.rps)" "$(echo "$(m off.new.rps) / $(m off.base.rps)" | bc -l)" \
  "$(m off.new.cpu)" "$(m off.base.cpu)" "$(echo "$(m off.new.cpu) - $(m off.base.cpu)" | bc -l)"
for p in graphql mcp gqljson; do
  printf "  2 KB %s POST, option on vs off: req/s %.0f vs %.0f (ratio %.3f); worker CPU %.1f vs %.1f us/req (%+.1f us)\n" \
    "$p" "$(m $p.on.rps)" "$(m $p.off.rps)" "$(echo "$(m $p.on.rps) / $(m $p.off.rps)" | bc -l)" \
    "$(m $p.on.cpu)" "$(m $p.off.cpu)" "$(echo "$(m $p.on.cpu) - $(m $p.off.cpu)" | bc -l)"
done
