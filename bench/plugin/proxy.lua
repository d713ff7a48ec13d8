-- wrk script for the plugin benchmark: a GET through the proxy with the tenant header, and a
-- machine-readable summary line with latency percentiles (microseconds).
-- Env: TARGET (default /v1/search/items/42?cost=0.002), TENANT (X-Tenant-Id, default cust_bench).
wrk.method = "GET"
wrk.path = os.getenv("TARGET") or "/v1/search/items/42?cost=0.002"
wrk.headers["X-Tenant-Id"] = os.getenv("TENANT") or "cust_bench"

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
    summary.errors.status
  io.write(string.format("RESULT rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d requests=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.requests, errors))
end
