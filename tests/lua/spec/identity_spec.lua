-- Specs of the customer id from a verified JWT (identity.lua) and of exclude_status_codes, status_outcomes and
-- product_type, through the handler with stubbed kong/ngx (the token set the way Kong's jwt plugin sets it).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper
local cjson = require "cjson.safe"

-- Base64 (RFC 4648) in plain Lua for the stubbed ngx.encode_base64 / ngx.decode_base64.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for j = 4, 1, -1 do
      chars[j] = B64:sub(n % 64 + 1, n % 64 + 1)
      n = math.floor(n / 64)
    end
    if not b then chars[3] = "=" end
    if not c then chars[4] = "=" end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

local function unb64(s)
  if #s % 4 ~= 0 then return nil end
  local out = {}
  for i = 1, #s, 4 do
    local n, pad = 0, 0
    for j = i, i + 3 do
      local ch = s:sub(j, j)
      local v
      if ch == "=" then v, pad = 0, pad + 1 else v = B64:find(ch, 1, true) - 1 end
      n = n * 64 + v
    end
    local bytes = string.char(math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
    out[#out + 1] = bytes:sub(1, 3 - pad)
  end
  return table.concat(out)
end

-- A compact JWT of these claims, base64url without padding, as Kong's jwt plugin keeps it after verifying
-- it (kong.ctx.shared.authenticated_jwt_token); the signature is not this plugin's business.
local function jwt(claims)
  local function b64url(s)
    return (b64(s):gsub("+", "-"):gsub("/", "_"):gsub("=", ""))
  end
  return b64url('{"alg":"HS256","typ":"JWT"}') .. "." .. b64url(cjson.encode(claims)) .. ".c2lnbmF0dXJl"
end

describe("aforo-metering identity and status options", function()
  local env, handler

  before_each(function()
    env = helper.setup()
    -- ngx.decode_base64 as lua-nginx-module has it.
    ngx.decode_base64 = unb64
    ngx.encode_base64 = b64
    handler = require "kong.plugins.aforo-metering.handler"
  end)

  local buffered = helper.buffered

  local function customer(conf)
    env.new_request()
    env.req.headers["X-Tenant-Id"] = "cust_header"
    return conf
  end

  local function metered(conf)
    helper.access(handler, conf)
    handler:log(conf)
    local events = buffered(conf)
    return events[#events]
  end

  describe("customer_id_jwt_claim", function()
    local conf
    before_each(function()
      conf = helper.conf({ customer_id_jwt_claim = "tenant_id", customer_id_jwt_exclude_claims = { "impersonated_by" },
                           entitlement_enabled = false })
    end)

    it("takes the claim of the token Kong's jwt plugin verified, over the consumer and the header", function()
      customer(conf)
      env.req.consumer = { id = "c-1", username = "issuer", custom_id = "cust_issuer" }
      env.req.kong_shared.authenticated_jwt_token = jwt({ tenant_id = "cust_from_jwt", sub = "u1" })
      local e = metered(conf)
      assert.equal("cust_from_jwt", e.customerId)
      assert.equal("issuer", e.metadata.consumer)
    end)

    it("reads the claim the same from ngx.ctx (older Kong) and from a decoded token", function()
      customer(conf)
      env.req.shared.authenticated_jwt_token = { claims = { tenant_id = 4242 } } -- ngx.ctx
      assert.equal("4242", metered(conf).customerId)
    end)

    it("falls back to custom_id, username, id, then the header without the claim or the token", function()
      customer(conf)
      env.req.consumer = { id = "c-1", username = "issuer", custom_id = "cust_issuer" }
      env.req.kong_shared.authenticated_jwt_token = jwt({ sub = "u1" })
      assert.equal("cust_issuer", metered(conf).customerId)
      customer(conf)
      env.req.consumer = { id = "c-1", username = "issuer" }
      assert.equal("issuer", metered(conf).customerId)
      customer(conf)
      env.req.consumer = { id = "c-1" }
      assert.equal("c-1", metered(conf).customerId)
      customer(conf)
      assert.equal("cust_header", metered(conf).customerId)
    end)

    it("takes no header when the source is consumer (a v2.2 config)", function()
      local c = helper.conf({ customer_id_jwt_claim = "tenant_id", customer_id_source = "consumer",
                              entitlement_enabled = false })
      customer(c)
      helper.access(handler, c)
      handler:log(c)
      assert.equal(0, #buffered(c))
    end)

    it("neither checks nor meters a token with an exclude claim", function()
      local c = helper.conf({ customer_id_jwt_claim = "tenant_id", customer_id_jwt_exclude_claims = { "impersonated_by" } })
      customer(c)
      env.req.kong_shared.authenticated_jwt_token = jwt({ tenant_id = "cust_a", impersonated_by = "staff_1" })
      helper.access(handler, c)
      handler:log(c)
      assert.equal(0, #env.calls)
      assert.equal(0, #buffered(c))
      -- false or empty is not "carrying" the claim
      customer(c)
      env.req.kong_shared.authenticated_jwt_token = jwt({ tenant_id = "cust_a", impersonated_by = false })
      helper.access(handler, c)
      assert.equal("cust_a", helper.check_body(env, 1).customer_id)
    end)

    it("never reads the Authorization header", function()
      customer(conf)
      env.req.headers["Authorization"] = "Bearer " .. jwt({ tenant_id = "cust_forged" })
      assert.equal("cust_header", metered(conf).customerId)
    end)

    it("ignores a token that is not a JWT", function()
      customer(conf)
      env.req.kong_shared.authenticated_jwt_token = "not-a-jwt"
      assert.equal("cust_header", metered(conf).customerId)
    end)
  end)

  describe("exclude_status_codes, status_outcomes, product_type", function()
    it("meters no response whose status is excluded, and every other", function()
      local conf = helper.conf({ exclude_status_codes = { 404 }, entitlement_enabled = false })
      customer(conf)
      env.req.status = 404
      helper.access(handler, conf)
      handler:log(conf)
      assert.equal(0, #buffered(conf))
      customer(conf)
      env.req.status = 429
      assert.equal("BLOCKED", metered(conf).executionStatus)
    end)

    it("overrides executionStatus per status and sets productType", function()
      local conf = helper.conf({ status_outcomes = { ["404"] = "VALIDATION_FAILED", ["202"] = "PENDING" },
                                 product_type = "AGENTIC_API", entitlement_enabled = false })
      customer(conf)
      env.req.status = 404
      local e = metered(conf)
      assert.equal("VALIDATION_FAILED", e.executionStatus)
      assert.equal("AGENTIC_API", e.productType)
      customer(conf)
      env.req.status = 202
      assert.equal("PENDING", metered(conf).executionStatus)
      customer(conf)
      env.req.status = 500
      assert.equal("ERROR", metered(conf).executionStatus)
    end)

    it("keeps API and the built-in mapping by default", function()
      local conf = helper.conf({ entitlement_enabled = false })
      customer(conf)
      env.req.status = 404
      local e = metered(conf)
      assert.equal("API", e.productType)
      assert.equal("ERROR", e.executionStatus)
    end)

    it("refuses an executionStatus Aforo does not know and a key that is not a status", function()
      local schema = require "kong.plugins.aforo-metering.schema"
      local check = require "aforo_shim.schema"
      assert.is_nil((check.process(schema, { status_outcomes = { ["404"] = "OOPS" } })))
      assert.is_nil((check.process(schema, { status_outcomes = { ["4xx"] = "ERROR" } })))
      assert.is_nil((check.process(schema, { exclude_status_codes = { 99 } })))
      assert.is_nil((check.process(schema, { product_type = "SOAP_API" }))) -- not one of Aforo's types
    end)
  end)
end)
