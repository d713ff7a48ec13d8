-- Specs of client.lua over a scripted cosocket: the request head it writes, with and without sidecar_token.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper

describe("aforo-metering client", function()
  local client, sent

  before_each(function()
    helper.setup()
    sent = {}
    -- A socket that records what is sent and answers one 200 with a JSON body.
    ngx.socket.tcp = function()
      local response = { "HTTP/1.1 200 OK", "Content-Type: application/json", "Content-Length: 2", "" }
      local i = 0
      return {
        settimeouts = function() end,
        connect = function() return true end,
        getreusedtimes = function() return 0 end,
        send = function(_, data)
          local parts = {}
          for k, v in ipairs(data) do parts[k] = tostring(v) end
          sent[#sent + 1] = table.concat(parts)
          return true
        end,
        receive = function(_, what)
          if what == "*l" then
            i = i + 1
            return response[i]
          end
          return "{}"
        end,
        setkeepalive = function() return true end,
        close = function() return true end,
      }
    end
    package.loaded["kong.plugins.aforo-metering.client"] = nil
    client = require "kong.plugins.aforo-metering.client"
  end)

  local TOKEN = "tok_0123456789abcdef0123456789abcdef"
  local function opts(conf)
    return { timeout = 50, keepalive_timeout = 1000, pool_size = 4, authorization = client.authorization(conf) }
  end

  it("writes Authorization: Bearer <sidecar_token> in the head of GETs and POSTs", function()
    local conf = helper.conf({ sidecar_token = TOKEN })
    assert.equal(200, (client.request(conf.sidecar_url, "GET", "/v1/handshake", nil, opts(conf))))
    assert.equal(200, (client.request(conf.sidecar_url, "POST", "/v1/check", "{}", opts(conf))))
    for _, req in ipairs(sent) do
      local head = req:match("^(.-\r\n\r\n)")
      assert.truthy(head:find("\r\nAuthorization: Bearer " .. TOKEN .. "\r\n", 1, true), head)
    end
    assert.truthy(sent[2]:find("\r\n\r\n{}$"))
  end)

  it("writes no Authorization header without a token, even after a request with one", function()
    local with = helper.conf({ sidecar_token = TOKEN })
    client.request(with.sidecar_url, "POST", "/v1/check", "{}", opts(with))
    local conf = helper.conf()
    assert.is_nil(client.authorization(conf))
    client.request(conf.sidecar_url, "POST", "/v1/check", "{}", opts(conf))
    client.request(conf.sidecar_url, "GET", "/v1/handshake", nil, opts(conf))
    assert.is_nil(sent[2]:lower():find("authorization", 1, true))
    assert.is_nil(sent[3]:lower():find("authorization", 1, true))
  end)
end)
