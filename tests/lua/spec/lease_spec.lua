-- Specs of decision leases (lease.lua through handler.lua) with stubbed kong/ngx: admitting without a
-- round trip, scopes, renewal, reporting what was admitted, and two checks of one key in flight (what
-- ended leases left, and reports sent again after a lost answer: lease_report_spec.lua).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper
local fx = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lease_fixture.lua")

describe("aforo-metering handler", function()
  local env, handler

  before_each(function()
    env = helper.setup()
    handler = require "kong.plugins.aforo-metering.handler"
  end)

  local function decision(t) return helper.answer(t) end
  local function check_body(i) return helper.check_body(env, i) end
  local function errors() return helper.errors(env) end

  describe("decision leases", function()
    local function leased(requests, scope, extra, prefix) return fx.leased(helper, requests, scope, extra, prefix) end
    local function renewals() return fx.renewals(env) end
    local function pending_renewals() return fx.pending_renewals(env) end
    local refused = fx.refused
    local deny = decision({ decision = "block", allowed = false, status = 429, reason = "margin_block",
                            retry_after = 1800 })
    local function request(conf, path, tenant) return fx.request(helper, env, handler, conf, path, tenant) end

    it("admits the leased requests without asking, counting X-RateLimit-Remaining down", function()
      env.respond(leased(6)) -- 3 admitted, then renewed at half
      local conf = helper.conf()
      request(conf)
      assert.equal(1, #env.calls)
      for i = 1, 3 do
        local r = request(conf)
        assert.is_nil(r.exited)
        assert.equal(tostring(1000 - i), r.set_headers["X-RateLimit-Remaining"])
        assert.equal("2000", r.set_headers["X-RateLimit-Limit"])
        assert.same({ ["X-Margin-Guard-Warning"] = "margin-low" }, r.upstream_headers)
      end
      assert.equal(1, #env.calls)
      local r = request(conf) -- half used: admitted too, and renews in the background
      assert.is_nil(r.exited)
      assert.equal("996", r.set_headers["X-RateLimit-Remaining"])
      assert.equal(1, #env.calls) -- it did not wait for the check
      renewals()
      assert.equal(2, #env.calls)
      local body = check_body(2)
      assert.equal(3, body.leased) -- the 3 before it; it is the check's own quantity
      assert.equal(1, body.quantity)
      assert.equal(r.ctx.request_id, body.request_id)
      assert.is_nil(check_body(1).leased)
    end)

    it("counts X-RateLimit-Remaining down across a renewal answered after later requests", function()
      local remaining = 1000
      env.respond(function(_, _, _, body)
        local b = helper.decode(body)
        remaining = remaining - 1 - (b.leased or 0) -- the sidecar counts the check and what it reports
        return helper.answer({ decision = "allow", allowed = true, reason = "ok", remaining_quota = remaining,
                               headers = { ["X-RateLimit-Remaining"] = tostring(remaining) },
                               lease = { requests = 8, ttl_ms = 1000, scope = "route" } })()
      end)
      local conf = helper.conf()
      local shown = { tonumber(request(conf).set_headers["X-RateLimit-Remaining"]) }
      for _ = 1, 6 do -- the 5th renews in the background; the 6th and 7th go on before its answer
        shown[#shown + 1] = tonumber(request(conf).set_headers["X-RateLimit-Remaining"])
      end
      renewals()
      for _ = 1, 3 do
        shown[#shown + 1] = tonumber(request(conf).set_headers["X-RateLimit-Remaining"])
      end
      for i = 2, #shown do
        assert.equal(shown[i - 1] - 1, shown[i])
      end
    end)

    it("sends one renewal at a time, and the requests meanwhile use what is left", function()
      env.respond(leased(8))
      local conf = helper.conf()
      request(conf)
      for _ = 1, 7 do assert.is_nil(request(conf).exited) end -- 4 below the half, the renewing one, 2 more
      renewals()
      assert.equal(2, #env.calls)
      for _ = 1, 3 do request(conf) end -- under the new lease
      assert.equal(2, #env.calls)
    end)

    it("gives each leased request its own X-RateLimit-Remaining, also while earlier ones wait", function()
      env.respond(leased(6))
      local conf = helper.conf()
      request(conf)
      local r1 = env.new_request()
      r1.headers["X-Tenant-Id"] = "cust_acme"
      helper.access(handler, conf)
      local r2 = env.new_request()
      r2.headers["X-Tenant-Id"] = "cust_acme"
      helper.access(handler, conf)
      env.req = r1
      handler:header_filter(conf)
      env.req = r2
      handler:header_filter(conf)
      assert.equal("999", r1.set_headers["X-RateLimit-Remaining"])
      assert.equal("998", r2.set_headers["X-RateLimit-Remaining"])
    end)

    it("asks again once the lease expires and reports what it admitted", function()
      env.respond(leased(50))
      local conf = helper.conf()
      request(conf)
      request(conf)
      request(conf)
      env.clock.t = env.clock.t + 1.001
      request(conf)
      assert.equal(2, #env.calls)
      assert.equal(2, check_body(2).leased)
    end)

    it("keys a lease by customer, route, method and feature, and by path for scope path", function()
      env.respond(leased(10, "path"))
      local conf = helper.conf()
      request(conf, "/v1/search/a")
      request(conf, "/v1/search/a")
      assert.equal(1, #env.calls)
      request(conf, "/v1/search/b")     -- another path
      assert.equal(2, #env.calls)
      request(conf, "/v1/search/a", "cust_other")
      assert.equal(3, #env.calls)
      request(helper.conf({ feature = "reports" }), "/v1/search/a")
      assert.equal(4, #env.calls)
      env.respond(leased(10, "route"))
      local other = helper.conf({ feature = "x" })
      request(other, "/v1/search/a")
      request(other, "/v1/search/zzz") -- scope route: any path
      assert.equal(5, #env.calls)
    end)

    it("keys a lease by the protocol operation too (a feature rule may match on it)", function()
      env.respond(leased(10, "route"))
      local conf = helper.conf({ graphql_enabled = true })
      local function gql(op)
        local r = env.new_request()
        r.headers["X-Tenant-Id"] = "cust_acme"
        r.method = "POST"
        r.path = "/graphql"
        r.headers["Content-Type"] = "application/json"
        r.body = '{"query":"query ' .. op .. ' { a }"}'
        helper.access(handler, conf)
        handler:header_filter(conf)
      end
      gql("Search")
      gql("Search")
      assert.equal(1, #env.calls)
      assert.equal("Search", check_body(1).operation)
      gql("Report") -- another operation: its own check and lease
      assert.equal(2, #env.calls)
      assert.equal("Report", check_body(2).operation)
      gql("Report")
      assert.equal(2, #env.calls)
    end)

    it("keeps the count of a check that failed for the next one", function()
      env.respond(leased(1))
      local conf = helper.conf()
      request(conf)
      request(conf) -- under the lease
      env.respond(function() return nil, "connection refused" end)
      local r = request(conf) -- fallback allow; the 1 admitted is not reported yet
      assert.is_true(r.ctx.fallback)
      assert.equal(1, check_body(2).leased)
      env.respond(leased(1))
      request(conf)
      assert.equal(1, check_body(3).leased)
      request(conf)
      request(conf)
      assert.equal(1, check_body(4).leased)
    end)

    it("takes no lease from a deny, and a deny is never answered from a lease", function()
      env.respond(leased(5, "route", { decision = "block", allowed = false, status = 429,
                                        reason = "quota_exceeded", retry_after = 10 }))
      local conf = helper.conf()
      local r = request(conf)
      assert.equal(429, r.exited.status)
      r = request(conf)
      assert.equal(429, r.exited.status)
      assert.equal(2, #env.calls)
    end)

    it("ignores a malformed lease", function()
      local conf = helper.conf()
      for _, bad in ipairs({ { requests = 0, ttl_ms = 1000 }, { requests = "x", ttl_ms = 1000 },
                             { requests = 5, ttl_ms = -1 }, { requests = 5 } }) do
        env.respond(decision({ decision = "allow", allowed = true, reason = "ok", lease = bad }))
        request(conf)
      end
      request(conf)
      assert.equal(5, #env.calls)
    end)

    it("covers the paths under the lease's prefix, segment by segment", function()
      env.respond(leased(10, "prefix", nil, "/v1/search"))
      local conf = helper.conf()
      request(conf, "/v1/search/items/1")
      request(conf, "/v1/search/items/2")
      request(conf, "/v1/search")
      assert.equal(1, #env.calls)
      request(conf, "/v1/searchx") -- not under the prefix
      assert.equal(2, #env.calls)
    end)

    it("renews from half left while the other requests keep using the lease", function()
      env.respond(leased(8))
      local conf = helper.conf()
      request(conf)                      -- check 1: lease of 8, renewed at 4 left
      for _ = 1, 4 do request(conf) end  -- 4 admitted
      assert.equal(1, #env.calls)
      request(conf)                      -- 4 left: admitted, renews in the background, reporting 4
      renewals()
      assert.equal(2, #env.calls)
      assert.equal(4, check_body(2).leased)
      for _ = 1, 4 do request(conf) end  -- under the new lease
      assert.equal(2, #env.calls)
    end)

    it("renews after three quarters of the lease's lifetime", function()
      env.respond(leased(50))
      local conf = helper.conf()
      request(conf)
      request(conf)
      env.clock.t = env.clock.t + 0.8
      request(conf)
      renewals()
      assert.equal(2, #env.calls)
      assert.equal(1, check_body(2).leased)
    end)

    it("a deny ends the lease at once, and its count is still reported", function()
      env.respond(leased(8))
      local conf = helper.conf()
      request(conf)
      for _ = 1, 4 do request(conf) end
      env.respond(deny)
      local r = request(conf) -- renewal due: admitted under the lease, the check goes out in a timer
      assert.is_nil(r.exited)
      renewals()              -- the renewal is denied
      r = request(conf)       -- 3 were left, but the sidecar's latest answer governs: it asks
      assert.equal(429, r.exited.status)
      assert.equal(3, #env.calls)
      assert.equal(4, check_body(2).leased)
      assert.equal(1, check_body(3).leased) -- the request admitted while its renewal was denied
    end)

    it("admits under a live lease when its renewal fails, and falls back once it runs out", function()
      env.respond(leased(4))
      local conf = helper.conf({ fallback_on_error = "block" })
      request(conf)                       -- lease of 4, renewed from 2 left
      request(conf)
      request(conf)                       -- 2 admitted, 2 left
      env.respond(refused)
      assert.is_nil(request(conf).exited) -- renewal due: admitted (1 left)
      renewals()                          -- the renewal fails: this lease tries no more renewals
      assert.is_nil(request(conf).exited) -- admitted (0 left)
      assert.equal(0, pending_renewals())
      assert.equal(2, #env.calls)
      assert.equal(503, request(conf).exited.status) -- nothing left: asks, fails, falls back
      assert.equal(3, #env.calls)
      assert.equal(1, #errors())          -- rate-limited
      env.respond(leased(4))
      request(conf)
      assert.equal(4, check_body(4).leased) -- every request admitted under the lease, reported once
    end)

    -- Two checks of one key in flight in one worker: a renewal in its timer, and a request that
    -- found nothing left and asked itself.
    it("a deny ends the lease another check settled meanwhile", function()
      local conf = helper.conf()
      env.respond(leased(2))
      request(conf)         -- lease of 2
      request(conf)         -- admitted, 1 left: the next renews
      request(conf)         -- A: admitted (0 left), its renewal waits in a timer
      env.respond(leased(2))
      request(conf)         -- B: nothing left: asks (call 2) and settles a new lease
      env.respond(deny)
      renewals()            -- A's renewal (call 3), answered with a deny after B's allow
      env.respond(leased(2))
      request(conf)         -- the new lease admits nothing more: this one asks
      assert.equal(4, #env.calls)
      assert.equal(1, check_body(4).leased) -- A, admitted but not counted by its denied renewal
    end)

    it("a failed renewal whose lease was replaced meanwhile keeps its count for the next check", function()
      local conf = helper.conf()
      env.respond(leased(2))
      request(conf)         -- lease of 2
      request(conf)         -- admitted: 1 left, the next renews
      request(conf)         -- A: admitted (0 left), its renewal reports request 2
      env.respond(leased(4))
      request(conf)         -- B: nothing left: asks (call 2) and settles a new lease
      assert.is_nil(check_body(2).leased)
      env.respond(function() return nil, "timeout" end)
      renewals()            -- A's renewal (call 3) times out
      env.clock.t = env.clock.t + 2
      env.respond(leased(4))
      request(conf)         -- after expiry: request 2 and A are reported now, not lost with the old lease
      assert.equal(4, #env.calls)
      assert.equal(2, check_body(4).leased)
    end)

    it("gives a renewal's count back when the worker exits before it runs", function()
      local conf = helper.conf()
      env.respond(leased(4))
      request(conf)         -- lease of 4, renewed from 2 left
      request(conf)
      request(conf)
      request(conf)         -- renewal due: in a timer that never gets to run
      assert.equal(1, pending_renewals())
      helper.run_timers(env, true) -- premature: the worker exits
      env.clock.t = env.clock.t + 2
      request(conf)
      assert.equal(2, #env.calls)
      assert.equal(3, check_body(2).leased) -- requests 2, 3 and 4
    end)

    it("drops expired leases past 10000 keys and every 10 s, keeping live ones", function()
      env.respond(leased(5))
      local conf = helper.conf()
      local leases = require "kong.plugins.aforo-metering.lease"
      for i = 1, 10050 do
        request(conf, nil, "cust_" .. i)
      end
      assert.equal(10050, #env.calls)
      assert.equal(10050, leases._slots()) -- all live
      env.clock.t = env.clock.t + 5         -- all expired, not yet time to sweep
      request(conf, nil, "cust_a")
      assert.equal(10051, leases._slots())
      env.clock.t = env.clock.t + 6
      request(conf, nil, "cust_b")
      assert.equal(1, leases._slots())
    end)
  end)
end)
