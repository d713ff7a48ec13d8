-- What the plugin reads of a request besides its customer: route and service names, the method within
-- Aforo's limit, whether its path is excluded, and its idempotency key.
local event = require "kong.plugins.aforo-metering.event"

-- kong and ngx are read at each call (not kept from load time), as the specs install fresh ones.
local sub = string.sub
local find = string.find
local byte = string.byte
local SLASH = 47
local MAX_HTTP_METHOD = event.MAX_HTTP_METHOD


local _M = {}


-- Segment-aware prefix match: "/health" matches "/health" and "/health/x", not "/healthz"
-- (find and byte: no substring is made on the request path).
local function excluded_by(p, path)
  if find(path, p, 1, true) ~= 1 then
    return false
  end
  local n = #p
  local nxt = byte(path, n + 1)
  return nxt == nil or nxt == SLASH or byte(p, n) == SLASH
end

-- The first path is checked before the loop, so the usual short list enters no loop on this
-- per-request path (an entered loop keeps LuaJIT from compiling the caller).
function _M.excluded(paths, path)
  if excluded_by(paths[1], path) then
    return true
  end
  for i = 2, #paths do
    if excluded_by(paths[i], path) then
      return true
    end
  end
  return false
end


-- The request method within Aforo's httpMethod limit (nginx takes any method of A-Z, "_" and "-").
function _M.http_method()
  local method = kong.request.get_method()
  if #method > MAX_HTTP_METHOD then
    return sub(method, 1, MAX_HTTP_METHOD)
  end
  return method
end


function _M.route_names()
  local service = kong.router.get_service()
  local route = kong.router.get_route()
  local s = service and (service.name or service.id)
  local r = route and (route.name or route.id)
  if s == ngx.null then s = nil end
  if r == ngx.null then r = nil end
  return s, r
end


-- The request's idempotency key without its "kong:" prefix, made once per request and never from a
-- request header (a client repeating X-Request-Id would otherwise have Aforo deduplicate its usage
-- into one billed event, and a header over 250 characters would make every event of it invalid):
-- Kong's own $kong_request_id (Kong >= 3.5), else nginx's $request_id (32 random hex digits made by
-- the gateway for each request, nginx >= 1.11) as a UUID.
local MAX_REQUEST_ID = 128 -- idempotencyKey is at most 255; Kong's own ids are 32 characters

function _M.request_id(ctx)
  local rid = ctx.request_id
  if rid then
    return rid
  end
  local var = ngx.var
  rid = var.kong_request_id
  if not rid or rid == "" or #rid > MAX_REQUEST_ID then
    rid = event.uuid_from_hex(var.request_id) or event.random_id()
  end
  ctx.request_id = rid
  return rid
end


return _M
