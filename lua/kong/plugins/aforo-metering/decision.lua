-- Applying the sidecar's decision to the request (docs/design/decision-contract.md#deny-body): a deny exits with the
-- contract's status, body and headers; an allow sets upstream headers now and keeps the client
-- headers for header_filter; a request admitted under a decision lease gets the lease's headers
-- with its own remaining quota.
local kong = kong
local ngx = ngx
local null = ngx.null
local type = type
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local max = math.max
local ceil = math.ceil


local _M = {}

local header_values -- below

-- Status when the sidecar's answer lacks a usable one.
local REASON_STATUS = {
  quota_exceeded = 429, margin_throttle = 429, margin_block = 429,
  feature_not_entitled = 403, subscription_inactive = 402, unknown_customer = 403,
}
local REASON_MESSAGE = {
  quota_exceeded = "quota exceeded",
  margin_throttle = "too many requests",
  margin_block = "service temporarily unavailable for this account",
  feature_not_entitled = "plan does not include this feature",
  subscription_inactive = "subscription inactive",
  unknown_customer = "unknown customer",
}


local function deny(decision)
  local reason = type(decision.reason) == "string" and decision.reason or "blocked"
  local status = tonumber(decision.status)
  if not status or status < 400 or status > 599 then
    status = REASON_STATUS[reason] or 403
  end
  local retry_after = tonumber(decision.retry_after) or 0
  local headers = header_values(decision.headers) or {}
  if retry_after > 0 and not headers["Retry-After"] and not headers["retry-after"] then
    headers["Retry-After"] = tostring(ceil(retry_after))
  end
  -- A body the sidecar passes on as is (Aforo's margin deny: {"error":{"code":"SERVICE_RESTRICTED_MARGIN",...}}).
  if type(decision.body) == "table" then
    return kong.response.exit(status, decision.body, headers)
  end
  local message = type(decision.message) == "string" and decision.message
                  or REASON_MESSAGE[reason] or "request denied"
  return kong.response.exit(status,
    { message = message, reason = reason, retry_after = retry_after }, headers)
end


-- The sidecar's headers that Kong's PDK takes: a string name and a string or number value (Kong raises
-- for any other value, e.g. a JSON null, object or array, which would fail the request), or nil when
-- none is left.
header_values = function(headers)
  if type(headers) ~= "table" then
    return nil
  end
  local out, any = {}, false
  for k, v in pairs(headers) do
    if type(k) == "string" and (type(v) == "string" or type(v) == "number") then
      out[k] = v
      any = true
    end
  end
  return any and out or nil
end


local function set_upstream(headers)
  for k, v in pairs(headers) do
    if type(v) == "string" or type(v) == "number" then
      kong.service.request.set_header(k, v)
    end
  end
end


--- Applies a decision from /v1/check (ctx: kong.ctx.plugin).
function _M.apply(ctx, decision)
  local allowed = decision.allowed
  if allowed == nil or allowed == null then
    allowed = decision.decision == "allow"
  end
  if allowed ~= true and decision.shadow ~= true then
    return deny(decision)
  end
  local headers = header_values(decision.headers)
  if headers then
    ctx.headers = headers -- set in header_filter: the proxied response replaces earlier ones
  end
  local upstream = decision.upstream_headers
  if type(upstream) == "table" then
    set_upstream(upstream)
  end
end


--- A request admitted under a lease (lease.lua): the lease's headers, set by header_filter with this
-- request's own remaining quota. Nothing is allocated but that count's string: this runs for most
-- requests.
function _M.apply_lease(ctx, lease)
  local headers = lease.headers
  if headers then
    ctx.lease_headers = headers
    local remaining = lease.remaining
    if remaining then
      ctx.lease_remaining = tostring(max(remaining - (lease.granted - lease.left), 0))
    end
  end
  local upstream = lease.upstream
  if upstream then
    local set_header = kong.service.request.set_header
    local names, values = upstream.names, upstream.values
    for i = 1, upstream.n do
      set_header(names[i], values[i])
    end
  end
end


--- Sets the client headers kept by apply or apply_lease (header_filter phase).
function _M.set_response_headers(ctx)
  local list = ctx.lease_headers
  if list then
    local set_header = kong.response.set_header
    local names, values, counted = list.names, list.values, list.counted
    local remaining, n = ctx.lease_remaining, list.n
    -- Unrolled for the usual three X-RateLimit-* headers: a loop entered here, on nearly every
    -- request, keeps LuaJIT from compiling header_filter as a whole.
    set_header(names[1], counted == 1 and remaining or values[1])
    if n >= 2 then set_header(names[2], counted == 2 and remaining or values[2]) end
    if n >= 3 then set_header(names[3], counted == 3 and remaining or values[3]) end
    if n >= 4 then set_header(names[4], counted == 4 and remaining or values[4]) end
    for i = 5, n do
      set_header(names[i], i == counted and remaining or values[i])
    end
    return
  end
  local headers = ctx.headers
  if headers then
    kong.response.set_headers(headers)
  end
end


return _M
