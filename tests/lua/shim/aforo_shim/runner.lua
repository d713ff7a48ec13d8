-- Test runner: calls the aforo-metering plugin's phases from nginx directives, as Kong would.
--
--   init_by_lua_block        { require("aforo_shim.runner").setup(require("aforo_confs")) }
--   init_worker_by_lua_block { require("aforo_shim.runner").init_worker() }
--   access_by_lua_block      { require("aforo_shim.runner").access("default") }
--   header_filter_by_lua_block { require("aforo_shim.runner").header_filter("default") }
--   body_filter_by_lua_block { require("aforo_shim.runner").body_filter("default") }
--   log_by_lua_block         { require("aforo_shim.runner").log("default") }
--
-- setup() takes named plugin instances { name = { config = {...}, service =
-- "svc", route = "rt" } }; each config is validated against schema.lua with
-- its defaults filled, like Kong's DAO does. TEST-ONLY: the X-Test-Consumer
-- request header "username" or "username;custom_id" plays an authenticated
-- consumer (Kong's auth plugins set it in real deployments), with a credential unless the request
-- also has X-Test-Anonymous: 1 (an auth plugin's `anonymous` consumer: no credential). TEST-ONLY: the
-- X-Test-JWT request header plays a token Kong's jwt plugin verified: its value (a compact JWT) is set
-- as kong.ctx.shared.authenticated_jwt_token, where that plugin keeps the token it verified.
--
-- setup(named, { noop = true }) runs every phase as Kong would (PDK, ctx,
-- route and consumer) but never calls the plugin: the benchmark's stand-in
-- for Kong's own per-request work without this plugin.
local pdk = require "aforo_shim.pdk"
local schema_check = require "aforo_shim.schema"
local runloop = require "aforo_shim.runloop"

local ngx = ngx


local _M = {}

local handler
local noop = false
local profile = { kong_version = "3.9", timer_ng = true }
local instances = {} -- name -> { conf, service, route }


local function consumer_from_header()
  local v = ngx.var.http_x_test_consumer
  if not v or v == "" then
    return nil
  end
  local username, custom_id = v:match("^([^;]*);(.*)$")
  username = username or v
  return {
    id = "c0ffee00-0000-4000-8000-" .. string.format("%012x", #username),
    username = username ~= "" and username or nil,
    custom_id = custom_id ~= "" and custom_id or nil,
  }
end


--- Validates every instance's config against schema.lua and loads the handler.
-- Errors at startup, like Kong refusing an invalid declarative config.
-- opts: noop (above); kong_version "3.4" | "3.9" (default; what differs: tests/lua/shim/README.md);
-- timer_ng (default true): replace ngx.timer.at by the emulation of Kong's lua-resty-timer-ng.
function _M.setup(named, opts)
  opts = opts or {}
  noop = opts.noop or false
  profile.kong_version = opts.kong_version or "3.9"
  profile.timer_ng = opts.timer_ng ~= false
  pdk.install(profile)
  local schema = require "kong.plugins.aforo-metering.schema"
  for name, inst in pairs(named) do
    local conf, errs = schema_check.process(schema, inst.config)
    if not conf then
      local parts = {}
      for k, v in pairs(errs) do
        parts[#parts + 1] = k .. ": " .. tostring(v)
      end
      error("invalid aforo-metering config '" .. name .. "': " .. table.concat(parts, "; "))
    end
    instances[name] = {
      conf = conf,
      service = inst.service and { id = "svc-" .. inst.service, name = inst.service } or nil,
      route = inst.route and { id = "rt-" .. inst.route, name = inst.route } or nil,
    }
  end
  handler = require "kong.plugins.aforo-metering.handler"
end


function _M.init_worker()
  if profile.timer_ng then
    require("aforo_shim.timer_ng").install()
  end
  if noop then
    return
  end
  if handler.init_worker then
    handler:init_worker()
  end
  -- Kong calls configure from 3.5 on (Kong/kong#11703); 3.4 never does.
  if handler.configure and profile.kong_version ~= "3.4" then
    local confs = {}
    for _, inst in pairs(instances) do
      confs[#confs + 1] = inst.conf
    end
    handler:configure(#confs > 0 and confs or nil)
  end
end


local function instance(name)
  local inst = instances[name]
  if not inst then
    error("no aforo-metering instance named " .. tostring(name))
  end
  return inst
end


function _M.access(name)
  local inst = instance(name)
  local ctx = ngx.ctx
  ctx.service = inst.service
  ctx.route = inst.route
  local consumer = consumer_from_header()
  ctx.authenticated_consumer = consumer
  -- Kong's auth plugins set a credential for a client that authenticated, none for their `anonymous`
  -- consumer (TEST-ONLY: X-Test-Anonymous: 1 plays that).
  if consumer and ngx.var.http_x_test_anonymous ~= "1" then
    ctx.authenticated_credential = { id = "cred-" .. consumer.id, consumer = { id = consumer.id } }
  end
  local token = ngx.var.http_x_test_jwt
  if token and token ~= "" then
    kong.ctx.shared.authenticated_jwt_token = token
  end
  if noop then
    return
  end
  -- In a coroutine with kong.response.exit deferred, as Kong's runloop (aforo_shim/runloop.lua).
  runloop.access(handler, inst.conf)
end


function _M.header_filter(name)
  local conf = instance(name).conf
  if noop then
    return conf
  end
  if handler.header_filter then
    return handler:header_filter(instance(name).conf)
  end
end


--- Kong's template has body_filter_by_lua_block { Kong.body_filter() } in every proxied location, and
-- Kong calls a plugin's body_filter for each chunk (ngx.arg[1], ngx.arg[2] = eof) when its handler has one.
function _M.body_filter(name)
  local conf = instance(name).conf
  if noop then
    return conf
  end
  if handler.body_filter then
    return handler:body_filter(conf)
  end
end


function _M.log(name)
  local conf = instance(name).conf
  if noop then
    return conf
  end
  return handler:log(conf)
end


--- The validated config of an instance (for tests).
function _M.conf(name)
  return instance(name).conf
end


return _M
