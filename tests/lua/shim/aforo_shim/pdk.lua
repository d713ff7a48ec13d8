-- Test shim of the Kong 3.x PDK (kong/pdk/*) on plain nginx + lua-nginx-module: only what aforo-metering uses.
--
-- Names, arguments and return values follow Kong 3.x; the implementations are
-- the obvious nginx ones. Not part of the product: the nginx harness and the
-- busted specs use it to run the unchanged plugin without Kong.
--
-- TEST-ONLY conventions (Kong has none of these):
--   ngx.ctx.authenticated_consumer  the consumer, set by the runner from the
--                                   X-Test-Consumer request header
--   ngx.ctx.service / ngx.ctx.route the matched service and route, set by the runner
local cjson = require "cjson.safe"

local ngx = ngx
local lower = string.lower
local gsub = string.gsub


local PLUGIN_NAME = "aforo-metering"


local function new_log(namespace)
  local prefix = "[" .. namespace .. "] "
  local log = {}
  local levels = {
    emerg = ngx.EMERG, alert = ngx.ALERT, crit = ngx.CRIT, err = ngx.ERR,
    warn = ngx.WARN, notice = ngx.NOTICE, info = ngx.INFO, debug = ngx.DEBUG,
  }
  for name, level in pairs(levels) do
    log[name] = function(...)
      return ngx.log(level, prefix, ...)
    end
  end
  return log
end


local header_vars = {} -- "X-Tenant-Id" -> "http_x_tenant_id"

local function header_var(name)
  local v = header_vars[name]
  if not v then
    v = "http_" .. gsub(lower(name), "-", "_")
    header_vars[name] = v
  end
  return v
end


local request = {}

--- kong.request.get_header(name): first value of a request header or nil.
function request.get_header(name)
  return ngx.var[header_var(name)]
end

--- kong.request.get_path(): the normalized path, without the query string.
function request.get_path()
  return ngx.var.uri
end

--- kong.request.get_raw_path(): the path as sent, without the query string.
function request.get_raw_path()
  local uri = ngx.var.request_uri or ""
  local q = uri:find("?", 1, true)
  return q and uri:sub(1, q - 1) or uri
end

function request.get_method()
  return ngx.req.get_method()
end

--- kong.request.get_start_time(): request start, milliseconds since the epoch.
function request.get_start_time()
  return ngx.req.start_time() * 1000
end

function request.get_scheme()
  return ngx.var.scheme
end


local response = {}

function response.get_status()
  return ngx.status
end

function response.set_header(name, value)
  ngx.header[name] = tostring(value)
end

function response.set_headers(headers)
  for name, value in pairs(headers) do
    if type(value) == "table" then
      ngx.header[name] = value
    else
      ngx.header[name] = tostring(value)
    end
  end
end

--- kong.response.clear_header(name): removes every occurrence of a response
-- header (rewrite, access, header_filter phases); as in Kong 3.x it raises an
-- error for a non-string name or once the headers have been sent.
function response.clear_header(name)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  if ngx.headers_sent then
    error("headers have already been sent", 2)
  end
  ngx.header[name] = nil
end

--- kong.response.exit(status, body, headers): a table body is sent as JSON,
-- as Kong does; ends the request (rewrite, access, or content phases).
function response.exit(status, body, headers)
  ngx.status = status
  if headers then
    response.set_headers(headers)
  end
  if type(body) == "table" then
    body = cjson.encode(body)
    ngx.header["Content-Type"] = "application/json; charset=utf-8"
  end
  if body then
    ngx.header["Content-Length"] = #body
    ngx.print(body)
  end
  return ngx.exit(status)
end


local client = {}

function client.get_consumer()
  return ngx.ctx.authenticated_consumer
end

function client.get_credential()
  return ngx.ctx.authenticated_credential
end

function client.get_ip()
  return ngx.var.remote_addr
end


local service_request = {}

function service_request.set_header(name, value)
  ngx.req.set_header(name, tostring(value))
end

function service_request.clear_header(name)
  ngx.req.clear_header(name)
end


local router = {}

function router.get_service()
  return ngx.ctx.service
end

function router.get_route()
  return ngx.ctx.route
end


local node_id

local node = {}

function node.get_id()
  if not node_id then
    local hex = ngx.var and ngx.var.request_id or string.format("%032x", math.random(0, 2^31))
    node_id = hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-" .. hex:sub(13, 16) .. "-"
              .. hex:sub(17, 20) .. "-" .. hex:sub(21, 32)
  end
  return node_id
end

function node.get_hostname()
  local f = io.open("/proc/sys/kernel/hostname")
  local h = f and f:read("*l") or "localhost"
  if f then f:close() end
  return h
end


-- kong.ctx.shared is ngx.ctx in Kong too; kong.ctx.plugin is one table per
-- plugin per request.
local ctx = setmetatable({}, {
  __index = function(_, key)
    if key == "shared" then
      return ngx.ctx
    elseif key == "plugin" then
      local c = ngx.ctx
      local p = c.__aforo_plugin_ctx
      if not p then
        p = {}
        c.__aforo_plugin_ctx = p
      end
      return p
    end
  end,
})


local _M = {}

local VERSIONS = { ["3.4"] = { "3.4.2", 3004002 }, ["3.9"] = { "3.9.0", 3009000 } }

--- Installs the `kong` global and returns it. profile.kong_version: "3.4" or "3.9" (default).
function _M.install(profile)
  local v = VERSIONS[profile and profile.kong_version or "3.9"] or error("unknown Kong version profile")
  local kong = {
    version = v[1],
    version_num = v[2],
    request = request,
    response = response,
    client = client,
    service = { request = service_request, response = {} },
    router = router,
    node = node,
    -- kong.configuration: Kong's read-only kong.conf; only `prefix` here (nginx's -p, without the
    -- trailing slash, as Kong's prefix setting has it).
    configuration = setmetatable({}, {
      __index = function(_, k)
        if k == "prefix" then
          return (ngx.config.prefix():gsub("/$", ""))
        end
      end,
      __newindex = function() error("kong.configuration is read-only", 2) end,
    }),
    ctx = ctx,
    log = new_log(PLUGIN_NAME),
  }
  _G.kong = kong
  return kong
end

_M.new_log = new_log

return _M
