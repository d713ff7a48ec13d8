-- Specs of handler.lua's log phase with stubbed kong/ngx: the usage event of each request, its fields and outcome.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper

describe("aforo-metering handler log phase", function()
  local env, handler

  before_each(function()
    env = helper.setup()
    handler = require "kong.plugins.aforo-metering.handler"
  end)

  local function decision(t) return helper.answer(t) end
  local function check_body(i) return helper.check_body(env, i) end
  local function errors() return helper.errors(env) end

  local buffered = helper.buffered

  describe("log phase", function()
    before_each(function()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
    end)

    it("buffers one event with the request's fields", function()
      local conf = helper.conf()
      env.req.consumer = { id = "c-1", username = "alice", custom_id = "cust_alice" }
      env.req.var.kong_request_id = "req-9"
      helper.access(handler, conf)
      env.req.status = 201
      env.req.resp_headers = { ["X-Aforo-Quantity"] = "3", ["X-Aforo-Cost"] = "0.25" }
      handler:header_filter(conf)
      env.clock.t = env.req.start_ms / 1000 + 0.0424
      handler:log(conf)
      local events = buffered(conf)
      assert.equal(1, #events)
      local e = events[1]
      assert.equal("cust_alice", e.customerId)
      assert.equal("kong:req-9", e.idempotencyKey)
      assert.equal(3, e.quantity)
      assert.equal(201, e.statusCode)
      assert.equal("SUCCESS", e.executionStatus)
      assert.equal(42, e.responseTimeMs)
      assert.equal("2025-11-24T16:00:00.123Z", e.occurredAt)
      assert.same({ gateway = "kong", service = "search", route = "search-v1", consumer = "alice",
                    request_bytes = 120, response_bytes = 345, cost = 0.25 }, e.metadata)
    end)

    it("removes the cost and quantity headers from the client response and meters their values", function()
      local conf = helper.conf()
      helper.access(handler, conf)
      env.req.resp_headers = { ["x-aforo-cost"] = "0.5", ["X-Aforo-Quantity"] = "7", ["X-Other"] = "kept" }
      handler:header_filter(conf)
      assert.same({ ["X-Other"] = "kept" }, env.req.resp_headers)
      handler:log(conf)
      local e = buffered(conf)[1]
      assert.equal(0.5, e.metadata.cost)
      assert.equal(7, e.quantity)
    end)

    it("meters the first value of a cost header the upstream sent twice, and removes both", function()
      local conf = helper.conf()
      helper.access(handler, conf)
      env.req.resp_headers = { ["X-Aforo-Cost"] = { "0.25", "0.75" }, ["X-Aforo-Quantity"] = "2" }
      handler:header_filter(conf)
      assert.same({}, env.req.resp_headers)
      handler:log(conf)
      local e = buffered(conf)[1]
      assert.equal(0.25, e.metadata.cost)
      assert.equal(2, e.quantity)
    end)

    it("removes configured header names, and leaves the response alone when the upstream sent none", function()
      local conf = helper.conf({ cost_header = "X-Internal-Cost", quantity_header = "X-Internal-Units" })
      helper.access(handler, conf)
      env.req.resp_headers = { ["X-Internal-Cost"] = "1.25", ["X-Aforo-Cost"] = "9" }
      handler:header_filter(conf)
      assert.same({ ["X-Aforo-Cost"] = "9" }, env.req.resp_headers)
      assert.same({ "X-Internal-Cost" }, env.req.cleared_headers)
      handler:log(conf)
      local e = buffered(conf)[1]
      assert.equal(1.25, e.metadata.cost)
      assert.equal(1, e.quantity)

      env.new_request().headers["X-Tenant-Id"] = "cust_acme"
      helper.access(handler, conf)
      handler:header_filter(conf)
      assert.same({}, env.req.cleared_headers)
      handler:log(conf)
      assert.is_nil(buffered(conf)[2].metadata.cost)
    end)

    it("removes the cost header even from requests it does not meter", function()
      local conf = helper.conf()
      env.req.headers["X-Tenant-Id"] = nil
      helper.access(handler, conf)
      env.req.resp_headers = { ["X-Aforo-Cost"] = "0.5" }
      handler:header_filter(conf)
      assert.same({}, env.req.resp_headers)
      handler:log(conf)
      assert.same({}, buffered(conf))
    end)

    it("saves the values before the decision's headers are set, so a decision header cannot replace them", function()
      env.respond(decision({ allowed = true, headers = { ["X-RateLimit-Remaining"] = "5" } }))
      local conf = helper.conf()
      helper.access(handler, conf)
      env.req.resp_headers = { ["X-Aforo-Cost"] = "0.75" }
      handler:header_filter(conf)
      assert.same({ ["X-RateLimit-Remaining"] = "5" }, env.req.set_headers)
      handler:log(conf)
      assert.equal(0.75, buffered(conf)[1].metadata.cost)
    end)

    it("reads the headers in the log phase when header_filter did not run", function()
      local conf = helper.conf()
      helper.access(handler, conf)
      env.req.resp_headers = { ["X-Aforo-Cost"] = "0.125", ["X-Aforo-Quantity"] = "2" }
      handler:log(conf)
      local e = buffered(conf)[1]
      assert.equal(0.125, e.metadata.cost)
      assert.equal(2, e.quantity)
    end)

    it("uses the same request id in the check and the event, made once when no header has one", function()
      local conf = helper.conf()
      helper.access(handler, conf)
      handler:log(conf)
      local key = buffered(conf)[1].idempotencyKey
      -- Kong >= 3.5: its $kong_request_id; Kong 3.4: nginx's $request_id as a UUID.
      local rid = helper.profile == "3.4" and "01234567-89ab-cdef-0123-456789abcdef" or env.req.var.kong_request_id
      assert.equal("kong:" .. rid, key)
      assert.equal(rid, check_body().request_id)
    end)

    it("never takes the key from a request header: repeated X-Request-Id values give distinct keys", function()
      local conf = helper.conf()
      local keys = {}
      for i = 1, 50 do
        env.new_request()
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        env.req.headers["X-Request-Id"] = "same-id"
        env.req.headers["X-Kong-Request-Id"] = "same-id"
        env.req.var.request_id = string.format("%032x", i)
        helper.access(handler, conf)
        handler:log(conf)
      end
      for _, e in ipairs(buffered(conf)) do
        assert.matches("^kong:[%x%-]+$", e.idempotencyKey)
        keys[e.idempotencyKey] = true
      end
      local n = 0
      for _ in pairs(keys) do n = n + 1 end
      assert.equal(50, n)
    end)

    it("uses Kong's $kong_request_id when there is one, unless it is too long for a key", function()
      local conf = helper.conf()
      env.req.var.kong_request_id = "d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f"
      env.req.headers["X-Request-Id"] = "client-chosen"
      helper.access(handler, conf)
      handler:log(conf)
      assert.equal("kong:d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f", buffered(conf)[1].idempotencyKey)
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.req.var.kong_request_id = string.rep("k", 300)
      helper.access(handler, conf)
      handler:log(conf)
      assert.equal("kong:01234567-89ab-cdef-0123-456789abcdef", buffered(conf)[2].idempotencyKey)
    end)

    it("without $kong_request_id (Kong 3.4) uses nginx's $request_id", function()
      local conf = helper.conf()
      env.req.var.kong_request_id = nil
      env.req.headers["X-Request-Id"] = "client-chosen"
      helper.access(handler, conf)
      handler:log(conf)
      assert.equal("kong:01234567-89ab-cdef-0123-456789abcdef", buffered(conf)[1].idempotencyKey)
    end)

    it("meters a 3,000-byte path and a path that is not UTF-8 within Aforo's limits", function()
      local conf = helper.conf()
      env.req.path = "/v1/search/" .. string.rep("x", 2989)
      helper.access(handler, conf)
      handler:log(conf)
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.req.path = "/v1/search/\255\254caf\195\169"
      env.req.method = "PROPFINDWITHAVERYLONGNAME"
      helper.access(handler, conf)
      handler:log(conf)
      local events = buffered(conf)
      assert.equal(2, #events)
      assert.equal("/v1/search/" .. string.rep("x", 501), events[1].endpointPath)
      assert.equal("/v1/search/%FF%FEcaf\195\169", events[2].endpointPath)
      assert.equal("PROPFINDWITHAVER", events[2].httpMethod)
      -- The check got the same, valid, path and method.
      assert.equal("/v1/search/%FF%FEcaf\195\169", helper.check_body(env, 2).path)
      assert.equal("PROPFINDWITHAVER", helper.check_body(env, 2).method)
    end)

    it("treats a tenant header that is not UTF-8 as missing", function()
      local conf = helper.conf()
      env.req.headers["X-Tenant-Id"] = "cust_\255"
      helper.access(handler, conf)
      handler:log(conf)
      assert.equal(0, #buffered(conf))
      assert.matches("not valid UTF%-8", helper.last_log(env, "err"))
    end)

    it("meters a denied request as BLOCKED when its status is not excluded", function()
      env.respond(decision({ allowed = false, status = 429, reason = "quota_exceeded", retry_after = 5 }))
      local conf = helper.conf({ exclude_status_codes = {} })
      helper.access(handler, conf)
      env.req.status = env.req.exited.status
      handler:log(conf)
      assert.equal("BLOCKED", buffered(conf)[1].executionStatus)
    end)

    it("does not meter a denied request by default (exclude_status_codes 401, 403, 429)", function()
      env.respond(decision({ allowed = false, status = 429, reason = "quota_exceeded", retry_after = 5 }))
      local conf = helper.conf()
      helper.access(handler, conf)
      env.req.status = env.req.exited.status
      handler:log(conf)
      assert.equal(0, #buffered(conf))
    end)

    it("leaves service and route out without discovery", function()
      local conf = helper.conf({ discovery_enabled = false, entitlement_enabled = false })
      helper.access(handler, conf)
      handler:log(conf)
      local e = buffered(conf)[1]
      assert.is_nil(e.metadata.service)
      assert.is_nil(e.metadata.route)
      assert.equal(0, #env.calls)
    end)

    it("meters nothing with metering_enabled=false or when access did not run", function()
      local conf = helper.conf({ metering_enabled = false })
      helper.access(handler, conf)
      handler:log(conf)
      assert.same({}, buffered(conf))
      local conf2 = helper.conf({ sidecar_url = "http://127.0.0.1:9" })
      env.new_request()
      handler:log(conf2)
      assert.same({}, buffered(conf2))
    end)

    it("flushes buffered events to /v1/ingest/batch from a timer", function()
      local conf = helper.conf({ flush_interval = 100 })
      helper.access(handler, conf)
      handler:log(conf)
      env.calls = {}
      env.respond(function() return 202, '{"accepted":1,"failed":0,"errors":[]}' end)
      -- the handshake timer and the flush timer
      helper.run_timers(env)
      local ingest
      for _, c in ipairs(env.calls) do
        if c.path == "/v1/ingest/batch" then ingest = c end
      end
      assert.is_not_nil(ingest)
      assert.equal("POST", ingest.method)
      local body = helper.decode(ingest.body)
      assert.equal(1, #body.events)
      assert.equal("cust_acme", body.events[1].customerId)
      assert.same({}, buffered(conf))
    end)

    -- What starts the worker's handshake: configure (Kong >= 3.5), else the first request (Kong 3.4).
    local function first_contact(conf)
      if not helper.start_worker(handler, { conf }) then
        env.req.headers["X-Tenant-Id"] = "cust_acme"
        helper.access(handler, conf)
      end
    end

    local function handshake_calls()
      local out = {}
      for _, c in ipairs(env.calls) do
        if c.path == "/v1/handshake" then out[#out + 1] = c end
      end
      return out
    end

    it("reports the events its worker dropped on the next batch, until the sidecar answers 2xx", function()
      local conf = helper.conf({ buffer_max_size = 2, batch_size = 2 })
      local answer = function() return nil, "connection refused" end
      env.respond(function(_, _, path)
        if path == "/v1/ingest/batch" then return answer() end
        return 200, '{"allowed":true}'
      end)
      for _ = 1, 5 do -- two queued, three dropped
        env.new_request().headers["X-Tenant-Id"] = "cust_acme"
        helper.access(handler, conf)
        handler:log(conf)
      end
      local function posts()
        local out = {}
        for _, c in ipairs(env.calls) do
          if c.path == "/v1/ingest/batch" then out[#out + 1] = c.opts.headers or "" end
        end
        return out
      end
      while #posts() == 0 and helper.run_timers(env, false, 1) == 1 do end -- the handshake, then a flush
      assert.same({ "X-Aforo-Plugin-Dropped: buffer_full=3,overflow_full=0\r\n" }, posts())
      answer = function() return 202, '{"accepted":2,"failed":0,"errors":[]}' end
      helper.run_timers(env)
      assert.same({ "X-Aforo-Plugin-Dropped: buffer_full=3,overflow_full=0\r\n",
                    "X-Aforo-Plugin-Dropped: buffer_full=3,overflow_full=0\r\n" }, posts())
      env.new_request().headers["X-Tenant-Id"] = "cust_acme"
      helper.access(handler, conf)
      handler:log(conf)
      helper.run_timers(env)
      assert.equal("", posts()[3]) -- reported: no header
    end)

    it("logs the connected line after the handshake", function()
      env.respond(function(_, _, path)
        if path == "/v1/handshake" then
          return 200, '{"sidecar_version":"1.2.3","tenant_id":"t_1","ingest":"ok"}'
        end
        return 200, '{"allowed":true}'
      end)
      first_contact(helper.conf())
      helper.run_timers(env)
      assert.equal("connected to sidecar at http://127.0.0.1:8750 (sidecar 1.2.3, tenant t_1, ingest ok)",
                   helper.last_log(env, "notice"))
    end)

    it("takes the most events per POST from the handshake", function()
      env.respond(function(_, _, path)
        if path == "/v1/handshake" then
          return 200, '{"sidecar_version":"1.2.3","tenant_id":"t_1","ingest":"ok","max_batch_events":7}'
        end
        return 200, '{"accepted":7,"failed":0,"errors":[]}'
      end)
      local conf = helper.conf({ batch_size = 2 })
      first_contact(conf)
      helper.run_timers(env) -- the handshake
      for _ = 1, 9 do
        env.new_request().headers["X-Tenant-Id"] = "cust_acme"
        helper.access(handler, conf)
        handler:log(conf)
      end
      helper.run_timers(env)
      local sizes = {}
      for _, c in ipairs(env.calls) do
        if c.path == "/v1/ingest/batch" then sizes[#sizes + 1] = #helper.decode(c.body).events end
      end
      assert.same({ 7, 2 }, sizes)
    end)

    it("creates the connection pool with the configured size, retries included", function()
      -- The handshake's connection creates the worker's pool of the sidecar_url, and a pool keeps its
      -- first size: a smaller one would make /v1/check reconnect under concurrency.
      local calls = 0
      env.respond(function(_, _, path)
        if path ~= "/v1/handshake" then return 200, '{"allowed":true}' end
        calls = calls + 1
        if calls == 1 then return nil, "connection refused" end
        return 200, '{"sidecar_version":"1.2.3"}'
      end)
      first_contact(helper.conf({ keepalive_pool_size = 300, keepalive_timeout = 30000 }))
      helper.run_timers(env)
      assert.equal(2, #handshake_calls())
      for _, c in ipairs(handshake_calls()) do
        assert.equal("/v1/handshake", c.path)
        assert.equal(300, c.opts.pool_size)
        assert.equal(30000, c.opts.keepalive_timeout)
      end
    end)

    it("logs the ERROR line when the handshake fails and retries later", function()
      env.respond(function() return nil, "connection refused" end)
      first_contact(helper.conf({ fallback_on_error = "block" }))
      helper.run_timers(env, false, 1)
      -- (Kong 3.4: the request's own check failed too, and logged the same line first.)
      assert.equal("ERROR sidecar unreachable at http://127.0.0.1:8750: connection refused (fallback_on_error=block)",
                   errors()[#errors()])
      assert.equal(1, #env.timers)
      assert.is_true(env.timers[1].delay > 0)
    end)
  end)
end)
