-- wrk script for POST /v1/check: one fixed check body, optional pacing, machine-readable summary.
-- Env: METHOD (POST default, or GET), CHECK_BODY (JSON body; default below), DELAY_MS (pause before each request on a connection,
-- for an approximate fixed rate; 0 = as fast as possible).
-- METHOD=GET sends a bodiless GET instead (the /healthz floor).
if os.getenv("METHOD") == "GET" then
  wrk.method = "GET"
else
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = os.getenv("CHECK_BODY") or
    '{"customer_id":"cust_bench","service":"search","route":"search-v1","method":"GET","path":"/v1/search/items/42","quantity":1,"request_id":"bench"}'
end

-- CUSTOMERS=N (> 1): each request is for the next of cust_1 .. cust_N in turn (bench/check/aforo_api.sh).
local customers = tonumber(os.getenv("CUSTOMERS") or "1")
if customers > 1 and wrk.method == "POST" then
  local n = 0
  function request()
    n = n % customers + 1
    return wrk.format(nil, nil, nil, '{"customer_id":"cust_' .. n ..
      '","service":"search","route":"search-v1","method":"GET","path":"/v1/search/items/42","quantity":1}')
  end
end

local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
    summary.errors.status
  io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d max_us=%d requests=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), latency.max, summary.requests, errors))
end
