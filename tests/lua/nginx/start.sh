#!/usr/bin/env bash
# Renders the nginx harness for the aforo-metering plugin into PREFIX and starts it (as root, loopback only).
#
# Two nginx instances: the proxy ("Kong": the plugin through the PDK shim; PREFIX/logs/nginx.pid,
# PREFIX/logs/error.log) and the backends (the upstream service and the optional TEST STUB sidecar;
# PREFIX/backends/logs/...), separate so that reloading the proxy leaves them alone.
# Stop both with tests/lua/nginx/stop.sh PREFIX.
#
# Usage:
#   tests/lua/nginx/start.sh PREFIX SIDECAR_URL NGINX_PORT UPSTREAM_PORT [FAKE_SIDECAR_PORT]
#
#   PREFIX             a fresh or reused directory; conf/, logs/, tmp/ are created in it
#   SIDECAR_URL        http://127.0.0.1:PORT or unix:/path (the real sidecar, or the fake one)
#   NGINX_PORT         the proxy ("Kong") listens on 127.0.0.1:NGINX_PORT
#   UPSTREAM_PORT      the upstream service listens on 127.0.0.1:UPSTREAM_PORT
#   FAKE_SIDECAR_PORT  optional: also serve the TEST STUB sidecar (fake_sidecar.lua) on this port and
#                      on unix:PREFIX/backends/fake_sidecar.sock; then pass SIDECAR_URL=
#                      http://127.0.0.1:FAKE_SIDECAR_PORT (or unix:PREFIX/backends/fake_sidecar.sock)
#
# Environment (all optional):
#   AFORO_DAEMON=on            on: the proxy daemonizes and the script returns once NGINX_PORT accepts
#                              connections. off: the proxy stays in the foreground (exec; the caller owns
#                              the pid). Either way: reload = kill -HUP $(cat PREFIX/logs/nginx.pid) or
#                              nginx -p PREFIX -c PREFIX/conf/nginx.conf -s reload; graceful stop = SIGQUIT.
#                              The backends always daemonize (stop.sh stops them).
#   AFORO_WORKERS=1            worker_processes
#   AFORO_PLUGIN=on            off: the same nginx without the plugin and without Lua (the benchmark's
#                              baseline); shim: every phase runs through the PDK shim as Kong would, but
#                              the plugin is never called (Kong's own per-request work, roughly)
#   AFORO_LOG_LEVEL=notice     error_log level (notice shows the "connected to sidecar" line)
#   AFORO_TIMEOUT=50 AFORO_FLUSH_INTERVAL=250 AFORO_BATCH_SIZE=20 AFORO_BUFFER_MAX_SIZE=10000
#   AFORO_OVERFLOW_MAX_BYTES=104857600
#   AFORO_ENTITLEMENT=true AFORO_METERING=true
#                              plugin config of every instance (schema.lua field names)
#   AFORO_KONG_VERSION=3.9     the Kong the shim plays (tests/lua/shim/README.md): 3.9 sets $kong_request_id
#                              (Kong >= 3.5) and calls the handler's configure (Kong >= 3.4 with it);
#                              3.4 has no $kong_request_id
#   AFORO_TIMER_NG=on          on: ngx.timer.at is replaced by the shim's emulation of Kong's
#                              lua-resty-timer-ng (its worker-exit semantics; _G.native_timer_at kept) as
#                              every Kong 3.x does; off: nginx's own ngx.timer.at
#   AFORO_JIT_LOG=PATH         diagnostics: LuaJIT's jit.v trace log of each worker to PATH.PID
#   AFORO_JIT_PROFILE=MODE     diagnostics: LuaJIT's jit.p profiler in MODE (e.g. Fl, or vl for VM
#                              states) in each worker; written to PREFIX/logs/jit-profile.PID when
#                              the worker exits (stop or reload)
#
# What the proxy serves (each location is one plugin instance; configs in PREFIX/conf/aforo_confs.lua):
#   /                 sidecar_url=SIDECAR_URL, tenant_header X-Tenant-Id, discovery on, fallback allow,
#                     missing_tenant allow, exclude_paths {/health}; service "search", route "search-v1"
#   /fail-closed/...  same sidecar, fallback_on_error=block, missing_tenant=block
#   /down-allow/...   sidecar_url=http://127.0.0.1:1 (nothing listens), fallback allow
#   /down-block/...   sidecar_url=http://127.0.0.1:1, fallback block
#   /compat/...       an Aforo v2.2 plugin config (api_key, tenant_id, flush_count, customer_id_jwt_claim
#                     tenant_id, status_outcomes 404 VALIDATION_FAILED, product_type AGENTIC_API,
#                     exclude_status_codes 401 403 418 429, ...) plus sidecar_url=SIDECAR_URL
#   /p/...            every protocol option on (gRPC, GraphQL, WebSocket, MCP with mcp_product_id
#                     mcp-prod-1, agentic); service "shop", route "protocols"; WebSocket upgrades
#                     are proxied (/p/ws/... upgrades at the upstream)
#   unix:PREFIX/grpc.sock  h2c (HTTP/2 with prior knowledge), the same "protocols" instance, grpc_pass
#                     to the upstream's gRPC service (unix:PREFIX/backends/grpc.sock): every call
#                     answers one empty message and the trailer grpc-status 0, or 5 for a method
#                     named NotFound
# Upstream: 200 "upstream ok"; ?cost=N / ?qty=N set X-Aforo-Cost / X-Aforo-Quantity on the response;
#   .../status/NNN answers NNN; .../errors/graphql answers GraphQL JSON, {"errors":[...]} for a query
#   mentioning Fail, else ?items=N items of data, the last with a field named errors (&errors=last: then
#   a top-level errors member; one result per entry of a batch); .../slow/... answers after ?s=N seconds (default 1.5); X-Upstream-Saw-Plan / X-Upstream-Saw-Margin echo upstream headers.
# TEST-ONLY: request header X-Test-Consumer: "username" or "username;custom_id" plays an
#   authenticated Kong consumer; X-Test-JWT: <compact JWT> plays a token Kong's jwt plugin verified.
#
# Example (fake sidecar):
#   tests/lua/nginx/start.sh /tmp/aforo-h http://127.0.0.1:18750 18000 18001 18750
#   curl -i -H 'X-Tenant-Id: cust_acme' http://127.0.0.1:18000/v1/search
#   curl -s http://127.0.0.1:18750/_fake/events
set -euo pipefail

if [ $# -lt 4 ]; then
  sed -n '2,40p' "$0" >&2
  exit 2
fi

PREFIX=$1
SIDECAR_URL=$2
NGINX_PORT=$3
UPSTREAM_PORT=$4
FAKE_SIDECAR_PORT=${5:-}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}

DAEMON=${AFORO_DAEMON:-on}
WORKERS=${AFORO_WORKERS:-1}
PLUGIN=${AFORO_PLUGIN:-on}
LOG_LEVEL=${AFORO_LOG_LEVEL:-notice}
TIMEOUT=${AFORO_TIMEOUT:-50}
FLUSH_INTERVAL=${AFORO_FLUSH_INTERVAL:-250}
BATCH_SIZE=${AFORO_BATCH_SIZE:-20}
BUFFER_MAX_SIZE=${AFORO_BUFFER_MAX_SIZE:-10000}
OVERFLOW_MAX_BYTES=${AFORO_OVERFLOW_MAX_BYTES:-104857600}
ENTITLEMENT=${AFORO_ENTITLEMENT:-true}
METERING=${AFORO_METERING:-true}
KONG_VERSION=${AFORO_KONG_VERSION:-3.9}
TIMER_NG=${AFORO_TIMER_NG:-on}
case "$KONG_VERSION" in
  3.4) KONG_REQUEST_ID="" ;;
  3.9) KONG_REQUEST_ID='        set $kong_request_id $request_id;' ;; # as Kong >= 3.5 does
  *) echo "AFORO_KONG_VERSION: 3.4 or 3.9" >&2; exit 2 ;;
esac
timer_ng=false
[ "$TIMER_NG" = on ] && timer_ng=true

mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
mkdir -p "$PREFIX/conf" "$PREFIX/logs" "$PREFIX/tmp" \
         "$PREFIX/backends/conf" "$PREFIX/backends/logs" "$PREFIX/backends/tmp"

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1; see $2" >&2
  return 1
}

# A unix listen socket is there (nginx's master binds and listens on every socket before it forks, so
# this holds once the TCP port accepts; checked anyway: the gRPC calls go to the sockets).
wait_socket() {
  for _ in $(seq 1 100); do
    if [ -S "$1" ]; then
      return 0
    fi
    sleep 0.05
  done
  echo "nothing listens on $1; see $2" >&2
  return 1
}

# Plugin instances (validated against schema.lua by the runner at startup).
lua_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
common="timeout = $TIMEOUT, flush_interval = $FLUSH_INTERVAL, batch_size = $BATCH_SIZE,
      buffer_max_size = $BUFFER_MAX_SIZE, overflow_max_bytes = $OVERFLOW_MAX_BYTES, entitlement_enabled = $ENTITLEMENT, metering_enabled = $METERING"
cat > "$PREFIX/conf/aforo_confs.lua" <<EOF
-- Generated by tests/lua/nginx/start.sh: aforo-metering plugin instances of the harness.
return {
  default = { service = "search", route = "search-v1", config = {
      sidecar_url = $(lua_str "$SIDECAR_URL"), tenant_header = "X-Tenant-Id", discovery_enabled = true,
      exclude_paths = { "/health" }, $common } },
  fail_closed = { service = "search", route = "fail-closed", config = {
      sidecar_url = $(lua_str "$SIDECAR_URL"), fallback_on_error = "block", missing_tenant = "block",
      $common } },
  down_allow = { service = "search", route = "down-allow", config = {
      sidecar_url = "http://127.0.0.1:1", fallback_on_error = "allow", $common } },
  down_block = { service = "search", route = "down-block", config = {
      sidecar_url = "http://127.0.0.1:1", fallback_on_error = "block", $common } },
  -- An Aforo v2.2 plugin config as its users have it (compat.lua's shorthand fields), plus sidecar_url.
  compat = { service = "search", route = "compat", config = {
      sidecar_url = $(lua_str "$SIDECAR_URL"),
      aforo_endpoint = "https://ingest.aforo.ai/api/v1/usage/batch", api_key = "sk_live_HARNESS_SECRET_v22",
      tenant_id = "tenant_harness", flush_count = $BATCH_SIZE, flush_interval_ms = $FLUSH_INTERVAL,
      include_metadata = true, buffer_max_size = $BUFFER_MAX_SIZE, overflow_max_bytes = $OVERFLOW_MAX_BYTES,
      default_metric = "api_calls", customer_id_jwt_claim = "tenant_id",
      customer_id_jwt_exclude_claims = { "impersonated_by" }, exclude_paths = { "/compat/health" },
      exclude_status_codes = { 401, 403, 418, 429 }, status_outcomes = { ["404"] = "VALIDATION_FAILED" },
      product_type = "AGENTIC_API", preflight_quota_enabled = true, preflight_quota_fail_open = true,
      margin_guard_enabled = true, margin_guard_url = "http://pricing:8083", rate_limit_enabled = false,
      rate_limit_redis_password = "HARNESS_SECRET_pw", jwt_validation_enabled = false } },
  protocols = { service = "shop", route = "protocols", config = {
      sidecar_url = $(lua_str "$SIDECAR_URL"), tenant_header = "X-Tenant-Id", grpc_enabled = true,
      graphql_enabled = true, websocket_enabled = true, mcp_enabled = true, mcp_product_id = "mcp-prod-1",
      agentic_enabled = true, $common } },
}
EOF

if [ "$PLUGIN" = on ] || [ "$PLUGIN" = shim ]; then
  noop=false
  [ "$PLUGIN" = shim ] && noop=true
  jit_diag=""
  if [ -n "${AFORO_JIT_LOG:-}${AFORO_JIT_PROFILE:-}" ]; then
    jit_dir=$(ls -d /usr/share/luajit-2.1*/ 2>/dev/null | head -1)
    [ -n "$jit_dir" ] || { echo "AFORO_JIT_*: no LuaJIT jit.* modules under /usr/share/luajit-2.1*" >&2; exit 2; }
    jit_diag="package.path = package.path .. \";${jit_dir}?.lua\""
    [ -n "${AFORO_JIT_LOG:-}" ] && jit_diag+=" require(\"jit.v\").on(\"$AFORO_JIT_LOG.\" .. ngx.worker.pid())"
    [ -n "${AFORO_JIT_PROFILE:-}" ] && jit_diag+=" require(\"jit.p\").start(\"$AFORO_JIT_PROFILE\",
      \"$PREFIX/logs/jit-profile.\" .. ngx.worker.pid())
    ngx.timer.at(86400, function() require(\"jit.p\").stop() end)"
  fi
  cat > "$PREFIX/conf/plugin_init.conf" <<EOF
init_by_lua_block { require("aforo_shim.runner").setup(require("aforo_confs"), { noop = $noop,
  kong_version = "$KONG_VERSION", timer_ng = $timer_ng }) }
init_worker_by_lua_block { require("aforo_shim.runner").init_worker() $jit_diag }
EOF
  for inst in default fail_closed down_allow down_block compat protocols; do
    cat > "$PREFIX/conf/phases_$inst.conf" <<EOF
access_by_lua_block { require("aforo_shim.runner").access("$inst") }
header_filter_by_lua_block { require("aforo_shim.runner").header_filter("$inst") }
body_filter_by_lua_block { require("aforo_shim.runner").body_filter("$inst") }
log_by_lua_block { require("aforo_shim.runner").log("$inst") }
EOF
  done
else
  : > "$PREFIX/conf/plugin_init.conf"
  for inst in default fail_closed down_allow down_block compat protocols; do
    : > "$PREFIX/conf/phases_$inst.conf"
  done
fi

if [ -n "$FAKE_SIDECAR_PORT" ]; then
  cat > "$PREFIX/backends/conf/fake_sidecar_server.conf" <<EOF
server {
    listen 127.0.0.1:$FAKE_SIDECAR_PORT;
    listen unix:$PREFIX/backends/fake_sidecar.sock;
    client_max_body_size 64m;
    client_body_buffer_size 4m;
    keepalive_requests 1000000;
    location / { content_by_lua_file $HERE/fake_sidecar.lua; }
}
EOF
else
  : > "$PREFIX/backends/conf/fake_sidecar_server.conf"
fi

# reuseport only with several workers (it spreads connections over them). It also lets a second nginx
# bind the same port: tests that start harnesses in parallel must get "Address already in use" from a
# port clash, not share a port and see each other's requests.
REUSEPORT=""
[ "$WORKERS" -gt 1 ] && REUSEPORT=" reuseport"

render() {
  sed -e "s#@REUSEPORT@#$REUSEPORT#g" -e "s#@PREFIX@#$PREFIX#g" -e "s#@KONG_REQUEST_ID@#$KONG_REQUEST_ID#g" -e "s#@REPO@#$REPO#g" -e "s#@WORKERS@#$WORKERS#g" \
      -e "s#@DAEMON@#$DAEMON#g" -e "s#@LOG_LEVEL@#$LOG_LEVEL#g" \
      -e "s#@NGINX_PORT@#$NGINX_PORT#g" -e "s#@UPSTREAM_PORT@#$UPSTREAM_PORT#g" "$1" > "$2"
}
render "$HERE/backends.conf.in" "$PREFIX/backends/conf/nginx.conf"
render "$HERE/nginx.conf.in" "$PREFIX/conf/nginx.conf"

# Backends: restart them if a previous run left them up.
if [ -s "$PREFIX/backends/logs/nginx.pid" ] && [ "$(cat "/proc/$(cat "$PREFIX/backends/logs/nginx.pid")/comm" 2>/dev/null)" = nginx ]; then
  "$NGINX" -p "$PREFIX/backends" -c "$PREFIX/backends/conf/nginx.conf" -s stop
  sleep 0.2
fi
"$NGINX" -t -q -p "$PREFIX/backends" -c "$PREFIX/backends/conf/nginx.conf"
"$NGINX" -p "$PREFIX/backends" -c "$PREFIX/backends/conf/nginx.conf"
wait_port "$UPSTREAM_PORT" "$PREFIX/backends/logs/error.log"
wait_socket "$PREFIX/backends/grpc.sock" "$PREFIX/backends/logs/error.log"
if [ -n "$FAKE_SIDECAR_PORT" ]; then
  wait_port "$FAKE_SIDECAR_PORT" "$PREFIX/backends/logs/error.log"
fi

"$NGINX" -t -q -p "$PREFIX" -c "$PREFIX/conf/nginx.conf"
if [ "$DAEMON" = off ]; then
  exec "$NGINX" -p "$PREFIX" -c "$PREFIX/conf/nginx.conf"
fi
"$NGINX" -p "$PREFIX" -c "$PREFIX/conf/nginx.conf"
wait_port "$NGINX_PORT" "$PREFIX/logs/error.log"
wait_socket "$PREFIX/grpc.sock" "$PREFIX/logs/error.log"
