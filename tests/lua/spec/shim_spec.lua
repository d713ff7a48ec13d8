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
