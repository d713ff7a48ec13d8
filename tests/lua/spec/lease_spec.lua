-- Specs of decision leases (lease.lua through handler.lua) with stubbed kong/ngx: admitting without a
-- round trip, scopes, renewal, reporting what was admitted, and two checks of one key in flight.
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

  describe("decision leases", function()
    local function leased(requests, scope, extra, prefix)
      local t = { decision = "allow", allowed = true, reason = "ok", remaining_quota = 1000,
                  headers = { ["X-RateLimit-Limit"] = "2000", ["X-RateLimit-Remaining"] = "1000" },
                  upstream_headers = { ["X-Margin-Guard-Warning"] = "margin-low" },
                  lease = { requests = requests, ttl_ms = 1000, scope = scope or "route", prefix = prefix } }
      for k, v in pairs(extra or {}) do t[k] = v end
      return decision(t)
    end

    -- Runs the lease renewals the requests started in timers (the handshake's timer is left pending).
    local function renewals()
      local pending = env.timers
      env.timers = {}
      for _, t in ipairs(pending) do
        if type(t.args[1]) == "table" then
          t.fn(false, unpack(t.args))
        else
          env.timers[#env.timers + 1] = t
        end
      end
    end
    local function pending_renewals()
      local n = 0
      for _, t in ipairs(env.timers) do
        if type(t.args[1]) == "table" then n = n + 1 end
      end
      return n
    end
    local function refused() return nil, "connection refused", false end -- never reached the sidecar
    local function timed_out() return nil, "timeout", true end           -- went out, no answer
    local deny = decision({ decision = "block", allowed = false, status = 429, reason = "margin_block",
                            retry_after = 1800 })

    local function request(conf, path, tenant)
      local r = env.new_request()
      r.headers["X-Tenant-Id"] = tenant or "cust_acme"
      if path then r.path = path end
      helper.access(handler, conf)
      handler:header_filter(conf)
      return r
    end

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

    -- "lease_unused": what ended leases left unadmitted, so that the sidecar gives it back to its
    -- chunk (it keeps unreported lease units counted as used, however late the report).
    it("reports what a replaced lease left unadmitted with the next check", function()
      env.respond(leased(8))
      local conf = helper.conf()
      request(conf)                      -- check 1: lease of 8, renewed at 4 left
      for _ = 1, 4 do request(conf) end
      request(conf)                      -- renews (3 left), reporting 4
      renewals()                         -- the new lease replaces it: its 3 are unused, and so is
                                         -- the unit of the renewing request (the check counted it)
      assert.equal(0, check_body(2).lease_unused)
      for _ = 1, 5 do request(conf) end  -- 4 under the new lease, the 5th renews
      renewals()
      assert.equal(3, #env.calls)
      assert.equal(4, check_body(3).leased)
      assert.equal(4, check_body(3).lease_unused) -- 4 + 4 = the lease of 8
    end)

    it("reports what an expired lease left unadmitted", function()
      env.respond(leased(50))
      local conf = helper.conf()
      request(conf)
      request(conf)
      request(conf)
      env.clock.t = env.clock.t + 1.001
      request(conf)
      assert.equal(2, check_body(2).leased)
      assert.equal(48, check_body(2).lease_unused)
      env.clock.t = env.clock.t + 1.001
      request(conf)
      assert.is_nil(check_body(3).leased)
      assert.equal(50, check_body(3).lease_unused) -- the lease of check 2, never used
    end)

    it("reports what a lease ended by a deny left unadmitted", function()
      env.respond(leased(8))
      local conf = helper.conf()
      request(conf)
      for _ = 1, 4 do request(conf) end
      env.respond(deny)
      request(conf) -- renewal due: admitted (3 left), the renewal is denied
      renewals()
      request(conf)
      assert.equal(3, #env.calls)
      assert.equal(1, check_body(3).leased)
      assert.equal(3, check_body(3).lease_unused)
    end)

    it("sends a failed check's report again, same id and counts, marked sent before", function()
      env.respond(leased(50))
      local conf = helper.conf()
      request(conf)
      request(conf)
      request(conf)
      env.clock.t = env.clock.t + 1.001
      env.respond(timed_out)
      request(conf) -- fails: leased 2 and lease_unused 48 sent; counted by the sidecar or not
      local failed = check_body(2)
      assert.equal(2, failed.leased)
      assert.equal(48, failed.lease_unused)
      assert.is_string(failed.report_id)
      assert.is_nil(failed.report_resent)
      env.respond(leased(50))
      request(conf, "/v1/other") -- another path of the route: the lease's kept report goes with it
      assert.equal(3, #env.calls)
      local again = check_body(3)
      assert.equal(failed.report_id, again.report_id) -- the sidecar counts an id once
      assert.is_true(again.report_resent)
      assert.equal(2, again.leased)
      assert.equal(48, again.lease_unused)
      request(conf) -- under the new lease: nothing more to report until it renews
      env.clock.t = env.clock.t + 1.001
      request(conf)
      local next_one = check_body(4)
      assert.are_not.equal(failed.report_id, next_one.report_id) -- answered: a new report
      assert.is_nil(next_one.report_resent)
      assert.equal(1, next_one.leased)
      assert.equal(49, next_one.lease_unused)
    end)

    it("a report that never reached the sidecar goes again not marked sent before", function()
      env.respond(leased(50))
      local conf = helper.conf()
      request(conf)
      request(conf)
      env.clock.t = env.clock.t + 1.001
      env.respond(refused)
      request(conf)
      env.respond(function() return 503, '{"reason":"no_snapshot"}' end) -- refused before counting
      request(conf)
      env.respond(leased(50))
      request(conf)
      local first, last = check_body(2), check_body(4)
      assert.equal(first.report_id, last.report_id)
      assert.is_nil(last.report_resent) -- the sidecar may then give its unused units back
      assert.equal(1, last.leased)
      assert.equal(49, last.lease_unused)
    end)

    it("grows a kept report by what the key gathered since (its counts are cumulative)", function()
      env.respond(leased(4))
      local conf = helper.conf()
      request(conf)                       -- lease of 4, renewed from 2 left
      request(conf)
      request(conf)                       -- 2 admitted, 2 left
      env.respond(timed_out)
      request(conf)                       -- renewal due: admitted (1 left), its check in a timer
      renewals()                          -- fails: its report (2, and its own request) is kept
      local renewal = check_body(2)
      assert.is_true(renewal.renewal)
      assert.equal(2, renewal.leased)
      request(conf)                       -- admitted (0 left)
      env.respond(leased(4))
      request(conf)                       -- asks: the kept report, grown by the one admitted since
      local body = check_body(3)
      assert.equal(renewal.report_id, body.report_id)
      assert.is_true(body.report_resent)
      assert.is_nil(body.renewal)
      assert.equal(4, body.leased)        -- 2 + the renewal's own + 1
    end)

    it("every check carries a report id, a new one once a check is answered", function()
      env.respond(leased(4))
      local conf = helper.conf()
      request(conf)
      env.clock.t = env.clock.t + 1.001
      request(conf)
      local first, second = check_body(1), check_body(2)
      assert.is_string(first.report_id)
      assert.is_string(second.report_id)
      assert.are_not.equal(first.report_id, second.report_id)
      assert.equal(0, first.lease_unused)
      assert.is_nil(first.leased)
    end)

    it("a check with nothing to report whose answer is lost sends its id again (its lease goes back)", function()
      local conf = helper.conf()
      env.respond(timed_out)
      request(conf, nil, "cust_other") -- no lease, nothing to report; the answer (and a lease in it) is lost
      env.respond(refused)
      request(conf, nil, "cust_other") -- never reached the sidecar: still to be sent
      env.respond(leased(4))
      request(conf, nil, "cust_other")
      local lost, again = check_body(1), check_body(3)
      assert.equal(lost.report_id, again.report_id)
      assert.is_true(again.report_resent)
      env.clock.t = env.clock.t + 1.001
      env.respond(function() return 503, "{}" end) -- refused before counting: the lease's 4 unused kept
      request(conf, nil, "cust_other")
      env.respond(leased(4))
      request(conf, nil, "cust_other")
      assert.equal(check_body(4).report_id, check_body(5).report_id)
      assert.is_nil(check_body(5).report_resent)
      assert.equal(4, check_body(5).lease_unused)
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
