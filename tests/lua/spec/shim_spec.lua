-- Specs of the Kong PDK shim's kong.response.clear_header (Kong 3.x behaviour) with a stubbed ngx.header.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper

describe("PDK shim kong.response.clear_header", function()
  local kong

  before_each(function()
    helper.setup()
    ngx.header = { ["X-Aforo-Cost"] = "0.5", ["X-Other"] = "kept" }
    ngx.headers_sent = false
    package.loaded["aforo_shim.pdk"] = nil
    kong = require("aforo_shim.pdk").install()
  end)

  it("removes the header from the response", function()
    kong.response.clear_header("X-Aforo-Cost")
    assert.is_nil(ngx.header["X-Aforo-Cost"])
    assert.equal("kept", ngx.header["X-Other"])
  end)

  it("accepts a header that is not there", function()
    kong.response.clear_header("X-Missing")
    assert.equal("kept", ngx.header["X-Other"])
  end)

  it("raises for a name that is not a string", function()
    assert.has_error(function() kong.response.clear_header(nil) end, "header name must be a string")
    assert.has_error(function() kong.response.clear_header(42) end, "header name must be a string")
  end)

  it("raises once the headers have been sent", function()
    ngx.headers_sent = true
    assert.has_error(function() kong.response.clear_header("X-Aforo-Cost") end, "headers have already been sent")
    assert.equal("0.5", ngx.header["X-Aforo-Cost"])
  end)
end)

describe("PDK shim, as Kong 3.x", function()
  local kong, phase

  before_each(function()
    helper.setup()
    phase = "access"
    ngx.get_phase = function() return phase end
    ngx.header = {}
    ngx.headers_sent = false
    ngx.ctx = {}
    ngx.req.get_method = function() return "GET" end
    ngx.req.set_header = function() end
    package.loaded["aforo_shim.pdk"] = nil
    kong = require("aforo_shim.pdk").install()
  end)

  describe("phase checks", function()
    it("refuses request functions in a timer, as Kong (no Kong phase there)", function()
      phase = "timer"
      assert.has_error(function() kong.request.get_method() end)
      assert.has_error(function() kong.client.get_consumer() end)
    end)

    it("takes kong.response.get_status only from header_filter on", function()
      assert.has_error(function() kong.response.get_status() end,
                       "function cannot be called in access phase (only in: header_filter, body_filter, log, admin_api)")
      phase = "log"
      ngx.status = 201
      assert.equal(201, kong.response.get_status())
    end)

    it("refuses response header changes and kong.response.exit in the log phase", function()
      phase = "log"
      assert.has_error(function() kong.response.set_header("X-A", "1") end)
      assert.has_error(function() kong.response.clear_header("X-A") end)
      assert.has_error(function() kong.response.exit(403) end)
    end)

    it("refuses the consumer before access, and upstream headers after it", function()
      phase = "rewrite"
      assert.has_error(function() kong.client.get_credential() end,
                       "function cannot be called in rewrite phase (only in: access, header_filter, body_filter, log)")
      phase = "header_filter"
      assert.has_error(function() kong.service.request.set_header("X-A", "1") end)
    end)
  end)

  describe("header values", function()
    it("takes strings, numbers and booleans", function()
      phase = "header_filter"
      kong.response.set_header("X-A", "1")
      kong.response.set_header("X-B", 2)
      kong.response.set_header("X-C", true)
      assert.same({ ["X-A"] = "1", ["X-B"] = "2", ["X-C"] = "true" }, ngx.header)
    end)

    it("raises for anything else, as Kong does", function()
      phase = "header_filter"
      assert.has_error(function() kong.response.set_header("X-A", nil) end)
      assert.has_error(function() kong.response.set_header("X-A", {}) end)
      assert.has_error(function() kong.response.set_headers({ ["X-A"] = ngx.null }) end)
      phase = "access"
      assert.has_error(function() kong.service.request.set_header("X-A", { a = 1 }) end)
      assert.has_error(function() kong.response.exit(429, { message = "x" }, { ["Retry-After"] = {} }) end)
    end)
  end)

  describe("kong.request.get_path", function()
    local function path(raw)
      return require("aforo_shim.pdk").normalize_path(raw)
    end

    it("keeps an encoded slash encoded (upper-cased), unlike nginx's $uri", function()
      assert.equal("/a%2Fb", path("/a%2fb"))
      assert.equal("/v1/files/dir%2Ffile", path("/v1/files/dir%2Ffile"))
    end)

    it("decodes other escapes, resolves dot segments and merges slashes", function()
      assert.equal("/t/Abc 123\195\184%2F/test/", path("/t/Abc%20123%C3%B8%2f/parent/..//test/./"))
      assert.equal("/a/c", path("/a/./b/../c"))
      assert.equal("/", path("/.."))
      assert.equal("/v1/\255", path("/v1/%FF"))
    end)

    it("reads the raw request line", function()
      ngx.var.request_uri = "/a%2Fb/./c?x=1"
      assert.equal("/a%2Fb/c", kong.request.get_path())
    end)
  end)
end)


describe("PDK shim, the access phase as Kong's runloop runs it", function()
  local kong, runloop, sent, exited, log_errs

  before_each(function()
    helper.setup()
    ngx.get_phase = function() return "access" end
    ngx.header = {}
    ngx.headers_sent = false
    ngx.ctx = {}
    sent, exited, log_errs = {}, nil, {}
    ngx.print = function(s) sent[#sent + 1] = s end
    ngx.exit = function(code) exited = code end
    package.loaded["aforo_shim.pdk"] = nil
    package.loaded["aforo_shim.runloop"] = nil
    kong = require("aforo_shim.pdk").install()
    kong.log.err = function(...) log_errs[#log_errs + 1] = table.concat({ ... }) end
    runloop = require "aforo_shim.runloop"
  end)

  it("defers kong.response.exit to the end of the phase; nothing after it runs", function()
    local after, seen_inside = false, nil
    local handler = {
      access = function(_, conf)
        assert.is_truthy(coroutine.running()) -- in a coroutine, as Kong runs it
        kong.response.exit(429, { message = conf.msg }, { ["Retry-After"] = 3 })
        after = true
      end,
    }
    local orig_exit = ngx.exit
    ngx.exit = function(code)
      seen_inside = #sent -- the body is printed before ngx.exit, both after the handler returned
      orig_exit(code)
    end
    assert.is_true((runloop.access(handler, { msg = "quota" })))
    assert.is_false(after)
    assert.equal(429, ngx.status)
    assert.equal(429, exited)
    assert.equal(1, seen_inside)
    assert.equal('{"message":"quota"}', sent[1])
    assert.equal("3", ngx.header["Retry-After"])
    assert.equal("application/json; charset=utf-8", ngx.header["Content-Type"])
    assert.equal(#sent[1], ngx.header["Content-Length"])
    assert.is_true(ngx.ctx.KONG_EXITED)
    assert.is_nil(ngx.ctx.delay_response)
  end)

  it("stores the response, then sends it with the headers given to exit", function()
    local printed_during
    runloop.access({ access = function()
      local co = coroutine.wrap(function() end) -- a coroutine of the handler's own does not disturb it
      co()
      printed_during = function() return #sent end
      kong.response.exit(403, "no", { ["Content-Type"] = "text/plain" })
    end })
    local dr = ngx.ctx.delayed_response
    assert.same({ 403, "no", { ["Content-Type"] = "text/plain" } }, { dr.status_code, dr.content, dr.headers })
    assert.equal("text/plain", ngx.header["Content-Type"])
    assert.equal("no", sent[1])
    assert.equal(1, printed_during())
  end)

  it("answers 500 with Kong's JSON message when the handler raises, and logs the error", function()
    local ended, raised = runloop.access({ access = function() error("boom") end })
    assert.is_true(ended)
    assert.matches("boom", raised)
    assert.equal(500, ngx.status)
    assert.equal('{"message":"An unexpected error occurred"}', sent[1])
    assert.matches("boom", log_errs[1])
  end)

  it("lets a handler that does not exit go on to the upstream", function()
    assert.is_false(runloop.access({ access = function() kong.response.set_header("X-A", "1") end }))
    assert.is_nil(exited)
    assert.equal("1", ngx.header["X-A"])
  end)

  it("sends at once outside the access runloop (rewrite)", function()
    ngx.get_phase = function() return "rewrite" end
    local after
    kong.response.exit(401, { message = "x" })
    after = true  -- reached: outside the access runloop exit does not yield
    assert.is_true(after)
    assert.equal(401, exited)
  end)

  it("checks the arguments at the call, not at the flush", function()
    local ended, raised = runloop.access({ access = function() kong.response.exit(429, 42) end })
    assert.is_true(ended)
    assert.matches("body must be a nil, string or table", raised)
    assert.equal(500, ngx.status)
  end)
end)
