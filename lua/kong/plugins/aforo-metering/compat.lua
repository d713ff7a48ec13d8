-- Aforo v2.2 plugin configurations, accepted as they are (issue 20): the field names of Aforo's own
-- pure-Lua `aforo-metering` plugin become Kong `shorthand_fields` of this plugin's config record.
--
-- Kong applies a shorthand field while it processes a config (kong.db.schema, process_auto_fields:
-- declarative load, Admin API write): the value is validated against the shorthand's type, removed from
-- the config, and its func's result is written into the real fields (a shorthand without a deprecation
-- wins over a real field given in the same config). So a v2.2 field
--   * that has a counterpart here is mapped to it (flush_count -> batch_size, ...);
--   * that now belongs to the sidecar (api_key, tenant_id, aforo_endpoint, quota and margin checks,
--     rate limits, metric mappings) is dropped, with one WARN naming where it goes now;
--   * that has no counterpart is dropped, with one WARN when its value asks for something (differs
--     from v2.2's default).
-- Values are never logged (api_key, passwords, keys). Names that are real fields of this plugin's
-- schema (exclude_paths, quantity_header, customer_id_source, exclude_status_codes, status_outcomes,
-- product_type, customer_id_jwt_claim, ...) are not shorthands: the config record takes them as they are.
-- ngx is read at each call (not kept from load time), as the specs install a fresh one per spec.
local type = type
local pairs = pairs
local floor = math.floor


local _M = {}

local warned = {} -- field name -> true: one WARN per field per process


local function warn(name, text)
  if warned[name] then
    return
  end
  warned[name] = true
  local log = ngx and ngx.log
  if log then
    log(ngx.WARN, "[aforo-metering] Aforo v2.2 field '", name, "' ", text)
  end
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
local PROTOCOL = "is not supported by this version of the plugin; ignored"
local PRODUCT_ID = "is not needed: the sidecar knows the tenant's products; ignored"


-- v2.2 field -> { type, v2.2 default (nil: none), to = our field or function(v) -> { field = value },
-- go = where it went (for a WARN) }. `to` without `go`: mapped silently.
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
  preflight_quota_fail_open = { type = "boolean", default = true,
    to = function(v) return { fallback_on_error = v and "allow" or "block" } end },
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
  preflight_quota_cache_ttl_ms = { type = "integer", default = 1000, go = SIDECAR_DECISIONS },
  margin_guard_enabled = { type = "boolean", default = false, go = SIDECAR_DECISIONS },
  margin_guard_url = { type = "string", go = SIDECAR_DECISIONS },
  margin_guard_cache_ttl = { type = "integer", default = 30, go = SIDECAR_DECISIONS },
  rate_limit_enabled = { type = "boolean", default = false, go = "belongs to the sidecar now: limits "
    .. "come from its entitlements (sidecar.yaml `entitlements:`), counted in its Redis (`cache.redis`); "
    .. "ignored here" },
  rate_limit_redis_host = { type = "string", default = "127.0.0.1", go = "belongs to the sidecar now: "
    .. "sidecar.yaml cache.redis; ignored here" },
  rate_limit_redis_port = { type = "integer", default = 6379, go = "belongs to the sidecar now: "
    .. "sidecar.yaml cache.redis; ignored here" },
  rate_limit_redis_password = { type = "string", go = "belongs to the sidecar now: the password in "
    .. "sidecar.yaml cache.redis; ignored here, value not logged" },
  rate_limit_redis_timeout_ms = { type = "integer", default = 50, go = "belongs to the sidecar now: "
    .. "sidecar.yaml cache.redis; ignored here" },
  jwt_validation_enabled = { type = "boolean", default = false, go = IN_PLUGIN_JWT },
  jwt_issuer = { type = "string", default = "https://auth.aforo.ai", go = IN_PLUGIN_JWT },
  jwt_jwks_uri = { type = "string", go = IN_PLUGIN_JWT },
  jwt_public_key = { type = "string", go = IN_PLUGIN_JWT },
  jwt_allow_unverified_signature = { type = "boolean", default = false, go = IN_PLUGIN_JWT },
  jwt_redis_host = { type = "string", go = IN_PLUGIN_JWT },
  jwt_redis_port = { type = "integer", go = IN_PLUGIN_JWT },
  mcp_product_id = { type = "string", go = PRODUCT_ID },
  grpc_product_id = { type = "string", go = PRODUCT_ID },
  graphql_product_id = { type = "string", go = PRODUCT_ID },
  websocket_product_id = { type = "string", go = PRODUCT_ID },
  -- Protocol detection: real fields once this plugin has them (then not shorthands, see below).
  mcp_enabled = { type = "boolean", default = false, go = PROTOCOL },
  grpc_enabled = { type = "boolean", default = false, go = PROTOCOL },
  grpc_path_prefix = { type = "string", go = PROTOCOL },
  graphql_enabled = { type = "boolean", default = false, go = PROTOCOL },
  graphql_path_pattern = { type = "string", default = "graphql", go = PROTOCOL },
  websocket_enabled = { type = "boolean", default = false, go = PROTOCOL },
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
-- (the config record's own fields), in a stable order.
function _M.shorthand_fields(fields)
  local real = {}
  for _, entry in ipairs(fields) do
    real[next(entry)] = true
  end
  local names = {}
  for name in pairs(V22) do
    if not real[name] then
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
