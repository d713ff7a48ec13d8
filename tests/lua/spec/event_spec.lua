-- Specs of event.lua: the Aforo event JSON, executionStatus mapping, timestamps and header parsing.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper

describe("aforo-metering event", function()
  local event

  before_each(function()
    helper.setup()
    event = require "kong.plugins.aforo-metering.event"
  end)

  local function base()
    return {
      customer_id = "cust_acme", metric_name = "api_calls", quantity = 1,
      started_at = 1764000000.123, request_id = "abc-1", method = "GET",
      path = "/v1/search/items/42", status = 200, latency_ms = 12.4,
      request_bytes = "120", response_bytes = "345",
    }
  end

  it("maps status codes to executionStatus as Aforo does", function()
    local cases = {
      [200] = "SUCCESS", [201] = "SUCCESS", [302] = "SUCCESS", [399] = "SUCCESS",
      [408] = "TIMEOUT", [504] = "TIMEOUT", [499] = "CANCELLED",
      [400] = "VALIDATION_FAILED", [422] = "VALIDATION_FAILED",
      [401] = "BLOCKED", [403] = "BLOCKED", [429] = "BLOCKED",
      [404] = "ERROR", [402] = "ERROR", [500] = "ERROR", [502] = "ERROR", [503] = "ERROR", [100] = "ERROR",
    }
    for status, expected in pairs(cases) do
      assert.equal(expected, event.execution_status(status), "status " .. status)
    end
  end)

  it("builds a camelCase event with the required fields", function()
    local e = helper.decode(helper.build_event(base()))
    assert.equal("cust_acme", e.customerId)
    assert.equal("api_calls", e.metricName)
    assert.equal(1, e.quantity)
    assert.equal("2025-11-24T16:00:00.123Z", e.occurredAt)
    assert.equal("kong:abc-1", e.idempotencyKey)
    assert.equal("API", e.productType)
    assert.equal("SUCCESS", e.executionStatus)
    assert.equal("/v1/search/items/42", e.endpointPath)
    assert.equal("GET", e.httpMethod)
    assert.equal(200, e.statusCode)
    assert.equal(12, e.responseTimeMs)
    assert.equal(345, e.dataBytes)
    assert.same({ gateway = "kong", request_bytes = 120, response_bytes = 345 }, e.metadata)
  end)

  it("adds service, route, consumer and cost to metadata when known", function()
    local ev = base()
    ev.service, ev.route, ev.consumer, ev.cost, ev.quantity = "search", "search-v1", "alice", 0.004, 2.5
    local e = helper.decode(helper.build_event(ev))
    assert.same({ gateway = "kong", request_bytes = 120, response_bytes = 345, service = "search",
                  route = "search-v1", consumer = "alice", cost = 0.004 }, e.metadata)
    assert.equal(2.5, e.quantity)
  end)

  it("escapes strings that need it and keeps the JSON valid", function()
    local ev = base()
    ev.path = '/a"b\\c\n'
    ev.customer_id = "cust\t1"
    local e = helper.decode(helper.build_event(ev))
    assert.equal('/a"b\\c\n', e.endpointPath)
    assert.equal("cust\t1", e.customerId)
  end)

  it("quotes each string the same way when it is remembered, and past the cache's size", function()
    local samples = { "cust_acme", 'a"b', "x\\y", "t\1u", "/caf\195\169", string.rep("p", 300) }
    for round = 1, 2 do -- the second round answers from the cache
      for _, s in ipairs(samples) do
        assert.equal(s, helper.decode("[" .. event.quote(s) .. "]")[1], s .. " round " .. round)
      end
    end
    for i = 1, 3000 do -- more distinct strings than the cache holds: it starts over, answers stay right
      local s = "cust_" .. i .. (i % 7 == 0 and '"' or "")
      assert.equal(s, helper.decode("[" .. event.quote(s) .. "]")[1])
    end
    assert.equal('"cust_acme"', event.quote("cust_acme"))
  end)

  it("formats occurredAt in UTC with milliseconds and Z, rounding into the next second", function()
    local function occurred_at(t)
      local ev = base()
      ev.started_at = t
      return helper.decode(helper.build_event(ev)).occurredAt
    end
    assert.equal("1970-01-01T00:00:00.000Z", occurred_at(0))
    assert.equal("2025-11-24T16:00:01.000Z", occurred_at(1764000000.9996))
    assert.equal("2025-11-24T16:00:00.050Z", occurred_at(1764000000.05))
    assert.equal("2025-11-24T16:00:00.050Z", occurred_at(1764000000.05)) -- the second's prefix, cached
  end)

  it("takes only positive finite quantities and non-negative costs", function()
    assert.equal(3, event.parse_quantity("3"))
    assert.equal(0.5, event.parse_quantity("0.5"))
    for _, bad in ipairs({ "0", "-1", "abc", "", "nan", "inf", "1e15" }) do
      assert.is_nil(event.parse_quantity(bad), bad)
    end
    assert.is_nil(event.parse_quantity(nil))
    assert.equal(0, event.parse_cost("0"))
    assert.equal(0.004, event.parse_cost("0.004"))
    assert.is_nil(event.parse_cost("-0.1"))
  end)

  it("formats nginx's 32 hex request id as a UUID", function()
    assert.equal("01234567-89ab-cdef-0123-456789abcdef",
                 event.uuid_from_hex("0123456789abcdef0123456789abcdef"))
    assert.is_nil(event.uuid_from_hex("short"))
  end)
  describe("Aforo's field limits", function()
    it("truncates endpointPath to 512 bytes, never inside a UTF-8 character", function()
      local e = base()
      e.path = "/" .. string.rep("a", 2999)
      assert.equal(512, #helper.decode(helper.build_event(e)).endpointPath)
      e.path = "/" .. string.rep("a", 509) .. "\195\169" .. string.rep("b", 10) -- é at bytes 511-512
      assert.equal("/" .. string.rep("a", 509) .. "\195\169", helper.decode(helper.build_event(e)).endpointPath)
      e.path = "/" .. string.rep("a", 510) .. "\226\130\172" -- € at bytes 512-514: cut before it
      assert.equal("/" .. string.rep("a", 510), helper.decode(helper.build_event(e)).endpointPath)
      e.path = "/" .. string.rep("a", 509) .. "%FFtail" -- an escape at bytes 511-513: cut before it
      assert.equal("/" .. string.rep("a", 509), helper.decode(helper.build_event(e)).endpointPath)
      e.path = "/" .. string.rep("a", 510) .. "%FFtail" -- at bytes 512-514
      assert.equal("/" .. string.rep("a", 510), helper.decode(helper.build_event(e)).endpointPath)
      e.path = "/short"
      assert.equal("/short", helper.decode(helper.build_event(e)).endpointPath)
    end)

    it("validates UTF-8 as RFC 3629 does", function()
      assert.is_true(event.valid_utf8("/plain"))
      assert.is_true(event.valid_utf8("/caf\195\169/\226\130\172/\240\159\152\128"))
      for _, bad in ipairs({ "\255", "\195", "\192\175", "\224\128\175", "\237\160\128", "\244\144\128\128",
                             "\128", "\195\40", "\240\159\152" }) do
        assert.is_false(event.valid_utf8("/a" .. bad .. "b"), bad)
      end
    end)

    it("percent-encodes the bytes of a path that are not UTF-8, and keeps valid characters", function()
      assert.equal("/plain", event.clean_utf8("/plain"))
      assert.equal("/caf\195\169", event.clean_utf8("/caf\195\169"))
      assert.equal("/a%FFb/%C3(%80", event.clean_utf8("/a\255b/\195(\128"))
      assert.equal("/%E2%82", event.clean_utf8("/\226\130"))
      assert.equal("/\195\169%FF\195\169", event.clean_utf8("/\195\169\255\195\169"))
      assert.is_true(event.valid_utf8(event.clean_utf8("/\240\159\152\192\175\237\160\128")))
    end)
  end)
end)
