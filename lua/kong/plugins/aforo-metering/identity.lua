-- Who a request is billed to: the customer id from a token an auth plugin verified
-- (customer_id_jwt_claim), else an authenticated consumer, else the tenant header (customer()).
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
local null = cjson.null


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


-- Customer id per customer_id_source: the claim customer_id_jwt_claim of the token an auth plugin
-- verified, else an authenticated consumer (custom_id, username, id), else the header; a verified
-- identity wins over the header so a client cannot bill someone else. Returns id, consumer name, and
-- true as a third value for a token with one of customer_id_jwt_exclude_claims (not metered).
function _M.customer(conf)
  local source = conf.customer_id_source
  local consumer_name, id
  if source ~= "header" then
    local claim = conf.customer_id_jwt_claim
    if claim and claim ~= null then
      local exclude_token
      id, exclude_token = _M.jwt_customer(conf)
      if exclude_token then
        return nil, nil, true
      end
    end
    local consumer = kong.client.get_consumer()
    -- An auth plugin's `anonymous` consumer comes without a credential (Kong's auth plugins set one
    -- only for a client that authenticated): it is nobody, and the next identity source applies.
    -- Else all unauthenticated traffic would be billed to it, whatever tenant it names.
    if consumer and kong.client.get_credential() == nil then
      consumer = nil
    end
    if consumer and not id then
      id = consumer.custom_id
      if id == nil or id == null or id == "" then
        id = consumer.username
      end
      if id == nil or id == null or id == "" then
        id = consumer.id
      end
    end
    if consumer then
      consumer_name = consumer.username
      if consumer_name == nil or consumer_name == null then
        consumer_name = consumer.id
      end
    end
  end
  if not id and source ~= "consumer" then
    id = kong.request.get_header(conf.tenant_header)
    if id == "" then
      id = nil
    end
  end
  return id, consumer_name
end


return _M
