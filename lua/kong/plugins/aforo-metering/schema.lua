-- Configuration schema of the aforo-metering Kong plugin (docs/design/plugin-contract.md#schema).
local typedefs = require "kong.db.schema.typedefs"
local compat = require "kong.plugins.aforo-metering.compat"


local PLUGIN_NAME = "aforo-metering"


-- sidecar_url is "http://host:port" (loopback TCP) or "unix:/absolute/path";
-- the plugin speaks plain HTTP/1.1 only, so https is refused here rather
-- than failing at request time.
local function validate_sidecar_url(value)
  if value:match("^unix:/.+") then
    return true
  end
  local host, port = value:match("^http://([^/:]+):(%d+)/?$")
  if not host then
    host = value:match("^http://([^/:]+)/?$")
  end
  if not host then
    return nil, "must be http://host[:port] or unix:/path/to/socket"
  end
  port = tonumber(port or 80)
  if port < 1 or port > 65535 then
    return nil, "port must be between 1 and 65535"
  end
  return true
end


-- sidecar_token: the sidecar's server.auth_token_file content, sent as
-- "Authorization: Bearer <token>": an RFC 6750 b64token of at least 16
-- characters (no space or control character can reach the request head), or a
-- Kong Vault reference ({vault://...}) that Kong resolves before the plugin runs.
local MIN_TOKEN = 16

local function validate_token(value)
  if value:match("^{vault://.+}$") then
    return true
  end
  if #value < MIN_TOKEN then
    return nil, "must be at least " .. MIN_TOKEN .. " characters"
  end
  if not value:match("^[%w%-%._~%+/]+=*$") then
    return nil, "may hold only letters, digits and -._~+/ (and = at the end)"
  end
  return true
end


-- Aforo's executionStatus values (docs/design/event-fields.md#execution-status).
local EXECUTION_STATUSES = { "SUCCESS", "PARTIAL", "TIMEOUT", "ERROR", "VALIDATION_FAILED", "FAILED", "FAILURE",
                             "CANCELLED", "PENDING", "BLOCKED", "HITL_REQUIRED" }


local function validate_path(value)
  if value:sub(1, 1) ~= "/" then
    return nil, "must start with '/'"
  end
  return true
end


-- graphql_path_pattern is a PCRE regular expression (as Kong's regex routes), compiled once here
-- where ngx.re is available, so a typo is a config error and not a per-request failure.
local function validate_regex(value)
  local re = ngx and ngx.re
  if re and re.find then
    local _, err = re.find("", value, "jo")
    if err then
      return nil, "invalid regular expression: " .. err
    end
  end
  return true
end


local function validate_config(config)
  if config.batch_size and config.buffer_max_size
     and config.batch_size > config.buffer_max_size then
    return nil, "batch_size must not exceed buffer_max_size"
  end
  if config.entitlement_enabled == false and config.metering_enabled == false then
    return nil, "at least one of entitlement_enabled and metering_enabled must be true"
  end
  return true
end


local function header(default, description)
  return typedefs.header_name {
    required = true,
    default = default,
    description = description,
  }
end


local schema = {
  name = PLUGIN_NAME,
  fields = {
    { consumer = typedefs.no_consumer },
    { protocols = typedefs.protocols_http },
    { config = {
        type = "record",
        fields = {
          { sidecar_url = {
              type = "string", required = true, default = "http://127.0.0.1:8750",
              custom_validator = validate_sidecar_url,
              description = "Where the aforo-sidecar listens: http://host:port (loopback) or unix:/path/to/socket.",
          } },
          { sidecar_token = {
              type = "string", required = false, referenceable = true, encrypted = true,
              custom_validator = validate_token,
              description = "The sidecar's local API token (its server.auth_token_file), sent as Authorization: Bearer on every request to the sidecar; unset (default) sends none. Use a Vault reference ({vault://...}) to keep it out of Kong's database.",
          } },
          { tenant_header = header("X-Tenant-Id",
              "Request header carrying the customer id when no authenticated consumer is known.") },
          { discovery_enabled = {
              type = "boolean", required = true, default = true,
              description = "Send service and route names with every event so the sidecar can index the API catalog.",
          } },
          { fallback_on_error = {
              type = "string", required = true, default = "allow", one_of = { "allow", "block" },
              description = "What to do when the sidecar gives no decision (refused, timeout, 5xx, bad JSON): allow (fail-open) or block with 503 (fail-closed).",
          } },
          { customer_id_source = {
              type = "string", required = true, default = "consumer_then_header",
              one_of = { "consumer_then_header", "header", "consumer" },
              description = "Where the customer id comes from; with consumer_then_header an authenticated consumer wins over the header.",
          } },
          { customer_id_jwt_claim = {
              type = "string", required = false, len_min = 1, len_max = 255,
              description = "Claim of the JWT that Kong's jwt (or openid-connect) plugin verified (kong.ctx.shared.authenticated_jwt_token) to use as the customer id, before the consumer and the header; unset (default): no JWT source. The Authorization header is never read by this plugin.",
          } },
          { customer_id_jwt_exclude_claims = {
              type = "array", required = true, default = {},
              elements = { type = "string", len_min = 1, len_max = 255 },
              description = "With customer_id_jwt_claim: a verified token carrying any of these claims (present, not false, not empty) is neither checked nor metered, e.g. staff impersonation tokens.",
          } },
          { missing_tenant = {
              type = "string", required = true, default = "allow", one_of = { "allow", "block" },
              description = "Requests without a customer id: allow (proxied, not metered, ERROR logged) or block with 401.",
          } },
          { entitlement_enabled = {
              type = "boolean", required = true, default = true,
              description = "Ask the sidecar for an allow/throttle/block decision in the access phase.",
          } },
          { metering_enabled = {
              type = "boolean", required = true, default = true,
              description = "Send a usage event for every metered request in the log phase.",
          } },
          { exclude_status_codes = {
              type = "array", required = true, default = { 401, 403, 429 },
              elements = { type = "integer", between = { 100, 599 } },
              description = "Response statuses that are not metered (Aforo's default: 401, 403, 429, so refused requests, this plugin's own denials included, are not billed); [] meters every status.",
          } },
          { status_outcomes = {
              type = "map", required = false,
              keys = { type = "string", match = "^[1-5]%d%d$" },
              values = { type = "string", one_of = EXECUTION_STATUSES },
              description = "executionStatus of the events of a response status, over the built-in mapping (2xx/3xx SUCCESS, 408/504 TIMEOUT, 499 CANCELLED, 400/422 VALIDATION_FAILED, 401/403/429 BLOCKED, else ERROR), e.g. {\"404\": \"VALIDATION_FAILED\"}.",
          } },
          { product_type = {
              type = "string", required = true, default = "API", one_of = compat.PRODUCT_TYPES,
              custom_validator = compat.validate_product_type,
              description = "productType of the usage events: API (default) or AGENTIC_API. Aforo's other product types (AI_AGENT, MCP_SERVER, GRPC_API, GRAPHQL_API, WEBSOCKET_API, MQTT_BROKER) are accepted, and their events sent as API with one WARN: they need fields a plain HTTP event does not carry (the protocol options meter those kinds of traffic with them).",
          } },
          { feature = {
              type = "string", required = false, len_min = 1, len_max = 255,
              description = "Feature name override sent with /v1/check; unset (default) lets the sidecar map service, route, method and path to a feature.",
          } },
          { metric_name = {
              type = "string", required = true, default = "api_calls", len_min = 1, len_max = 255,
              description = "metricName of the usage events.",
          } },
          { quantity_header = header("X-Aforo-Quantity",
              "Upstream response header with the event quantity (a positive number); 1 when absent. "
              .. "Removed from the response the client receives.") },
          { cost_header = header("X-Aforo-Cost",
              "Upstream response header with the request's cost, sent as metadata.cost for the margin guard. "
              .. "Removed from the response the client receives (internal cost figures).") },
          { timeout = {
              type = "integer", required = true, default = 50, between = { 1, 60000 },
              description = "Connect, send and read timeout of /v1/check, in milliseconds.",
          } },
          { keepalive_timeout = {
              type = "integer", required = true, default = 60000, between = { 0, 3600000 },
              description = "Idle time of pooled sidecar connections, in milliseconds (0: no limit).",
          } },
          { keepalive_pool_size = {
              type = "integer", required = true, default = 64, between = { 1, 10000 },
              description = "Pooled sidecar connections per worker.",
          } },
          { flush_interval = {
              type = "integer", required = true, default = 250, between = { 10, 60000 },
              description = "Longest time an event waits in the worker buffer before a flush, in milliseconds.",
          } },
          { batch_size = {
              type = "integer", required = true, default = 20, between = { 1, 1000 },
              description = "Queued events that start a flush at once (fewer wait for flush_interval). A POST carries everything queued, up to the sidecar's max_batch_events, so under load POSTs grow past it; small values keep each flush, and the sidecar's work on it, short.",
          } },
          { buffer_max_size = {
              type = "integer", required = true, default = 10000, between = { 1, 1000000 },
              description = "Events held per worker while the sidecar is unreachable; past it new events are dropped and counted.",
          } },
          { overflow_max_bytes = {
              type = "integer", required = true, default = 104857600, between = { 0, 1099511627776 },
              description = "Bytes of events a worker may append to its overflow file under Kong's prefix while the sidecar cannot take them and the buffer is past half of buffer_max_size; replayed first, in order, once it answers. Past it events are dropped, counted and logged. 0: no overflow file.",
          } },
          { exclude_paths = {
              type = "array", required = true, default = {},
              elements = { type = "string", custom_validator = validate_path },
              description = "Paths neither checked nor metered; an entry matches itself and everything below it (/health matches /health and /health/live, not /healthz).",
          } },
          -- Protocol-aware metering (docs/design/plugin-contract.md#protocols, protocol.lua); every option is off by
          -- default.
          { grpc_enabled = {
              type = "boolean", required = true, default = false,
              description = "Meter gRPC calls (Content-Type application/grpc*, path <grpc_path_prefix>package.Service/Method) as productType GRPC_API with grpcService, grpcMethod and grpcStatusCode (the grpc-status trailer or header).",
          } },
          { grpc_path_prefix = {
              type = "string", required = true, default = "/", custom_validator = validate_path,
              description = "Path prefix before /package.Service/Method in gRPC request paths.",
          } },
          { graphql_enabled = {
              type = "boolean", required = true, default = false,
              description = "Meter GraphQL requests (paths matching graphql_path_pattern) as productType GRAPHQL_API with gqlOperationType and gqlOperationName, read from operationName or the query's first operation (body read up to 64 KiB).",
          } },
          { graphql_path_pattern = {
              type = "string", required = true, default = "/(?:graphql|gql)/?$", len_min = 1, len_max = 255,
              custom_validator = validate_regex,
              description = "PCRE regular expression a request path must match to be read as GraphQL; by default paths ending in /graphql or /gql.",
          } },
          { websocket_enabled = {
              type = "boolean", required = true, default = false,
              description = "Meter each upgraded WebSocket connection once, when it ends, as productType WEBSOCKET_API with wsConnectionId (its Sec-WebSocket-Key) and executionDurationMs.",
          } },
          { mcp_enabled = {
              type = "boolean", required = true, default = false,
              description = "Meter MCP JSON-RPC tools/call requests (single or batched; body read up to 64 KiB) as productType MCP_SERVER, one event per call with toolName, agentId and sessionId (Mcp-Session-Id).",
          } },
          { mcp_product_id = {
              type = "string", required = false, len_min = 1, len_max = 255,
              description = "Aforo product of the MCP server, sent as metadata.mcp_product_id with each tools/call event; unset (default) sends none.",
          } },
          { agentic_enabled = {
              type = "boolean", required = true, default = false,
              description = "Report requests carrying a W3C traceparent (or x-trace-id) header as productType AGENTIC_API with traceId, spanId and the trace object; other protocol events get the trace fields too.",
          } },
        },
        custom_validator = validate_config,
      },
    },
  },
}


-- Aforo v2.2's field names, accepted as Kong shorthand fields (compat.lua).
return compat.with_shorthands(schema)
