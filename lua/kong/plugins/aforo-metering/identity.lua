-- The customer id from a token an auth plugin verified (customer_id_jwt_claim), issue 20.
--
-- Kong's jwt plugin, once it has verified a token's signature and claims, keeps the token as it came
-- (the compact "header.payload.signature" string) in kong.ctx.shared.authenticated_jwt_token, and
-- older Kong versions also in ngx.ctx.authenticated_jwt_token; it sets nothing for its `anonymous`
-- consumer. Another auth plugin that keeps the token it verified in the same place (openid-connect is
-- said to; its source is not public, so that is not checked here) is read the same way. This module
-- reads the claims of that token only:
-- the Authorization header is never parsed, so a client cannot choose its customer by sending a token
-- nobody verified. A decoded form (a table of claims, or { claims = {...} } / { payload = {...} }) is
-- taken too.
local cjson = require "cjson.safe"

-- ngx is read at each call (not kept from load time), as the specs install a fresh one per spec.
local type = type
local tostring = tostring
local find = string.find
local sub = string.sub
local gsub = string.gsub
local rep = string.rep
local decode = cjson.decode


local _M = {}


local last_token, last_claims -- the previous request's token and claims (keep-alive clients repeat it)


local function b64url_decode(s)
  s = gsub(gsub(s, "-", "+"), "_", "/")
  local pad = #s % 4
  if pad == 1 then
    return nil
  elseif pad > 0 then
    s = s .. rep("=", 4 - pad)
  end
  return ngx.decode_base64(s)
end


-- The claims of a compact JWT (its payload segment), or nil.
local function claims_of_compact(token)
  if token == last_token then
    return last_claims
  end
  local a = find(token, ".", 1, true)
  local b = a and find(token, ".", a + 1, true)
  if not b then
    return nil
  end
  local json = b64url_decode(sub(token, a + 1, b - 1))
  local claims = json and decode(json)
  if type(claims) ~= "table" then
    return nil
  end
  last_token, last_claims = token, claims
  return claims
end


--- The claims of the token an auth plugin verified for this request, or nil.
function _M.verified_claims()
  local token = kong.ctx.shared.authenticated_jwt_token
  if token == nil then
    local ctx = ngx.ctx
    token = ctx and ctx.authenticated_jwt_token
  end
  local t = type(token)
  if t == "string" then
    return claims_of_compact(token)
  elseif t == "table" then
    if type(token.claims) == "table" then
      return token.claims
    elseif type(token.payload) == "table" then
      return token.payload
    end
    return token
  end
  return nil
end


local function present(v)
  return v ~= nil and v ~= ngx.null and v ~= false and v ~= ""
end


--- The customer id conf.customer_id_jwt_claim names in the verified token: the id (a string; a
-- number as its text), or nil when there is no verified token or no such claim; and true as a second
-- value when the token carries one of conf.customer_id_jwt_exclude_claims (the request is then
-- neither checked nor metered).
function _M.jwt_customer(conf)
  local claims = _M.verified_claims()
  if not claims then
    return nil
  end
  local exclude = conf.customer_id_jwt_exclude_claims
  for i = 1, #exclude do
    if present(claims[exclude[i]]) then
      return nil, true
    end
  end
  local v = claims[conf.customer_id_jwt_claim]
  local t = type(v)
  if t == "number" then
    return tostring(v)
  elseif t == "string" and v ~= "" then
    return v
  end
  return nil
end


return _M
