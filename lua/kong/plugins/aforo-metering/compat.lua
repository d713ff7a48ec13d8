-- Aforo v2.2 plugin configurations, accepted as they are: the field names of Aforo's own pure-Lua
-- `aforo-metering` plugin become Kong `shorthand_fields` of this plugin's config record.
--
-- Kong applies a shorthand field while it processes a config (kong.db.schema, process_auto_fields:
-- declarative load, Admin API write): the value is validated against the shorthand's type, removed from
-- the config, and its func's result is written into the real fields (a shorthand without a deprecation
-- wins over a real field given in the same config). So a v2.2 field
--   * that has a counterpart here is mapped to it (flush_count -> batch_size, ...);
--   * that now belongs to the sidecar (api_key, tenant_id, aforo_endpoint, quota and margin checks,
--     rate limits, metric mappings) is dropped, with one WARN naming where it goes now;
--   * that has no counterpart is dropped, with one WARN when its value asks for something (differs
--     from v2.2's default, or from the value that asks for what this plugin does anyway).
-- Values are never logged (api_key, passwords, keys). Names that are real fields of this plugin's
-- schema (exclude_paths, quantity_header, customer_id_source, exclude_status_codes, status_outcomes,
-- product_type, customer_id_jwt_claim, the protocol options, ...) are not shorthands: the config record
-- takes them as they are (V22 lists them too, as `field = true`: V22 is the one list of v2.2's names,
-- which the sidecar's converter, migrate-kong-config, is tested against).
-- ngx is read at each call (not kept from load time), as the specs install a fresh one per spec.
local type = type
local pairs = pairs
local floor = math.floor


local _M = {}

local warned = {} -- field name -> true: one WARN per field per process


local function warn_once(key, ...)
  if warned[key] then
    return
  end
  warned[key] = true
  local log = ngx and ngx.log
  if log then
    log(ngx.WARN, "[aforo-metering] ", ...)
  end
end


local function warn(name, text)
  warn_once(name, "Aforo v2.2 field '", name, "' ", text)
end


local function clamp(v, lo, hi)
  v = floor(v)
  if v < lo then return lo end
  if v > hi then return hi end
  return v
end


local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b
  end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end


local SIDECAR_DECISIONS = "belongs to the sidecar now, which asks Aforo and caches the answers for every "
                          .. "worker: sidecar.yaml `entitlements:` (and `margin_guard:`); ignored here"
local METRIC_MAPPING = "belongs to the sidecar now: the metric of a request comes from the entitlement "
                       .. "snapshot's `features` (match service/route/method/path, metric), else this "
                       .. "plugin's metric_name; ignored here"
local IN_PLUGIN_JWT = "is not supported: verify tokens with Kong's jwt (or openid-connect) plugin on the "
                      .. "route and set customer_id_jwt_claim; this plugin refuses no request for a bad token"
local PRODUCT_ID = "is not needed: the sidecar knows the tenant's products; ignored"
local REDIS = "belongs to the sidecar now: sidecar.yaml cache.redis; ignored here"


-- A v2.2 `*_fail_open: false` makes this plugin fail closed (fallback_on_error block); true asks for
-- nothing (fallback_on_error keeps its value, allow by default). So with both v2.2 fields given, either
-- one false gives block, whatever order Kong applies them in (the converter does the same).
local function fail_open(v)
  if v == false then
    return { fallback_on_error = "block" }
  end
  return nil
end


-- The one list of Aforo v2.2's plugin config field names (docs/design/event-fields.md#aforo-plugin-v22),
-- each with what becomes of it here:
--   field = true: a field of this plugin's config record too, taken as it is (not a shorthand);
--   else { type, elements, default = v2.2's default or the value that asks for nothing different here
--   (nil: every value does), to = our field or function(v) -> { field = value } | nil,
--   go = where it went (the WARN when its value is not `default`) }. `to` without `go`: mapped silently.
-- Where v2.2's documents and configs spell a field two ways, both are here (preflight_quota_cache_ttl
-- in seconds, preflight_quota_cache_ttl_ms in milliseconds).
local V22 = {
  aforo_endpoint = { type = "string", go = "belongs to the sidecar now: sidecar.yaml aforo.ingest_url "
    .. "(and aforo.control_url for Aforo's API); ignored here. This plugin talks to the sidecar (sidecar_url). "
    .. "customer_id_source is set to consumer, as v2.2 never read a request header",
    to = function() return { customer_id_source = "consumer" } end },
  api_key = { type = "string", go = "belongs to the sidecar now: environment variable AFORO_API_KEY "
    .. "(or sidecar.yaml aforo.api_key_file); ignored here, value not logged" },
  tenant_id = { type = "string", go = "belongs to the sidecar now: sidecar.yaml aforo.tenant_id "
    .. "(or environment variable AFORO_TENANT_ID); ignored here" },
  flush_count = { type = "integer", default = 50,
    to = function(v) return { batch_size = clamp(v, 1, 1000) } end },
  flush_interval_ms = { type = "integer", default = 5000,
    to = function(v) return { flush_interval = clamp(v, 10, 60000) } end },
  default_metric = { type = "string", default = "api_calls", to = "metric_name" },
  include_metadata = { type = "boolean", default = true, to = "discovery_enabled" },
  preflight_quota_fail_open = { type = "boolean", default = true, to = fail_open },
  margin_guard_fail_open = { type = "boolean", default = true, to = fail_open },
  metric_name_pattern = { type = "string", default = "{method} {path}", go = METRIC_MAPPING },
  metric_mappings = { type = "array", elements = { type = "map", keys = { type = "string" },
                                                   values = { type = "string" } }, go = METRIC_MAPPING },
  mappings_url = { type = "string", go = METRIC_MAPPING },
  mappings_refresh_seconds = { type = "number", default = 300, go = METRIC_MAPPING },
  mappings_timeout_ms = { type = "number", default = 3000, go = METRIC_MAPPING },
  metric_header = { type = "string", default = "X-Aforo-Metric", go = METRIC_MAPPING },
  quantity_source = { type = "string", default = "1", go = "is not supported: the quantity is this "
    .. "plugin's quantity_header (X-Aforo-Quantity) from the upstream response, else 1; ignored" },
  preflight_quota_enabled = { type = "boolean", default = false, go = SIDECAR_DECISIONS },
  preflight_quota_url = { type = "string", go = SIDECAR_DECISIONS },
  preflight_quota_api_key = { type = "string", go = "belongs to the sidecar now: environment variable "
    .. "AFORO_API_KEY (a key with quotas:read for the quota check); ignored here, value not logged" },
  preflight_quota_timeout_ms = { type = "integer", default = 100, go = SIDECAR_DECISIONS },
  preflight_quota_cache_ttl = { type = "number", default = 1, go = SIDECAR_DECISIONS },
  preflight_quota_cache_ttl_ms = { type = "integer", default = 1000, go = SIDECAR_DECISIONS },
  margin_guard_enabled = { type = "boolean", default = false, go = SIDECAR_DECISIONS },
  margin_guard_url = { type = "string", go = SIDECAR_DECISIONS },
  margin_guard_cache_ttl = { type = "number", default = 30, go = SIDECAR_DECISIONS },
  margin_guard_timeout_ms = { type = "integer", go = SIDECAR_DECISIONS },
  rate_limit_enabled = { type = "boolean", default = false, go = "belongs to the sidecar now: limits "
    .. "come from its entitlements (sidecar.yaml `entitlements:`), counted in its Redis (`cache.redis`); "
    .. "ignored here" },
  rate_limit_headers = { type = "boolean", default = true, go = "is not supported: the rate-limit headers "
    .. "of the sidecar's decisions (X-RateLimit-*, Aforo's quota answer's headers) are always passed on; "
    .. "ignored" },
  rate_limit_redis_host = { type = "string", default = "127.0.0.1", go = REDIS },
  rate_limit_redis_port = { type = "integer", default = 6379, go = REDIS },
  rate_limit_redis_password = { type = "string", go = "belongs to the sidecar now: the password in "
    .. "sidecar.yaml cache.redis; ignored here, value not logged" },
  rate_limit_redis_timeout_ms = { type = "integer", default = 50, go = REDIS },
  jwt_validation_enabled = { type = "boolean", default = false, go = IN_PLUGIN_JWT },
  jwt_issuer = { type = "string", default = "https://auth.aforo.ai", go = IN_PLUGIN_JWT },
  jwt_jwks_uri = { type = "string", go = IN_PLUGIN_JWT },
  jwt_public_key = { type = "string", go = IN_PLUGIN_JWT },
  jwt_secret_is_base64 = { type = "boolean", default = false, go = IN_PLUGIN_JWT },
  jwt_allow_unverified_signature = { type = "boolean", default = false, go = IN_PLUGIN_JWT },
  jwt_redis_host = { type = "string", go = IN_PLUGIN_JWT },
  jwt_redis_port = { type = "integer", go = IN_PLUGIN_JWT },
  grpc_product_id = { type = "string", go = PRODUCT_ID },
  graphql_product_id = { type = "string", go = PRODUCT_ID },
  websocket_product_id = { type = "string", go = PRODUCT_ID },
  -- Fields of this plugin too (schema.lua), with v2.2's meaning.
  product_type = true, quantity_header = true, customer_id_source = true, customer_id_jwt_claim = true,
  customer_id_jwt_exclude_claims = true, exclude_paths = true, exclude_status_codes = true,
  status_outcomes = true, mcp_enabled = true, mcp_product_id = true, grpc_enabled = true,
  grpc_path_prefix = true, graphql_enabled = true, graphql_path_pattern = true, websocket_enabled = true,
}

_M.V22 = V22


-- The shorthand's func: Kong calls it with the validated value (never nil; ngx.null for a JSON null).
local function func_of(name, spec)
  return function(v)
    if v == nil or (ngx and v == ngx.null) then
      return nil
    end
    if spec.go and (spec.default == nil or not same(v, spec.default)) then
      warn(name, spec.go)
    end
    local to = spec.to
    if type(to) == "string" then
      return { [to] = v }
    elseif to then
      return to(v)
    end
    return nil
  end
end


--- The shorthand_fields of the config record: one per v2.2 field that is not a field of `fields`
-- (the config record's own fields) nor marked one in V22, in a stable order.
function _M.shorthand_fields(fields)
  local real = {}
  for _, entry in ipairs(fields) do
    real[next(entry)] = true
  end
  local names = {}
  for name, spec in pairs(V22) do
    if spec ~= true and not real[name] then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  local out = {}
  for i, name in ipairs(names) do
    local spec = V22[name]
    local def = { type = spec.type, func = func_of(name, spec) }
    if spec.elements then
      def.elements = spec.elements
    end
    out[i] = { [name] = def }
  end
  return out
end


-- Aforo's productType values (docs/design/event-fields.md#product-types), all accepted by product_type
-- (a v2.2 config with any of them loads). API and AGENTIC_API are sent as they are; every other type
-- needs fields a plain HTTP event does not carry (ingest would refuse the event), so the events of such
-- a config are sent as API, with one WARN naming the option that meters that kind of traffic.
_M.PRODUCT_TYPES = { "API", "AGENTIC_API", "AI_AGENT", "MCP_SERVER", "GRPC_API", "GRAPHQL_API",
                     "WEBSOCKET_API", "MQTT_BROKER" }
local SENT_AS_API = {
  AI_AGENT = "needs agentId and sessionId, which a plain HTTP event does not carry: its events are sent as "
    .. "API (agentic_enabled reports requests carrying a traceparent as AGENTIC_API)",
  MCP_SERVER = "needs toolName and agentId, which a plain HTTP event does not carry: its events are sent as "
    .. "API (mcp_enabled meters MCP tools/call requests as MCP_SERVER)",
  GRPC_API = "needs grpcService and grpcMethod, which a plain HTTP event does not carry: its events are sent "
    .. "as API (grpc_enabled meters gRPC calls as GRPC_API)",
  GRAPHQL_API = "needs gqlOperationType, which a plain HTTP event does not carry: its events are sent as API "
    .. "(graphql_enabled meters GraphQL requests as GRAPHQL_API)",
  WEBSOCKET_API = "needs wsConnectionId, which a plain HTTP event does not carry: its events are sent as API "
    .. "(websocket_enabled meters WebSocket connections as WEBSOCKET_API)",
  MQTT_BROKER = "is not traffic an HTTP gateway carries: its events are sent as API",
}


--- product_type's custom_validator: every Aforo type is valid; one WARN per type sent as API.
function _M.validate_product_type(v)
  local why = SENT_AS_API[v]
  if why then
    warn_once("product_type " .. v, "product_type '", v, "' ", why)
  end
  return true
end


--- The productType this plugin's plain events carry for a config's product_type.
function _M.sent_product_type(v)
  if v == nil or SENT_AS_API[v] then
    return "API"
  end
  return v
end


--- Adds the shorthand fields to a plugin schema's config record; returns the schema.
function _M.with_shorthands(schema)
  for _, entry in ipairs(schema.fields) do
    local config = entry.config
    if config then
      config.shorthand_fields = _M.shorthand_fields(config.fields)
    end
  end
  return schema
end


--- Forgets which WARNs were logged (specs).
function _M.reset_warnings()
  warned = {}
end


return _M
