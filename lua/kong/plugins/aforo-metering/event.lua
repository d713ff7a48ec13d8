-- Builds the Aforo usage event (docs/design/event-fields.md) as one compact JSON string, and maps status codes.
--
-- Pure functions (no kong; ngx.re only when present): the log phase queues a
-- record of plain values, and the flush builds each batch's events in one loop
-- (buffer.lua), where LuaJIT compiles the encoder once instead of tracing it
-- into every request. A batch is encoded again only if its send failed.
local cjson = require "cjson.safe"
local sent_product_type = require("kong.plugins.aforo-metering.compat").sent_product_type

local floor = math.floor
local find = string.find
local fmt = string.format
local os_date = os.date
local tonumber = tonumber
local concat = table.concat
local sub = string.sub
local cjson_encode = cjson.encode


local _M = {}


--- Maps an HTTP status to Aforo's executionStatus.
-- 2xx/3xx SUCCESS; 408/504 TIMEOUT; 499 CANCELLED; 400/422 VALIDATION_FAILED;
-- 401/403/429 BLOCKED; any other status ERROR.
function _M.execution_status(status)
  if status >= 200 and status < 400 then
    return "SUCCESS"
  elseif status == 408 or status == 504 then
    return "TIMEOUT"
  elseif status == 499 then
    return "CANCELLED"
  elseif status == 400 or status == 422 then
    return "VALIDATION_FAILED"
  elseif status == 401 or status == 403 or status == 429 then
    return "BLOCKED"
  end
  return "ERROR"
end


-- Does s need escaping in JSON (a control character, '"' or '\\')? Bytes of 128 and over go as
-- they are, as the encoder would send them. Under nginx this is a PCRE JIT match: Lua's pattern
-- matcher tries the class at every position and costs ~3,000 instructions on a 30-byte path, the
-- most expensive part of an event before this.
local needs_escape
local re_find = type(ngx) == "table" and type(ngx.re) == "table" and ngx.re.find
if re_find then
  needs_escape = function(s)
    return re_find(s, [=[[\x00-\x1f"\\]]=], "jo") ~= nil
  end
else
  needs_escape = function(s)
    return find(s, '[%c"\\]') ~= nil
  end
end

local QUOTE_CACHE_MAX = 1024 -- distinct short strings remembered (customers, methods, routes...)
local QUOTE_CACHE_LEN = 128  -- longer strings are not remembered
local quoted, n_quoted = {}, 0

--- JSON string literal of s; plain strings skip the encoder, and short ones are remembered,
-- since the same customer, metric, method, service and route come back request after request.
local function quote(s)
  local q = quoted[s]
  if q then
    return q
  end
  if needs_escape(s) then
    q = cjson_encode(s) or '""'
  else
    q = '"' .. s .. '"'
  end
  if #s <= QUOTE_CACHE_LEN then
    if n_quoted >= QUOTE_CACHE_MAX then
      quoted, n_quoted = {}, 0
    end
    quoted[s] = q
    n_quoted = n_quoted + 1
  end
  return q
end
_M.quote = quote


local last_sec, last_prefix
local MILLIS = {} -- 0..999 -> "000".."999"
for i = 0, 999 do
  MILLIS[i] = fmt("%03d", i)
end

-- "YYYY-MM-DDTHH:MM:SS" (UTC, made once per second) and "mmm" for seconds since the epoch.
local function timestamp_parts(t)
  local sec = floor(t)
  local ms = floor((t - sec) * 1000 + 0.5)
  if ms >= 1000 then
    sec, ms = sec + 1, ms - 1000
  end
  if sec ~= last_sec then
    last_sec, last_prefix = sec, os_date("!%Y-%m-%dT%H:%M:%S", sec)
  end
  return last_prefix, MILLIS[ms]
end



--- Positive quantity from a header value, else nil (non-numbers, 0, negatives,
-- NaN, infinities and values over 14 integer digits are refused).
function _M.parse_quantity(value)
  local n = value and tonumber(value)
  if not n or n ~= n or n <= 0 or n >= 1e14 then
    return nil
  end
  return n
end


--- Non-negative cost from a header value, else nil.
function _M.parse_cost(value)
  local n = value and tonumber(value)
  if not n or n ~= n or n < 0 or n >= 1e14 then
    return nil
  end
  return n
end


--- Formats the 32 hex digits of nginx's $request_id as a UUID.
function _M.uuid_from_hex(hex)
  if not hex or #hex ~= 32 then
    return nil
  end
  return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-" .. hex:sub(13, 16) .. "-"
         .. hex:sub(17, 20) .. "-" .. hex:sub(21, 32)
end


-- Does s hold a byte of 128 or over? (PCRE JIT under nginx, a Lua pattern elsewhere.)
local has_high
if re_find then
  has_high = function(s)
    return re_find(s, [=[[\x80-\xff]]=], "jo") ~= nil
  end
else
  has_high = function(s)
    return find(s, "[\128-\255]") ~= nil
  end
end
_M.has_high = has_high

local byte = string.byte

-- Length of the valid UTF-8 sequence starting at s[i], else nil (overlong forms, surrogates and
-- code points over U+10FFFF are invalid, as RFC 3629 and the sidecar's validator have it).
local function utf8_seq(s, i, n)
  local c = byte(s, i)
  if c < 0x80 then
    return 1
  end
  local len, lo, hi
  if c >= 0xC2 and c <= 0xDF then
    len = 2
  elseif c >= 0xE0 and c <= 0xEF then
    len = 3
    lo = c == 0xE0 and 0xA0 or 0x80
    hi = c == 0xED and 0x9F or 0xBF
  elseif c >= 0xF0 and c <= 0xF4 then
    len = 4
    lo = c == 0xF0 and 0x90 or 0x80
    hi = c == 0xF4 and 0x8F or 0xBF
  else
    return nil
  end
  if i + len - 1 > n then
    return nil
  end
  for j = 1, len - 1 do
    local b = byte(s, i + j)
    local l, h = 0x80, 0xBF
    if j == 1 and lo then
      l, h = lo, hi
    end
    if b < l or b > h then
      return nil
    end
  end
  return len
end


--- Is s valid UTF-8?
function _M.valid_utf8(s)
  if not has_high(s) then
    return true
  end
  local i, n = 1, #s
  while i <= n do
    local len = utf8_seq(s, i, n)
    if not len then
      return false
    end
    i = i + len
  end
  return true
end


--- s with every byte that is not part of a valid UTF-8 sequence percent-encoded (0xFF -> "%FF"), the
-- form the client sent it in when it is a path nginx decoded; s itself when it is valid UTF-8.
function _M.clean_utf8(s)
  if not has_high(s) then
    return s
  end
  local out, k = {}, 0
  local i, n = 1, #s
  local run = 1 -- start of the valid run not yet copied
  while i <= n do
    local len = utf8_seq(s, i, n)
    if len then
      i = i + len
    else
      k = k + 1
      out[k] = sub(s, run, i - 1) .. fmt("%%%02X", byte(s, i))
      i = i + 1
      run = i
    end
  end
  if k == 0 then
    return s
  end
  out[k + 1] = sub(s, run)
  return concat(out)
end


local PERCENT = 37

--- The first max bytes of the valid UTF-8 string s, cut before a character, not inside one.
local function truncate(s, max)
  if #s <= max then
    return s
  end
  local cut = max
  -- A continuation byte (10xxxxxx) after the cut means the cut is inside a character.
  while cut > 0 do
    local b = byte(s, cut + 1)
    if b < 0x80 or b >= 0xC0 then
      break
    end
    cut = cut - 1
  end
  -- Nor inside a percent-escape ("%FF" cut to "%F"): clean_utf8 makes them.
  if byte(s, cut) == PERCENT then
    cut = cut - 1
  elseif cut > 1 and byte(s, cut - 1) == PERCENT then
    cut = cut - 2
  end
  return sub(s, 1, cut)
end
_M.truncate = truncate

_M.MAX_ENDPOINT_PATH = 512 -- Aforo's endpointPath limit, in bytes here (never more characters)
_M.MAX_HTTP_METHOD = 16    -- Aforo's httpMethod limit


--- A random UUID-like id, for a request without nginx's $request_id (never the case in nginx >= 1.11).
function _M.random_id()
  local random = math.random
  return fmt("%08x-%04x-4%03x-%04x-%04x%08x", random(0, 0x7fffffff), random(0, 0xffff), random(0, 0xfff),
             0x8000 + random(0, 0x3fff), random(0, 0xffff), random(0, 0x7fffffff))
end


-- A usage record is RECORD consecutive values in an array (buffer.lua keeps
-- the queue that way: no table per request, so nothing for the GC to trace
-- and sweep per request but the strings the request made anyway):
_M.RECORD = 16
local CUSTOMER_ID, METRIC_NAME, QUANTITY, STARTED_AT, REQUEST_ID, METHOD, PATH, STATUS,
      LATENCY_MS, REQUEST_BYTES, RESPONSE_BYTES, CONSUMER, SERVICE, ROUTE, COST, PROTOCOL =
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
_M.FIELDS = { "customer_id", "metric_name", "quantity", "started_at", "request_id", "method", "path",
              "status", "latency_ms", "request_bytes", "response_bytes", "consumer", "service",
              "route", "cost", "protocol" }
_M.PROTOCOL = PROTOCOL

-- Escaped content of s without the quotes: s itself when nothing needs escaping.
local function inner(s)
  if needs_escape(s) then
    local q = cjson_encode(s) or '""'
    return sub(q, 2, -2)
  end
  return s
end


-- The record's last slot: its config's productType and executionStatus overrides (product_type,
-- status_outcomes; outcome() below), nil for the defaults (API, execution_status()). Appended to the
-- record here, whatever slots precede it.
local OUTCOME = _M.RECORD + 1
_M.RECORD = OUTCOME
_M.OUTCOME = OUTCOME
_M.FIELDS[OUTCOME] = "outcome"


--- The outcome slot's value for a plugin config: nil when its events are sent as API
-- (compat.sent_product_type) and it has no status_outcomes, else { product_json = the JSON between
-- idempotencyKey and executionStatus' value, statuses = { [status number] = executionStatus } }. One table
-- per config, shared by its events.
function _M.outcome(conf)
  local product = sent_product_type(conf.product_type)
  local map = conf.status_outcomes
  local statuses = {}
  local any = false
  if type(map) == "table" then
    for code, value in pairs(map) do
      local n = tonumber(code)
      if n and type(value) == "string" then
        statuses[n] = value
        any = true
      end
    end
  end
  if product == "API" and not any then
    return nil
  end
  return { product_json = '","productType":"' .. product .. '","executionStatus":"', statuses = statuses }
end


-- Appends a metadata member when its value is there.
local function optional(parts, k, key, value)
  if value == nil then
    return k
  end
  parts[k + 1] = key
  parts[k + 2] = value
  return k + 2
end


--- Appends the pieces of one event's JSON object, from the record at
-- items[base + 1 .. base + RECORD], to parts after index k; returns the new
-- last index. Strings that need no escaping, the cached quotes and the numbers
-- go in as they are, so table.concat of the whole batch makes the only new
-- string (numbers are written by concat as tostring would).
-- Fields: customer_id, metric_name, quantity, started_at (s since the epoch),
-- request_id, method, path, status, latency_ms, request_bytes, response_bytes,
-- and the optional consumer, service, route, cost and protocol (protocol.lua: the productType, key
-- form and protocol fields of a gRPC, GraphQL, WebSocket, MCP or agentic event; nil: a plain API event).
function _M.put(parts, k, items, base)
  local proto = items[base + PROTOCOL]
  local status = items[base + STATUS]
  local response_bytes = tonumber(items[base + RESPONSE_BYTES]) or 0
  local prefix, millis = timestamp_parts(items[base + STARTED_AT])

  parts[k + 1] = '{"customerId":'
  parts[k + 2] = quote(items[base + CUSTOMER_ID])
  parts[k + 3] = ',"metricName":'
  parts[k + 4] = quote(items[base + METRIC_NAME])
  parts[k + 5] = ',"quantity":'
  parts[k + 6] = items[base + QUANTITY]
  parts[k + 7] = ',"occurredAt":"'
  parts[k + 8] = prefix
  parts[k + 9] = "."
  parts[k + 10] = millis
  if proto then
    -- Its productType, executionStatus (when the protocol has its own outcome, as gRPC's
    -- grpc-status) and idempotency key form.
    parts[k + 11] = 'Z","idempotencyKey":"' .. proto.key_prefix
    parts[k + 12] = inner(items[base + REQUEST_ID]) .. proto.key_suffix
    parts[k + 13] = '","productType":"' .. proto.product .. '","executionStatus":"'
    parts[k + 14] = proto.execution_status or _M.execution_status(status)
  else
    local outcome = items[base + OUTCOME]
    parts[k + 11] = 'Z","idempotencyKey":"kong:'
    parts[k + 12] = inner(items[base + REQUEST_ID])
    parts[k + 13] = outcome and outcome.product_json or '","productType":"API","executionStatus":"'
    parts[k + 14] = outcome and outcome.statuses[status] or _M.execution_status(status)
  end
  parts[k + 15] = '","endpointPath":"'
  parts[k + 16] = inner(truncate(items[base + PATH], _M.MAX_ENDPOINT_PATH))
  parts[k + 17] = '","httpMethod":'
  parts[k + 18] = quote(items[base + METHOD])
  parts[k + 19] = ',"statusCode":'
  parts[k + 20] = status
  parts[k + 21] = ',"responseTimeMs":'
  parts[k + 22] = floor(items[base + LATENCY_MS] + 0.5)
  parts[k + 23] = ',"dataBytes":'
  parts[k + 24] = response_bytes
  k = k + 24
  if proto then
    k = k + 1
    parts[k] = proto.json  -- the protocol fields, after dataBytes as the sidecar writes them
  end
  parts[k + 1] = ',"metadata":{"gateway":"kong","request_bytes":'
  parts[k + 2] = tonumber(items[base + REQUEST_BYTES]) or 0
  parts[k + 3] = ',"response_bytes":'
  parts[k + 4] = response_bytes
  k = k + 4
  local service, route, consumer = items[base + SERVICE], items[base + ROUTE], items[base + CONSUMER]
  k = optional(parts, k, ',"service":', service and quote(service))
  k = optional(parts, k, ',"route":', route and quote(route))
  k = optional(parts, k, ',"consumer":', consumer and quote(consumer))
  k = optional(parts, k, ',"cost":', items[base + COST])
  if proto then
    k = optional(parts, k, "", proto.metadata)  -- extra metadata members of the protocol
  end
  parts[k + 1] = "}}"
  return k + 1
end

return _M
