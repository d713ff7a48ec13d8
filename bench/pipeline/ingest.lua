-- wrk script for POST /v1/ingest/batch: pre-built batches of EVENTS realistic Kong usage events
-- (random UUID idempotencyKeys and field values, so LZ4 sees realistic entropy; BODIES bodies rotate,
-- so keys repeat after BODIES requests), machine-readable summary.
-- Env: EVENTS (events per request, default 200), BODIES (distinct bodies per thread, default 64),
--      METHOD=GET with TARGET=/healthz sends bodiless GETs instead (the floor).
local events = tonumber(os.getenv("EVENTS") or "200")
local bodies_n = tonumber(os.getenv("BODIES") or "64")
local get_target = os.getenv("METHOD") == "GET" and (os.getenv("TARGET") or "/healthz") or nil
local bodies = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

-- A Kong request id: 32 random hex digits as a UUID, so keys compress no better than real ones.
local function uuid()
  local t = {}
  for i = 1, 4 do t[i] = string.format("%08x", math.random(0, 0x7fffffff)) end
  local h = table.concat(t)
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21, 32)
end

function init(args)
  if get_target then return end
  math.randomseed((tid or 1) * 7919 + os.time())
  for b = 1, bodies_n do
    local parts = {}
    for i = 1, events do
      parts[i] = string.format(
        '{"customerId":"cust_%04d","metricName":"api_calls","quantity":1,"occurredAt":"2026-11-26T10:%02d:%02d.%03dZ",' ..
        '"idempotencyKey":"kong:%s","productType":"API","executionStatus":"SUCCESS",' ..
        '"endpointPath":"/v1/search/items/{id}","httpMethod":"GET","statusCode":200,"responseTimeMs":%d,' ..
        '"dataBytes":%d,"metadata":{"gateway":"kong","service":"search","route":"search-v1","consumer":"acme",' ..
        '"request_bytes":%d,"response_bytes":%d}}',
        math.random(0, 499), math.random(0, 59), math.random(0, 59), math.random(0, 999), uuid(),
        math.random(1, 400), math.random(100, 9000), math.random(100, 900), math.random(100, 9000))
    end
    bodies[b] = '{"events":[' .. table.concat(parts, ",") .. ']}'
  end
end

local n = 0
function request()
  if get_target then return wrk.format("GET", get_target) end
  n = n % bodies_n + 1
  return wrk.format("POST", "/v1/ingest/batch", { ["Content-Type"] = "application/json" }, bodies[n])
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
    summary.errors.status
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d errors=%d secs=%.3f\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), summary.requests, errors, secs))
end
