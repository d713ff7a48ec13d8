-- wrk script for the protocol benchmark: a POST of BODY_FILE's bytes to TARGET with CONTENT_TYPE and the
-- tenant header, and the same RESULT summary line as proxy.lua. With METHOD=GET, a GET without a body.
local f = os.getenv("BODY_FILE")
wrk.method = os.getenv("METHOD") or "POST"
wrk.path = os.getenv("TARGET") or "/"
wrk.headers["X-Tenant-Id"] = os.getenv("TENANT") or "cust_bench"
if wrk.method == "POST" then
  local h = assert(io.open(f, "rb"))
  wrk.body = h:read("*a")
  h:close()
  wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
    summary.errors.status
  io.write(string.format("RESULT rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d requests=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.requests, errors))
end
