-- Protocol-aware metering (docs/design/plugin-contract.md#protocols): gRPC calls by service and method, GraphQL by
-- operation, WebSocket connections, MCP tools/call by tool, and traced (agentic) requests, each reported with
-- the productType and fields Aforo's ingest requires for it. Every option is off by default; with all
-- of them off the handler never calls into this module past `on(conf)`.
--
-- access(conf, ctx, path) reads what only the request has (headers, the bounded body) into
-- ctx.protocol, with the JSON of those fields made there (client values cleaned, cut and quoted), so
-- that records(conf, ctx, status, latency_ms), in the log phase, only joins it with the response's
-- values into what event.put writes for each event: a table
-- { product, key_prefix, key_suffix, execution_status, json, metadata } (json: the protocol fields, in the
-- order the sidecar writes them; metadata: extra metadata members).
--
-- Idempotency keys: a type prefix and the gateway's request id, never a clock reading nor a value
-- the client chose (not the tool, the operation name or Sec-WebSocket-Key, which Aforo's own key forms
-- carry: a client repeating them would have its usage deduplicated into one event). A batched MCP
-- or GraphQL request has one key per call or operation: its position in the body.
local cjson_safe = require "cjson.safe"
local event = require "kong.plugins.aforo-metering.event"
local buffer = require "kong.plugins.aforo-metering.buffer"
local graphql = require "kong.plugins.aforo-metering.graphql"

local kong = kong
local ngx = ngx
local type = type
local tonumber = tonumber
local find = string.find
local lower = string.lower
local sub = string.sub
local floor = math.floor
local quote = event.quote
local truncate = event.truncate
local clean_utf8 = event.clean_utf8

local cjson = cjson_safe.new()
cjson.decode_max_depth(32) -- a JSON-RPC call or a GraphQL request is shallow; deeper is refused

local _M = {}

--- The most request body bytes read to find a GraphQL operation or an MCP tool. A larger body
-- (by Content-Length, or once read, or left in a temp file by nginx) is metered without them, as a
-- plain API event, and counted (stats.body_over_cap and a rate-limited log line).
_M.MAX_BODY = 65536

-- Aforo's limits (docs/design/event-fields.md#optional), in characters; values are cut to as many bytes, before a
-- character. (spanId, 32, needs none: it is taken only from a valid traceparent, 16 hex digits.)
local MAX_TRACE_ID, MAX_SESSION_ID, MAX_AGENT_ID, MAX_TOOL_NAME = 128, 64, 36, 64
local MAX_GRPC_SERVICE, MAX_GRPC_METHOD, MAX_GQL_NAME, MAX_WS_ID, MAX_TRACE_MEMBER = 255, 128, 255, 64, 512

local stats = { body_over_cap = 0 }
_M.stats = stats

local enabled = setmetatable({}, { __mode = "k" }) -- conf -> any option on


--- Is any protocol option on in this config?
function _M.on(conf)
  local on = enabled[conf]
  if on == nil then
    on = conf.grpc_enabled or conf.graphql_enabled or conf.mcp_enabled or conf.websocket_enabled
         or conf.agentic_enabled or false
    enabled[conf] = on
  end
  return on
end


-- A client-supplied string as a JSON literal: bytes that are not UTF-8 percent-encoded, cut to max.
local function text(s, max)
  return quote(truncate(clean_utf8(s), max))
end


--- gRPC status -> executionStatus (OK, CANCELLED, DEADLINE_EXCEEDED, INVALID_ARGUMENT,
-- PERMISSION_DENIED / RESOURCE_EXHAUSTED / UNAUTHENTICATED; anything else ERROR).
local GRPC_OUTCOME = { [0] = "SUCCESS", [1] = "CANCELLED", [3] = "VALIDATION_FAILED", [4] = "TIMEOUT",
                       [7] = "BLOCKED", [8] = "BLOCKED", [16] = "BLOCKED" }
function _M.grpc_outcome(code)
  return GRPC_OUTCOME[code] or "ERROR"
end


--- "/pkg.Service/Method" under prefix -> "pkg.Service", "Method"; else nil.
function _M.grpc_call(path, prefix)
  if find(path, prefix, 1, true) ~= 1 then
    return nil
  end
  local rest = #prefix + 1
  if sub(prefix, -1) ~= "/" then
    if sub(path, rest, rest) ~= "/" then
      return nil -- "/rpcx/..." is not under "/rpc"
    end
    rest = rest + 1
  end
  local service, method = sub(path, rest):match("^([%w_%.]+)/([%w_]+)$")
  return service, method
end


--- W3C traceparent "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>" -> trace id, span id.
function _M.traceparent(v)
  if type(v) ~= "string" then
    return nil
  end
  local version, trace_id, span_id = v:match("^(%x%x)%-(%x+)%-(%x+)%-%x%x")
  if not version or version == "ff" or #trace_id ~= 32 or #span_id ~= 16
     or trace_id == "00000000000000000000000000000000" or span_id == "0000000000000000" then
    return nil
  end
  return lower(trace_id), lower(span_id)
end


local function header(name)
  local v = kong.request.get_header(name)
  if v == "" then
    return nil
  end
  return v
end


local log_marks = {}
local function note_body(conf, why)
  stats[why] = stats[why] + 1
  local now = ngx.now()
  if (log_marks[why] or 0) + 10 <= now then
    log_marks[why] = now
    kong.log.warn("request body over ", _M.MAX_BODY, " bytes or past client_body_buffer_size: metered ",
                  "without its GraphQL operation or MCP tool (", stats[why], " so far in this worker)")
  end
end


-- The request body decoded as JSON (or as text, raw = true), read only when it is at most MAX_BODY
-- bytes; nil when larger (counted), absent or not JSON.
local function body(conf, raw)
  local length = tonumber(kong.request.get_header("Content-Length"))
  if length and length > _M.MAX_BODY then
    return note_body(conf, "body_over_cap")
  end
  local b = kong.request.get_raw_body()
  if not b then -- nginx kept it in a temp file: larger than client_body_buffer_size
    return note_body(conf, "body_over_cap")
  end
  if #b > _M.MAX_BODY then
    return note_body(conf, "body_over_cap")
  end
  if b == "" then
    return nil
  end
  if raw then
    return b
  end
  return cjson.decode(b)
end


-- MCP: the tools/call requests of a JSON-RPC body (one object or a batch array) -> tool names.
local function mcp_tools(doc)
  if type(doc) ~= "table" then
    return nil
  end
  local calls = doc[1] ~= nil and doc or { doc }
  local tools, n = nil, 0
  for i = 1, #calls do
    local c = calls[i]
    if type(c) == "table" and c.method == "tools/call" then
      local params = c.params
      local name = type(params) == "table" and params.name
      tools = tools or {}
      n = n + 1
      tools[n] = { index = i, name = type(name) == "string" and name ~= "" and name or "unknown" }
    end
  end
  return tools
end


-- GraphQL: the operations of a POST body or a GET query string, an array of { type, name, index }
-- (index: the position in a batch array, nil for a request of one operation); nil when none is found.
local function graphql_operations(conf, method)
  local query, name
  if method == "GET" then
    query, name = kong.request.get_query_arg("query"), kong.request.get_query_arg("operationName")
  elseif method == "POST" then
    local ctype = lower(header("Content-Type") or "")
    if find(ctype, "application/graphql", 1, true) then
      query = body(conf, true)
    else
      local doc = body(conf)
      if type(doc) == "table" and doc[1] ~= nil then
        -- A batch (Apollo's and graphql-java's batching): one operation per position; an entry whose
        -- operation cannot be found is left out, as a request of one would be an API event.
        local ops, n = nil, 0
        for i = 1, #doc do
          local d = doc[i]
          if type(d) == "table" and type(d.query) == "string" then
            local op_name = type(d.operationName) == "string" and d.operationName ~= "" and d.operationName or nil
            local op_type, found = graphql.operation(d.query, op_name)
            if op_type then
              ops = ops or {}
              n = n + 1
              ops[n] = { type = op_type, name = found, index = i }
            end
          end
        end
        return ops
      end
      if type(doc) == "table" then
        query, name = doc.query, doc.operationName
      end
    end
  end
  if type(query) ~= "string" then
    return nil
  end
  local op_type, op_name = graphql.operation(query, type(name) == "string" and name ~= "" and name or nil)
  return op_type and { { type = op_type, name = op_name } }
end


-- ,"traceId":..,"spanId":.. for a request that carried trace headers, and its trace object.
local function trace_json(p)
  local trace_id, span_id = _M.traceparent(p.traceparent)
  if trace_id then
    return ',"traceId":"' .. trace_id .. '","spanId":"' .. span_id .. '"'
  elseif p.x_trace_id then
    return ',"traceId":' .. text(p.x_trace_id, MAX_TRACE_ID)
  end
  return ""
end

local function trace_object(p)
  local members = {}
  if p.traceparent then members[#members + 1] = '"traceparent":' .. text(p.traceparent, MAX_TRACE_MEMBER) end
  if p.tracestate then members[#members + 1] = '"tracestate":' .. text(p.tracestate, MAX_TRACE_MEMBER) end
  if p.x_trace_id then members[#members + 1] = '"xTraceId":' .. text(p.x_trace_id, MAX_TRACE_MEMBER) end
  if p.x_request_id then members[#members + 1] = '"xRequestId":' .. text(p.x_request_id, MAX_TRACE_MEMBER) end
  return ',"trace":{' .. table.concat(members, ",") .. "}"
end


-- The JSON of what the request alone tells, made in the access phase (client values cleaned, cut and
-- quoted there), so that the log phase only joins it with what the response tells: p.head before the
-- value known at the end (grpcStatusCode, executionDurationMs), p.tail after it; for MCP one head per
-- call (p.heads).
local function prepare(conf, p, customer_id)
  local trace, trace_obj = "", ""
  if p.traceparent or p.x_trace_id then
    trace, trace_obj = trace_json(p), trace_object(p)
  end
  local kind = p.kind
  -- p.operation: what the check sends as `operation` (feature rules' match.operation), the value the
  -- event carries: a gRPC Service/Method, a GraphQL operation name, the tool of a single MCP call.
  -- p.quantity: the check's quantity for a batch of N operations or calls (N events); nil = 1.
  if kind == "grpc" then
    p.operation = truncate(clean_utf8(p.service), MAX_GRPC_SERVICE) .. "/"
                  .. truncate(clean_utf8(p.method), MAX_GRPC_METHOD)
    p.head = trace .. ',"grpcService":' .. text(p.service, MAX_GRPC_SERVICE) .. ',"grpcMethod":'
             .. text(p.method, MAX_GRPC_METHOD)
    p.tail = trace_obj
  elseif kind == "graphql" then
    local ops, heads = p.ops, {}
    for i = 1, #ops do
      local op = ops[i]
      heads[i] = trace .. ',"gqlOperationType":"' .. op.type .. '"'
                 .. (op.name and ',"gqlOperationName":' .. text(op.name, MAX_GQL_NAME) or "")
    end
    p.heads = heads
    p.tail = trace_obj
    if #ops == 1 then -- a batch of operations is checked once, by its path: no one operation
      p.operation = ops[1].name and truncate(clean_utf8(ops[1].name), MAX_GQL_NAME)
    else
      p.quantity = #ops -- and counts as many units as the events it is billed as
    end
  elseif kind == "ws" then
    p.head = trace .. ',"executionDurationMs":'
    p.tail = ',"wsConnectionId":' .. text(p.ws_key, MAX_WS_ID) .. trace_obj
  elseif kind == "mcp" then
    local common = trace .. (p.session and ',"sessionId":' .. text(p.session, MAX_SESSION_ID) or "")
                   .. ',"agentId":' .. text(p.agent or customer_id, MAX_AGENT_ID)
    p.metadata = conf.mcp_product_id and ',"mcp_product_id":' .. quote(conf.mcp_product_id) or nil
    local heads = {}
    for i = 1, #p.tools do
      heads[i] = common .. ',"toolName":' .. text(p.tools[i].name, MAX_TOOL_NAME) .. ',"executionDurationMs":'
    end
    p.heads = heads
    if #p.tools == 1 then -- a batch of calls is checked once, by its path: no one operation
      p.operation = truncate(clean_utf8(p.tools[1].name), MAX_TOOL_NAME)
    else
      p.quantity = #p.tools -- and counts as many units as the events it is billed as
    end
    p.tail = trace_obj
  else
    p.head = trace .. trace_obj
  end
end


--- Access phase: what the options need from the request, into ctx.protocol (nil when no option
-- recognises it).
function _M.access(conf, ctx, path)
  local p
  local method = kong.request.get_method()
  if conf.websocket_enabled then
    local upgrade = header("Upgrade")
    local key = header("Sec-WebSocket-Key")
    if upgrade and key and lower(upgrade) == "websocket" then
      p = { kind = "ws", ws_key = key }
    end
  end
  if not p and conf.grpc_enabled then
    local ctype = header("Content-Type")
    if ctype and find(ctype, "application/grpc", 1, true) == 1 then
      local service, grpc_method = _M.grpc_call(path, conf.grpc_path_prefix)
      if service then
        p = { kind = "grpc", service = service, method = grpc_method }
      end
    end
  end
  if not p and conf.graphql_enabled and ngx.re.find(path, conf.graphql_path_pattern, "jo") then
    local ops = graphql_operations(conf, method)
    if ops then
      p = { kind = "graphql", ops = ops }
    end
  end
  if not p and conf.mcp_enabled and method == "POST" then
    local tools = mcp_tools(body(conf))
    if tools then
      -- agentId: the authenticated consumer's id (a UUID: Aforo's 36), else the customer id.
      local consumer = kong.client.get_consumer()
      local agent = consumer and kong.client.get_credential() ~= nil and consumer.id or nil
      p = { kind = "mcp", tools = tools, session = header("Mcp-Session-Id"), agent = agent }
    end
  end
  if conf.agentic_enabled then
    local traceparent, x_trace_id = header("traceparent"), header("x-trace-id")
    if traceparent or x_trace_id then
      p = p or { kind = "agentic" }
      p.traceparent, p.x_trace_id = traceparent, x_trace_id
      p.tracestate, p.x_request_id = header("tracestate"), header("X-Request-Id")
    end
  end
  if p then
    prepare(conf, p, ctx.customer_id)
  end
  ctx.protocol = p
end


-- The gRPC status: the grpc-status trailer, or the header of a trailers-only response.
local function grpc_status()
  local var = ngx.var
  local v = var.upstream_trailer_grpc_status or var.sent_trailer_grpc_status or ngx.header["grpc-status"]
  if type(v) == "table" then
    v = v[1]
  end
  local n = tonumber(v)
  if n and n >= 0 and n == floor(n) then
    return n
  end
end


-- Is the response the upstream's (not one Kong or a plugin made, as a refusal), with a Content-Type
-- that says JSON (application/json, application/graphql-response+json) and no Content-Encoding (a
-- compressed body is not read)?
local function json_response()
  if not ngx.var.upstream_status then
    return false
  end
  local resp = ngx.header
  local ctype = resp["Content-Type"]
  if type(ctype) == "table" then
    ctype = ctype[1]
  end
  if type(ctype) ~= "string" or resp["Content-Encoding"] then
    return false
  end
  ctype = lower(ctype)
  return find(ctype, "application/json", 1, true) ~= nil or find(ctype, "+json", 1, true) ~= nil
end


--- Body filter phase, for a GraphQL request only (p = ctx.protocol, p.kind == "graphql"): looks at the
-- response's first graphql.MAX_RESPONSE_SCAN bytes, as nginx passes them (ngx.arg[1], never
-- kong.response.get_raw_body, which holds back the whole body until its end), for a top-level
-- "errors" member of each result: p.errors, read by records() (gqlHasErrors). Once decided it reads
-- no further chunk.
function _M.body_filter(p)
  if p.scanned then
    return
  end
  local arg = ngx.arg
  local chunk, eof = arg[1], arg[2]
  local seen = p.seen
  if not seen then
    if not json_response() then
      p.scanned = true
      return
    end
    seen = chunk or ""
  elseif chunk and chunk ~= "" then
    seen = seen .. chunk -- the first chunk is usually the whole of a small response
  end
  local cap = graphql.MAX_RESPONSE_SCAN
  if eof or #seen >= cap then
    p.scanned, p.seen = true, nil
    p.errors = graphql.response_errors(seen, eof and #seen <= cap)
  else
    p.seen = seen
  end
end


local HAS_ERRORS = { [true] = ',"gqlHasErrors":true', [false] = ',"gqlHasErrors":false' }


--- Log phase: the event descriptions of this request (an array), or nil for a plain API event.
function _M.records(conf, ctx, status, latency_ms)
  local p = ctx.protocol
  local kind = p.kind
  if kind == "grpc" then
    local code = grpc_status()
    return { {
      product = "GRPC_API", key_prefix = "grpc:", key_suffix = "",
      execution_status = code and _M.grpc_outcome(code),
      json = code and p.head .. ',"grpcStatusCode":' .. code .. p.tail or p.head .. p.tail,
    } }
  elseif kind == "graphql" then
    local ops, out, errors = p.ops, {}, p.errors
    for i = 1, #ops do
      local index = ops[i].index -- a batch: a key per position, as MCP's
      local has = ""
      if errors then
        local v = errors[index or 1]
        if v == nil then
          v = errors.rest
        end
        has = HAS_ERRORS[v] or ""
      end
      out[i] = { product = "GRAPHQL_API", key_prefix = "gql:", key_suffix = index and ":" .. index or "",
                 json = p.heads[i] .. has .. p.tail }
    end
    return out
  elseif kind == "ws" then
    if status ~= 101 then
      return nil -- not upgraded: a plain API event
    end
    return { { product = "WEBSOCKET_API", key_prefix = "ws:", key_suffix = "",
               json = p.head .. floor(latency_ms + 0.5) .. p.tail } }
  elseif kind == "mcp" then
    local duration = floor(latency_ms + 0.5)
    local out = {}
    for i = 1, #p.tools do
      out[i] = { product = "MCP_SERVER", key_prefix = "mcp:", key_suffix = ":" .. p.tools[i].index,
                 metadata = p.metadata, json = p.heads[i] .. duration .. p.tail }
    end
    return out
  end
  return { { product = "AGENTIC_API", key_prefix = "kong:", key_suffix = "", json = p.head } }
end


--- Queues the record filled at items[b + 1 ..] with protos[1], then a copy of it for each further
-- description (the calls of a batched MCP request, the operations of a batched GraphQL request).
function _M.commit_more(q, items, b, protos)
  local record, slot = event.RECORD, event.PROTOCOL
  local values = {}
  for j = 1, record do
    values[j] = items[b + j]
  end
  buffer.commit(q)
  for i = 2, #protos do
    local to, tb = buffer.slot(q)
    if not to then
      return
    end
    for j = 1, record do
      to[tb + j] = values[j]
    end
    to[tb + slot] = protos[i]
    buffer.commit(q)
  end
end


return _M
