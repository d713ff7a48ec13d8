-- Specs of the plugin's lease reports (lease.lua through handler.lua): what ended leases left unadmitted
-- ("lease_unused"), and the report_id that lets a report lost with its answer go again, counted once.
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

  describe("lease reports", function()
    local function leased(requests, scope, extra, prefix) return fx.leased(helper, requests, scope, extra, prefix) end
    local function renewals() return fx.renewals(env) end
    local refused, timed_out = fx.refused, fx.timed_out
    local deny = decision({ decision = "block", allowed = false, status = 429, reason = "margin_block",
                            retry_after = 1800 })
    local function request(conf, path, tenant) return fx.request(helper, env, handler, conf, path, tenant) end

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
  end)
end)
