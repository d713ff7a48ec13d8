-- TEST STUB of the aforo-sidecar HTTP API (/v1/check, /v1/handshake, /v1/ingest/batch) for the nginx harness.
--
-- Not the product: the real sidecar replaces it in the end-to-end tests.
-- Decisions are chosen by customer_id so tests need no setup:
--   cust_block     429 quota_exceeded (retry_after 3600)
--   cust_throttle  429 margin_throttle with the margin guard headers
--   cust_noent     403 feature_not_entitled
--   cust_inactive  402 subscription_inactive
--   cust_shadow    would block, shadow: true (allowed)
--   cust_warn      allow with X-RateLimit-Warning and upstream X-Margin-Guard-Warning
--   cust_500       HTTP 500            cust_badjson  200 with invalid JSON
--   cust_slow      answers after 300 ms (beyond the plugin's timeout)
--   anything else  allow with X-RateLimit-* headers and upstream X-Aforo-Plan
-- Received events are kept in the lua_shared_dict "fake_sidecar":
--   GET    /_fake/events          {"count":N,"batches":B,"events":[...]}
--   DELETE /_fake/events          forget them
--   POST   /_fake/ingest?status=N answer N to ingest from now on (0: normal)
--   GET    /_fake/checks          number of /v1/check calls
local cjson = require "cjson.safe"

local ngx = ngx
local dict = ngx.shared.fake_sidecar


local function reply(status, body, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  for k, v in pairs(headers or {}) do
    ngx.header[k] = v
  end
  ngx.print(type(body) == "table" and cjson.encode(body) or body)
  return ngx.exit(status)
end


local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then
      local f = io.open(file, "rb")
      body = f:read("*a")
      f:close()
    end
  end
  return body
end


local function allow(extra_headers, upstream)
  local headers = {
    ["X-RateLimit-Limit"] = "10000", ["X-RateLimit-Remaining"] = "8420",
    ["X-RateLimit-Reset"] = "345600",
  }
  for k, v in pairs(extra_headers or {}) do
    headers[k] = v
  end
  return { decision = "allow", allowed = true, status = 200, reason = "ok", plan = "enterprise",
           feature = "advanced_search", remaining_quota = 8420, retry_after = 0,
           headers = headers, upstream_headers = upstream or { ["X-Aforo-Plan"] = "enterprise" },
           cache = "hit" }
end


local DECISIONS = {
  cust_block = { decision = "block", allowed = false, status = 429, reason = "quota_exceeded",
                 retry_after = 3600, headers = { ["X-RateLimit-Remaining"] = "0" } },
  cust_throttle = { decision = "throttle", allowed = false, status = 429, reason = "margin_throttle",
                    retry_after = 1, headers = { ["X-Aforo-Throttle"] = "true",
                    ["X-Margin-Guard"] = "throttled", ["X-Margin-Guard-Level"] = "L2" } },
  cust_noent = { decision = "block", allowed = false, status = 403, reason = "feature_not_entitled",
                 retry_after = 0, headers = {} },
  cust_inactive = { decision = "block", allowed = false, status = 402,
                    reason = "subscription_inactive", retry_after = 0 },
  cust_shadow = { decision = "block", allowed = false, shadow = true, status = 429,
                  reason = "quota_exceeded", retry_after = 60, headers = {} },
}


local function check()
  dict:incr("checks", 1, 0)
  local req = cjson.decode(read_body() or "")
  if type(req) ~= "table" or type(req.customer_id) ~= "string" then
    return reply(400, { error = { code = "bad_request", message = "customer_id is required" } })
  end
  dict:set("last_check", cjson.encode(req))
  local cid = req.customer_id
  if cid == "cust_500" then
    return reply(500, { error = { code = "internal", message = "test" } })
  elseif cid == "cust_badjson" then
    return reply(200, "{not json")
  elseif cid == "cust_slow" then
    ngx.sleep(0.3)
    return reply(200, allow())
  elseif cid == "cust_warn" then
    return reply(200, allow({ ["X-RateLimit-Warning"] = "quota 90% used" },
                            { ["X-Margin-Guard-Warning"] = "margin-low" }))
  end
  return reply(200, DECISIONS[cid] or allow())
end


local function ingest()
  local forced = dict:get("ingest_status") or 0
  if forced ~= 0 then
    return reply(forced, { error = { code = "forced", message = "test" } }, { ["Retry-After"] = "1" })
  end
  local body = cjson.decode(read_body() or "")
  if type(body) ~= "table" or type(body.events) ~= "table" then
    return reply(400, { error = { code = "bad_request", message = "malformed JSON" } })
  end
  dict:incr("batches", 1, 0)
  for _, e in ipairs(body.events) do
    local n = dict:incr("events", 1, 0)
    dict:set("event:" .. n, cjson.encode(e))
  end
  return reply(202, { accepted = #body.events, failed = 0, errors = {} })
end


local function events()
  local n = dict:get("events") or 0
  local out = {}
  for i = 1, n do
    out[i] = cjson.decode(dict:get("event:" .. i) or "null")
  end
  if ngx.req.get_method() == "DELETE" then
    dict:flush_all()
    return reply(200, { count = 0 })
  end
  local body = cjson.encode({ count = n, batches = dict:get("batches") or 0, events = out })
  if n == 0 then
    body = body:gsub('"events":{}', '"events":[]')
  end
  return reply(200, body)
end


local uri = ngx.var.uri
local method = ngx.req.get_method()
if uri == "/v1/check" and method == "POST" then
  return check()
elseif uri == "/v1/ingest/batch" and method == "POST" then
  return ingest()
elseif uri == "/v1/handshake" then
  return reply(200, { sidecar_version = "0.0.0-fake", tenant_id = "tenant_fake", ingest = "ok",
                      entitlements = { version = "1", age_s = 0 }, redis = "disabled" })
elseif uri == "/_fake/events" then
  return events()
elseif uri == "/_fake/ingest" then
  dict:set("ingest_status", tonumber(ngx.var.arg_status) or 0)
  return reply(200, { ingest_status = dict:get("ingest_status") })
elseif uri == "/_fake/checks" then
  return reply(200, { checks = dict:get("checks") or 0, last = cjson.decode(dict:get("last_check") or "null") })
end
return reply(404, { error = { code = "not_found", message = uri } })
