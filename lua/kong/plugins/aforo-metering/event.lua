-- Builds the Aforo usage event (contracts §2) as one compact JSON string, and maps status codes.
--
-- Pure functions (no kong; ngx.re only when present): the log phase queues a
-- record of plain values, and the flush builds each batch's events in one loop
-- (buffer.lua), where LuaJIT compiles the encoder once instead of tracing it
-- into every request. A batch is encoded again only if its send failed.
local cjson = require "cjson.safe"

local floor = math.floor
local find = string.find
local fmt = string.format
local os_date = os.date
local tonumber = tonumber
local concat = table.concat
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

--- ISO-8601 UTC timestamp with milliseconds and "Z" for seconds since the epoch.
function _M.iso8601(t)
  local sec = floor(t)
  local ms = floor((t - sec) * 1000 + 0.5)
  if ms >= 1000 then
    sec, ms = sec + 1, ms - 1000
  end
  if sec ~= last_sec then
    last_sec, last_prefix = sec, os_date("!%Y-%m-%dT%H:%M:%S", sec)
  end
  return fmt("%s.%03dZ", last_prefix, ms)
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


local buf = {}

--- Builds one event as a JSON object string.
-- `e` fields: customer_id, metric_name, quantity, started_at (s since epoch),
-- request_id, method, path, status, latency_ms, request_bytes, response_bytes,
-- and the optional service, route, consumer, cost. Reads `e`, never keeps it.
function _M.build(e)
  local n = 0
  local status = e.status
  local response_bytes = tonumber(e.response_bytes) or 0
  local request_bytes = tonumber(e.request_bytes) or 0

  buf[1] = '{"customerId":'
  buf[2] = quote(e.customer_id)
  buf[3] = ',"metricName":'
  buf[4] = quote(e.metric_name)
  buf[5] = ',"quantity":'
  buf[6] = e.quantity
  buf[7] = ',"occurredAt":"'
  buf[8] = _M.iso8601(e.started_at)
  buf[9] = '","idempotencyKey":'
  buf[10] = quote("kong:" .. e.request_id)
  buf[11] = ',"productType":"API","executionStatus":"'
  buf[12] = _M.execution_status(status)
  buf[13] = '","endpointPath":'
  buf[14] = quote(e.path)
  buf[15] = ',"httpMethod":'
  buf[16] = quote(e.method)
  buf[17] = ',"statusCode":'
  buf[18] = status
  buf[19] = ',"responseTimeMs":'
  buf[20] = floor(e.latency_ms + 0.5)
  buf[21] = ',"dataBytes":'
  buf[22] = response_bytes
  buf[23] = ',"metadata":{"gateway":"kong","request_bytes":'
  buf[24] = request_bytes
  buf[25] = ',"response_bytes":'
  buf[26] = response_bytes
  n = 26
  if e.service then
    buf[n + 1] = ',"service":'
    buf[n + 2] = quote(e.service)
    n = n + 2
  end
  if e.route then
    buf[n + 1] = ',"route":'
    buf[n + 2] = quote(e.route)
    n = n + 2
  end
  if e.consumer then
    buf[n + 1] = ',"consumer":'
    buf[n + 2] = quote(e.consumer)
    n = n + 2
  end
  if e.cost then
    buf[n + 1] = ',"cost":'
    buf[n + 2] = e.cost
    n = n + 2
  end
  buf[n + 1] = "}}"
  return concat(buf, "", 1, n + 1)
end


return _M
