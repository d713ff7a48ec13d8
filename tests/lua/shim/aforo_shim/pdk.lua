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


-- Phase checks as Kong's PDK makes them (kong/pdk/private/phases.lua): a PDK function called outside
-- its phases raises "function cannot be called in <phase> phase (only in: ...)". Kong knows the phase
-- from its runloop; the shim from nginx's, with a content handler counted as Kong's admin_api, as
-- Kong does, and nginx's timer phase (no Kong phase there) refused by every request function.
local KONG_PHASE_OF = { init_worker = "init_worker", rewrite = "rewrite", access = "access",
                        balancer = "balancer", header_filter = "header_filter", body_filter = "body_filter",
                        log = "log", content = "admin_api" }

local function phases(...)
  local set, names = {}, { ... }
  for _, n in ipairs(names) do set[n] = true end
  set.__names = table.concat(names, ", ")
  return set
end

local REQUEST = phases("rewrite", "access", "header_filter", "body_filter", "log", "admin_api")
local AUTH_AND_LATER = phases("access", "header_filter", "body_filter", "log")
local HEADER_BODY_LOG = phases("header_filter", "body_filter", "log", "admin_api")
local REWRITE_ACCESS_HEADER = phases("rewrite", "access", "header_filter", "admin_api")
local REWRITE_ACCESS_BALANCER = phases("rewrite", "access", "balancer")

local function check_phase(accepted)
  local nginx_phase = ngx.get_phase and ngx.get_phase()
  if not nginx_phase then
    return -- a stubbed ngx (specs): no phase to check
  end
  local phase = KONG_PHASE_OF[nginx_phase]
  if not phase then
    error("no phase in ngx.ctx.KONG_PHASE (nginx phase " .. nginx_phase .. "; need one of "
          .. accepted.__names .. ")", 3)
  end
  if not accepted[phase] then
    error("function cannot be called in " .. phase .. " phase (only in: " .. accepted.__names .. ")", 3)
  end
end


-- Header values as Kong's PDK takes them (kong/pdk/private/checks.lua): a string, a number or a
-- boolean (sent as its text), or for set_headers an array of them; anything else raises.
local VALUE_TYPES = { string = true, number = true, boolean = true }

local function validate_header(name, value)
  if type(name) ~= "string" then
    error("header name must be a string", 3)
  end
  local t = type(value)
  if not VALUE_TYPES[t] then
    error(string.format("invalid value for %q: got %s, expected string, number or boolean", name, t), 3)
  end
end

local function validate_headers(headers)
  if type(headers) ~= "table" then
    error("headers must be a table", 3)
  end
  for name, value in pairs(headers) do
    if type(name) ~= "string" then
      error("invalid header name " .. tostring(name) .. ": got " .. type(name) .. ", expected string", 3)
    end
    if type(value) == "table" then
      for _, v in ipairs(value) do
        if not VALUE_TYPES[type(v)] then
          error(string.format("invalid value in array %q: got %s, expected string, number or boolean",
                              name, type(v)), 3)
        end
      end
    elseif not VALUE_TYPES[type(value)] then
      error(string.format("invalid value in %q: got %s, expected string, number or boolean", name,
                          type(value)), 3)
    end
  end
end


-- kong.request.get_path's normalisation (Kong 3.x, RFC 3986 section 6): percent-encoded characters
-- are decoded except the reserved ones (gen-delims and sub-delims), whose encoding is upper-cased
-- (%2f -> %2F: an encoded slash stays encoded); "." and ".." segments are resolved; runs of slashes
-- become one.
local RESERVED = {}
for c in (":/?#[]@!$&'()*+,;="):gmatch(".") do
  RESERVED[c:byte()] = true
end

local function decode_unreserved(h)
  local b = tonumber(h, 16)
  if RESERVED[b] then
    return "%" .. h:upper()
  end
  return string.char(b)
end

local function normalize_path(raw)
  local path = raw:gsub("%%(%x%x)", decode_unreserved):gsub("//+", "/")
  if not path:find("/%.") then
    return path
  end
  local out = {}
  local trailing = path:sub(-1) == "/" or path:match("/%.%.?$") ~= nil
  for seg in path:gmatch("[^/]+") do
    if seg == ".." then
      out[#out] = nil
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  local s = "/" .. table.concat(out, "/")
  if trailing and s ~= "/" then
    s = s .. "/"
  end
  return s
end


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
  check_phase(REQUEST)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  return ngx.var[header_var(name)]
end

--- kong.request.get_raw_path(): the path as sent, without the query string.
function request.get_raw_path()
  check_phase(REQUEST)
  local uri = ngx.var.request_uri or ""
  local q = uri:find("?", 1, true)
  return q and uri:sub(1, q - 1) or uri
end

--- kong.request.get_path(): the raw path normalized as Kong 3.x does (normalize_path above): not
-- nginx's $uri, which decodes %2F to a slash and every other escape too.
function request.get_path()
  check_phase(REQUEST)
  return normalize_path(request.get_raw_path())
end

function request.get_method()
  check_phase(REQUEST)
  return ngx.req.get_method()
end

--- kong.request.get_start_time(): request start, milliseconds since the epoch.
function request.get_start_time()
  check_phase(REQUEST)
  return ngx.req.start_time() * 1000
end

--- kong.request.get_raw_body(): the body, read in full (Kong 3.x calls ngx.req.read_body); nil and
-- an error when nginx kept it in a temp file (larger than client_body_buffer_size); "" when none.
local BEFORE_CONTENT = phases("rewrite", "access", "admin_api")
function request.get_raw_body()
  check_phase(BEFORE_CONTENT)
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    if ngx.req.get_body_file() then
      return nil, "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
    end
    return ""
  end
  return body
end

--- kong.request.get_query_arg(name): the first value of a query argument, decoded; true for a
-- bare flag; nil when absent (Kong reads at most 100 arguments by default).
function request.get_query_arg(name)
  check_phase(REQUEST)
  local v = ngx.req.get_uri_args(100)[name]
  if type(v) == "table" then
    return v[1]
  end
  return v
end

function request.get_scheme()
  check_phase(REQUEST)
  return ngx.var.scheme
end


local response = {}

function response.get_status()
  check_phase(HEADER_BODY_LOG)
  return ngx.status
end

function response.set_header(name, value)
  check_phase(REWRITE_ACCESS_HEADER)
  if ngx.headers_sent then
    error("headers have already been sent", 2)
  end
  validate_header(name, value)
  ngx.header[name] = tostring(value)
end

function response.set_headers(headers)
  check_phase(REWRITE_ACCESS_HEADER)
  if ngx.headers_sent then
    error("headers have already been sent", 2)
  end
  validate_headers(headers)
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
  check_phase(REWRITE_ACCESS_HEADER)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  if ngx.headers_sent then
    error("headers have already been sent", 2)
  end
  ngx.header[name] = nil
end

-- Sends a response (Kong's `send`): headers, a table body as JSON with Content-Type
-- application/json; charset=utf-8 (unless the headers name one), Content-Length, then ngx.exit.
local function send(status, body, headers)
  if ngx.headers_sent then
    error("headers have already been sent", 2)
  end
  ngx.status = status
  local has_content_type
  if headers then
    for name, value in pairs(headers) do
      ngx.header[name] = type(value) == "table" and value or tostring(value)
      if lower(name) == "content-type" or lower(name) == "content_type" then
        has_content_type = true
      end
    end
  end
  if type(body) == "table" then
    local err
    body, err = cjson.encode(body)
    if not body then
      error("body encoding failed while flushing response: " .. tostring(err), 2)
    end
    if not has_content_type then
      ngx.header["Content-Type"] = "application/json; charset=utf-8"
    end
  end
  ngx.header["Content-Length"] = body and #body or 0
  if body then
    ngx.print(body)
  end
  return ngx.exit(status)
end

local function flush(ctx)
  ctx = ctx or ngx.ctx
  local dr = ctx.delayed_response
  return send(dr.status_code, dr.content, dr.headers)
end

--- kong.response.exit(status, body, headers) as Kong 3.x: arguments checked at once; then, in the
-- access phase as Kong's runloop runs it (ngx.ctx.delay_response set, aforo_shim/runloop.lua), the
-- response is stored in ngx.ctx.delayed_response and the handler's coroutine yields, never to be
-- resumed: nothing after the call runs, and the runloop sends the response once the phase's loop
-- ends. Elsewhere (rewrite, header_filter, a content handler) it is sent at once.
function response.exit(status, body, headers)
  check_phase(REWRITE_ACCESS_HEADER)
  if ngx.headers_sent then
    error("headers have already been sent", 2)
  end
  if type(status) ~= "number" or status < 100 or status > 599 then
    error("code must be a number between 100 and 599", 2)
  end
  if body ~= nil and type(body) ~= "string" and type(body) ~= "table" then
    error("body must be a nil, string or table", 2)
  end
  if headers ~= nil and type(headers) ~= "table" then
    error("headers must be a nil or table", 2)
  end
  if headers ~= nil then
    validate_headers(headers)
  end
  local ctx = ngx.ctx
  ctx.KONG_EXITED = true
  if ctx.delay_response and not ctx.delayed_response then
    ctx.delayed_response = { status_code = status, content = body, headers = headers }
    ctx.delayed_response_callback = flush
    coroutine.yield()
    error("kong.response.exit: the access coroutine was resumed after exit", 2) -- Kong never resumes it
  end
  return send(status, body, headers)
end


local client = {}

function client.get_consumer()
  check_phase(AUTH_AND_LATER)
  return ngx.ctx.authenticated_consumer
end

function client.get_credential()
  check_phase(AUTH_AND_LATER)
  return ngx.ctx.authenticated_credential
end

function client.get_ip()
  return ngx.var.remote_addr
end


local service_request = {}

function service_request.set_header(name, value)
  check_phase(REWRITE_ACCESS_BALANCER)
  validate_header(name, value)
  ngx.req.set_header(name, tostring(value))
end

function service_request.clear_header(name)
  check_phase(REWRITE_ACCESS_BALANCER)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  ngx.req.clear_header(name)
end


local router = {}

function router.get_service()
  check_phase(AUTH_AND_LATER)
  return ngx.ctx.service
end

function router.get_route()
  check_phase(AUTH_AND_LATER)
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


-- kong.ctx.shared is a table of its own inside ngx.ctx, as in Kong (kong/pdk/ctx.lua keeps it under a
-- private key of ngx.ctx); kong.ctx.plugin is one table per plugin per request.
local SHARED_KEY = {}

local ctx = setmetatable({}, {
  __index = function(_, key)
    if key == "shared" then
      local c = ngx.ctx
      local shared = c[SHARED_KEY]
      if not shared then
        shared = {}
        c[SHARED_KEY] = shared
      end
      return shared
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
_M.normalize_path = normalize_path

return _M
