-- Specs of handler.lua with stubbed kong/ngx: identity, missing tenant, exclusions, decisions, fallback, events.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper

describe("aforo-metering handler", function()
  local env, handler

  before_each(function()
    env = helper.setup()
    handler = require "kong.plugins.aforo-metering.handler"
  end)

  local function decision(t) return helper.answer(t) end
  local function check_body(i) return helper.check_body(env, i) end
  local function errors() return helper.errors(env) end

  local buffered = helper.buffered

  describe("priority", function()
    it("runs after the authentication plugins and Kong's rate-limiting", function()
      assert.is_true(handler.PRIORITY < 950)
      assert.is_true(handler.PRIORITY < 910)
      assert.is_true(handler.PRIORITY > 801)
      assert.is_string(handler.VERSION)
    end)
  end)

  describe("configs sharing a sidecar_url", function()
    -- Two configs, metered in the given order; returns their shared queue.
    local function shared_queue(a, b)
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      for _, conf in ipairs({ a, b }) do
        helper.access(handler, conf)
        handler:log(conf)
      end
      return require("kong.plugins.aforo-metering.buffer")._queues()[a.sidecar_url]
    end

    for _, order in ipairs({ "small first", "large first" }) do
      it("share one queue with the largest bounds and the smallest batch and interval (" .. order .. ")", function()
        local small = helper.conf({ buffer_max_size = 50, batch_size = 10, flush_interval = 500,
                                    overflow_max_bytes = 0 })
        local large = helper.conf({ buffer_max_size = 5000, batch_size = 40, flush_interval = 100,
                                    overflow_max_bytes = 1000000 })
        local q = order == "small first" and shared_queue(small, large) or shared_queue(large, small)
        assert.equal(5000, q.max_size)
        assert.equal(10, q.batch_size)
        assert.equal(100, q.interval_ms)
        assert.equal(1000000, q.overflow_max)
      end)
    end
  end)

  describe("identity", function()
    it("uses the tenant header when there is no consumer", function()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      helper.access(handler, helper.conf())
      assert.equal("cust_acme", check_body().customer_id)
    end)

    it("lets an authenticated consumer win over the header", function()
      env.req.headers["X-Tenant-Id"] = "cust_victim"
      env.req.consumer = { id = "c-1", username = "alice", custom_id = "cust_alice" }
      helper.access(handler, helper.conf())
      assert.equal("cust_alice", check_body().customer_id)
      assert.equal("alice", env.req.ctx.consumer)
    end)

    it("falls back from custom_id to username to id for the consumer", function()
      env.req.consumer = { id = "c-1", username = "alice" }
      helper.access(handler, helper.conf())
      assert.equal("alice", check_body(1).customer_id)
      env.new_request().consumer = { id = "c-2" }
      helper.access(handler, helper.conf())
      assert.equal("c-2", check_body(2).customer_id)
    end)

    describe("an auth plugin's anonymous consumer (no credential)", function()
      before_each(function()
        env.req.consumer = { id = "anon-1", username = "anonymous", custom_id = "cust_anonymous" }
        env.req.anonymous = true
      end)

      it("counts as no consumer: the tenant header applies", function()
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        local conf = helper.conf()
        helper.access(handler, conf)
        assert.equal("cust_acme", check_body().customer_id)
        assert.is_nil(env.req.ctx.consumer)
        handler:log(conf)
        local q = require("kong.plugins.aforo-metering.buffer")._queues()[conf.sidecar_url]
        local parts = {}
        local n = q.put(parts, 0, q.items, 0)
        local e = helper.decode(table.concat(parts, "", 1, n))
        assert.equal("cust_acme", e.customerId)
        assert.is_nil(e.metadata.consumer)
      end)

      it("is a missing tenant without the header, and with customer_id_source=consumer", function()
        helper.access(handler, helper.conf({ missing_tenant = "block" }))
        assert.equal(401, env.req.exited.status)
        env.new_request()
        env.req.consumer = { id = "anon-1", username = "anonymous" }
        env.req.anonymous = true
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        helper.access(handler, helper.conf({ customer_id_source = "consumer", missing_tenant = "block" }))
        assert.equal(401, env.req.exited.status)
        assert.equal(0, #env.calls)
      end)

      it("still lets a consumer with a credential win over the header", function()
        env.req.anonymous = false
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        helper.access(handler, helper.conf())
        assert.equal("cust_anonymous", check_body().customer_id)
      end)
    end)

    it("ignores the consumer with customer_id_source=header", function()
      env.req.headers["X-Tenant-Id"] = "cust_hdr"
      env.req.consumer = { id = "c-1", username = "alice", custom_id = "cust_alice" }
      helper.access(handler, helper.conf({ customer_id_source = "header" }))
      assert.equal("cust_hdr", check_body().customer_id)
    end)

    it("ignores the header with customer_id_source=consumer", function()
      env.req.headers["X-Tenant-Id"] = "cust_hdr"
      helper.access(handler, helper.conf({ customer_id_source = "consumer", missing_tenant = "block" }))
      assert.equal(0, #env.calls)
      assert.equal(401, env.req.exited.status)
    end)

    it("reads the configured tenant header", function()
      env.req.headers["X-Customer"] = "cust_x"
      helper.access(handler, helper.conf({ tenant_header = "X-Customer" }))
      assert.equal("cust_x", check_body().customer_id)
    end)
  end)

  describe("missing tenant", function()
    it("proxies unmetered and logs one rate-limited ERROR with missing_tenant=allow", function()
      local conf = helper.conf()
      for _ = 1, 50 do
        env.new_request()
        helper.access(handler, conf)
        assert.is_nil(env.req.exited)
        handler:log(conf)
      end
      assert.equal(0, #env.calls)
      assert.same({ "ERROR missing X-Tenant-Id header (request not metered)" }, errors())
      assert.same({}, buffered(conf))
      env.clock.t = env.clock.t + 11
      helper.access(handler, conf)
      assert.equal("ERROR missing X-Tenant-Id header (request not metered) (49 similar lines suppressed)",
                   errors()[2])
    end)

    it("answers 401 with a JSON body with missing_tenant=block", function()
      helper.access(handler, helper.conf({ missing_tenant = "block" }))
      assert.equal(401, env.req.exited.status)
      assert.same({ message = "missing X-Tenant-Id header", reason = "missing_tenant", retry_after = 0 },
                  env.req.exited.body)
    end)

    it("treats an over-long customer id as missing", function()
      env.req.headers["X-Tenant-Id"] = string.rep("x", 65)
      helper.access(handler, helper.conf({ missing_tenant = "block" }))
      assert.equal(401, env.req.exited.status)
    end)
  end)

  describe("exclude_paths", function()
    it("neither checks nor meters excluded paths, matching whole segments", function()
      local conf = helper.conf({ exclude_paths = { "/health", "/internal/" } })
      for path, skipped in pairs({ ["/health"] = true, ["/health/live"] = true, ["/healthz"] = false,
                                   ["/internal/x"] = true, ["/internal"] = false, ["/v1/health"] = false }) do
        env.calls = {}
        env.new_request().path = path
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        helper.access(handler, conf)
        assert.equal(skipped and 0 or 1, #env.calls, path)
      end
    end)
  end)

  describe("decisions", function()
    before_each(function()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
    end)

    it("sends the check request of the decision contract (and lease_unused: its leases' unused units)", function()
      env.req.var.kong_request_id = "rid-1"
      env.req.method = "POST"
      helper.access(handler, helper.conf({ feature = "advanced_search", timeout = 80 }))
      assert.equal("POST", env.calls[1].method)
      assert.equal("/v1/check", env.calls[1].path)
      assert.equal("http://127.0.0.1:8750", env.calls[1].url)
      assert.equal(80, env.calls[1].opts.timeout)
      local body = check_body()
      assert.matches("^%x+%-%x+:%d+$", body.report_id) -- the lease report's id (lease.lua)
      body.report_id = nil
      assert.same({ customer_id = "cust_acme", feature = "advanced_search", service = "search",
                    route = "search-v1", method = "POST", path = "/v1/search/items/42", quantity = 1,
                    request_id = "rid-1", lease_unused = 0 }, body)
    end)

    it("sends a null feature when none is configured", function()
      helper.access(handler, helper.conf())
      assert.matches('"feature":null', env.calls[1].body, 1, true)
    end)

    it("sets response headers in header_filter and upstream headers on allow", function()
      env.respond(decision({ decision = "allow", allowed = true, reason = "quota_warning",
        headers = { ["X-RateLimit-Remaining"] = "5", ["X-RateLimit-Warning"] = "90%" },
        upstream_headers = { ["X-Margin-Guard-Warning"] = "margin-low" } }))
      local conf = helper.conf()
      helper.access(handler, conf)
      assert.is_nil(env.req.exited)
      assert.same({ ["X-Margin-Guard-Warning"] = "margin-low" }, env.req.upstream_headers)
      assert.same({}, env.req.set_headers)
      handler:header_filter(conf)
      assert.same({ ["X-RateLimit-Remaining"] = "5", ["X-RateLimit-Warning"] = "90%" }, env.req.set_headers)
    end)

    it("exits 429 with Retry-After and the JSON body on quota_exceeded", function()
      env.respond(decision({ decision = "block", allowed = false, status = 429, reason = "quota_exceeded",
                             retry_after = 3600, headers = { ["X-RateLimit-Remaining"] = "0" } }))
      helper.access(handler, helper.conf())
      assert.equal(429, env.req.exited.status)
      assert.same({ message = "quota exceeded", reason = "quota_exceeded", retry_after = 3600 },
                  env.req.exited.body)
      assert.same({ ["Retry-After"] = "3600", ["X-RateLimit-Remaining"] = "0" }, env.req.exited.headers)
    end)

    it("derives the status from the reason when the sidecar gives none", function()
      for reason, status in pairs({ margin_throttle = 429, margin_block = 429, feature_not_entitled = 403,
                                    subscription_inactive = 402, unknown_customer = 403, other = 403 }) do
        env.new_request().headers["X-Tenant-Id"] = "cust_acme"
        env.respond(decision({ decision = "block", allowed = false, reason = reason }))
        helper.access(handler, helper.conf())
        assert.equal(status, env.req.exited.status, reason)
        assert.equal(reason, env.req.exited.body.reason)
      end
    end)

    it("keeps the sidecar's own Retry-After header", function()
      env.respond(decision({ allowed = false, status = 429, reason = "margin_block", retry_after = 1800,
                             headers = { ["Retry-After"] = "1799", ["X-Margin-Guard"] = "blocked" } }))
      helper.access(handler, helper.conf())
      assert.equal("1799", env.req.exited.headers["Retry-After"])
    end)

    it("returns the sidecar's body as is when it gives one (Aforo's margin block)", function()
      local body = { error = { code = "SERVICE_RESTRICTED_MARGIN", message = "restricted", retryAfterSeconds = 1800 } }
      env.respond(decision({ allowed = false, status = 429, reason = "margin_block", retry_after = 1800,
                             message = "restricted", body = body,
                             headers = { ["X-Margin-Guard"] = "blocked", ["X-Margin-Guard-Level"] = "L3" } }))
      handler:access(helper.conf())
      assert.equal(429, env.req.exited.status)
      assert.same(body, env.req.exited.body)
      assert.same({ ["Retry-After"] = "1800", ["X-Margin-Guard"] = "blocked", ["X-Margin-Guard-Level"] = "L3" },
                  env.req.exited.headers)
    end)

    it("sets only the sidecar's headers Kong takes (a null, object or array value would make Kong raise)", function()
      env.respond(decision({ allowed = true, headers = { ["X-RateLimit-Limit"] = "100", ["X-Null"] = ngx.null,
                                                          ["X-Obj"] = { a = 1 }, ["X-Num"] = 5 },
                             upstream_headers = { ["X-Up"] = "1", ["X-Up-Null"] = ngx.null } }))
      local conf = helper.conf()
      helper.access(handler, conf)
      handler:header_filter(conf)
      assert.same({ ["X-RateLimit-Limit"] = "100", ["X-Num"] = 5 }, env.req.set_headers)
      assert.same({ ["X-Up"] = "1" }, env.req.upstream_headers)
      env.new_request().headers["X-Tenant-Id"] = "cust_acme"
      env.respond(decision({ allowed = false, status = 429, reason = "quota_exceeded", retry_after = 5,
                             headers = { ["X-Bad"] = { 1, 2 }, ["X-RateLimit-Remaining"] = 0 } }))
      helper.access(handler, conf)
      assert.equal(429, env.req.exited.status)
      assert.same({ ["X-RateLimit-Remaining"] = 0, ["Retry-After"] = "5" }, env.req.exited.headers)
    end)

    it("allows a shadow decision", function()
      env.respond(decision({ decision = "block", allowed = false, shadow = true, reason = "quota_exceeded" }))
      helper.access(handler, helper.conf())
      assert.is_nil(env.req.exited)
    end)
  end)

  describe("fallback_on_error", function()
    local failures = {
      refused = function() return nil, "connection refused" end,
      timeout = function() return nil, "timeout" end,
      ["5xx"] = function() return 503, '{"error":{}}' end,
      ["400"] = function() return 400, '{"error":{}}' end,
      ["bad JSON"] = function() return 200, "{nope" end,
      ["JSON not an object"] = function() return 200, '"allow"' end,
    }

    for name, fn in pairs(failures) do
      it("allows on " .. name .. " with fallback_on_error=allow", function()
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        env.respond(fn)
        helper.access(handler, helper.conf())
        assert.is_nil(env.req.exited)
        assert.is_true(env.req.ctx.fallback)
        assert.matches("^ERROR sidecar unreachable at http://127.0.0.1:8750: .+ %(fallback_on_error=allow%)$",
                       errors()[1])
      end)

      it("answers 503 on " .. name .. " with fallback_on_error=block", function()
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        env.respond(fn)
        helper.access(handler, helper.conf({ fallback_on_error = "block" }))
        assert.equal(503, env.req.exited.status)
        assert.equal("sidecar_unavailable", env.req.exited.body.reason)
      end)
    end

    it("logs the unreachable line at most once per 10 s per sidecar", function()
      env.respond(failures.refused)
      local conf = helper.conf()
      for _ = 1, 100 do
        env.new_request().headers["X-Tenant-Id"] = "cust_acme"
        helper.access(handler, conf)
      end
      assert.equal(1, #errors())
    end)
  end)

  describe("sidecar_token", function()
    local TOKEN = "tok_0123456789abcdef0123456789abcdef"

    -- Every request the plugin sends: the handshake, a check and a batch of events.
    local function all_calls(conf)
      env.respond(function(_, _, path)
        if path == "/v1/handshake" then return 200, '{"sidecar_version":"1.2.3"}' end
        if path == "/v1/ingest/batch" then return 202, '{"accepted":1,"failed":0,"errors":[]}' end
        return 200, '{"decision":"allow","allowed":true,"reason":"ok","headers":{},"upstream_headers":{}}'
      end)
      handler:configure({ conf })
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      helper.access(handler, conf)
      handler:log(conf)
      helper.run_timers(env)
      local paths = {}
      for _, c in ipairs(env.calls) do paths[c.path] = true end
      assert.same({ ["/v1/handshake"] = true, ["/v1/check"] = true, ["/v1/ingest/batch"] = true }, paths)
      return env.calls
    end

    it("sends Authorization: Bearer on the handshake, every check and every batch when configured", function()
      for _, c in ipairs(all_calls(helper.conf({ sidecar_token = TOKEN }))) do
        assert.equal("Authorization: Bearer " .. TOKEN .. "\r\n", c.opts.authorization, c.path)
      end
    end)

    it("sends no Authorization header without a token", function()
      for _, c in ipairs(all_calls(helper.conf())) do
        assert.is_nil(c.opts.authorization, c.path)
      end
    end)

    it("names the token when the sidecar answers 401, and applies fallback_on_error", function()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.respond(function() return 401, '{"error":{"code":"unauthorized"}}' end)
      helper.access(handler, helper.conf({ fallback_on_error = "block" }))
      assert.equal(503, env.req.exited.status)
      assert.matches("sidecar_token missing or wrong", errors()[1], 1, true)
      assert.is_nil(errors()[1]:find(TOKEN, 1, true))
    end)
  end)
end)
