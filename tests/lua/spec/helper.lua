-- Spec helper: package paths for the plugin and the shim, and stubbed `ngx`/`kong` globals for handler specs.
--
-- Each spec starts with: dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
-- so that `busted tests/lua/spec` works from the repository root without a .busted file.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local root = here .. "../../../"
if not package.path:find(root .. "lua/?.lua", 1, true) then
  package.path = root .. "lua/?.lua;" .. root .. "tests/lua/shim/?.lua;" .. here .. "?.lua;" .. package.path
end

local cjson = require "cjson.safe"

local helper = {}
_G.aforo_spec_helper = helper

-- The Kong the specs play (tests/lua/shim/README.md): AFORO_KONG_VERSION=3.4 or 3.9 (default).
-- 3.9 gives every request a $kong_request_id (Kong >= 3.5) and calls the handler's configure
-- (helper.start_worker); 3.4 has neither.
helper.profile = os.getenv("AFORO_KONG_VERSION") or "3.9"
assert(helper.profile == "3.4" or helper.profile == "3.9", "AFORO_KONG_VERSION: 3.4 or 3.9")
local request_seq = 0

local SPEC_REGEX = {
  ['[\\x00-\\x1f"\\\\]'] = { '[%c"\\]' },
  ["[\\x80-\\xff]"] = { "[\128-\255]" },
  ["/(?:graphql|gql)/?$"] = { "/graphql/?$", "/gql/?$" },
  ["graphql"] = { "graphql" },  -- Aforo v2.2's graphql_path_pattern default (compat_spec)
}



--- Installs fresh `ngx` and `kong` stubs and forgets loaded plugin modules.
-- Returns `env`: env.req (the current request, editable), env.timers, env.logs,
-- env.calls (sidecar requests), env.respond(fn) to script the sidecar, env.clock.
function helper.setup()
  for m in pairs(package.loaded) do
    if m:find("^kong%.plugins%.aforo%-metering%.") then
      package.loaded[m] = nil
    end
  end

  local env = { timers = {}, logs = {}, calls = {}, clock = { t = 1764000000.123 }, exiting = false }
  local function new_request()
    request_seq = request_seq + 1
    return {
      headers = {}, path = "/v1/search/items/42", method = "GET", consumer = nil,
      status = 200, resp_headers = {}, upstream_headers = {}, set_headers = {}, cleared_headers = {},
      start_ms = 1764000000123, ctx = {}, shared = {}, kong_shared = {},
      service = { id = "svc-1", name = "search" }, route = { id = "rt-1", name = "search-v1" },
      var = { request_length = "120", bytes_sent = "345", request_id = "0123456789abcdef0123456789abcdef",
              kong_request_id = helper.profile ~= "3.4" and string.format("%032x", request_seq) or nil },
    }
  end
  env.req = new_request()
  helper.current_env = env
  function env.new_request()
    env.req = new_request()
    return env.req
  end

  local responder = function()
    return 200, '{"decision":"allow","allowed":true,"reason":"ok","headers":{},"upstream_headers":{}}'
  end
  function env.respond(fn)
    responder = fn
  end

  _G.ngx = {
    null = cjson.null,
    DEBUG = 8, INFO = 7, NOTICE = 6, WARN = 5, ERR = 4, CRIT = 3, ALERT = 2, EMERG = 1,
    now = function() return env.clock.t end,
    log = function() end,
    timer = {
      at = function(delay, fn, ...)
        if env.exiting and delay > 0 then
          return nil, "process exiting"
        end
        env.timers[#env.timers + 1] = { delay = delay, fn = fn, args = { ... }, at = env.clock.t + delay }
        return true
      end,
    },
    worker = { exiting = function() return env.exiting end, pid = function() return 4242 end },
    socket = { tcp = function() error("no sockets in specs") end },
    req = { start_time = function() return env.req.start_ms / 1000 end },
    -- ngx.re for the regular expressions the plugin uses, as Lua patterns (the nginx harness runs
    -- the real PCRE): event.lua's two classes and graphql_path_pattern's default.
    re = { find = function(s, re)
      local patterns = SPEC_REGEX[re]
      assert(patterns, "spec ngx.re.find: no Lua pattern for " .. tostring(re))
      for _, p in ipairs(patterns) do
        local from, to = s:find(p)
        if from then
          return from, to
        end
      end
      return nil
    end },
  }
  -- ngx.header: the current response's headers, names case-insensitive and "_" for "-" as in nginx.
  local function header_key(name)
    local want = name:lower():gsub("_", "-")
    for k in pairs(env.req.resp_headers) do
      if k:lower() == want then return k end
    end
    return want
  end
  local resp_header = setmetatable({}, {
    __index = function(_, name) return env.req.resp_headers[header_key(name)] end,
    __newindex = function(_, name, v) env.req.resp_headers[header_key(name)] = v end,
  })
  setmetatable(ngx, { __index = function(_, k)
    if k == "var" then return env.req.var end
    if k == "header" then return resp_header end
    if k == "ctx" then return env.req.shared end -- kong.ctx.shared and the runloop's bookkeeping
  end })

  local function logger(level)
    return function(...)
      local parts = {}
      for i = 1, select("#", ...) do
        parts[i] = tostring((select(i, ...)))
      end
      env.logs[#env.logs + 1] = { level = level, msg = table.concat(parts) }
    end
  end

  local function lower_keys(t)
    local out = {}
    for k, v in pairs(t) do out[k:lower()] = v end
    return out
  end

  -- Header values as Kong's PDK takes them: string, number or boolean (else Kong raises).
  local VALUE_TYPES = { string = true, number = true, boolean = true }
  local function check_value(name, v)
    if type(name) ~= "string" or not VALUE_TYPES[type(v)] then
      error("invalid value for " .. tostring(name) .. ": got " .. type(v) .. ", expected string, number or boolean", 3)
    end
  end
  local function check_values(headers)
    for k, v in pairs(headers or {}) do check_value(k, v) end
  end

  _G.kong = {
    request = {
      get_header = function(name) return lower_keys(env.req.headers)[name:lower()] end,
      get_path = function() return env.req.path end,
      get_method = function() return env.req.method end,
      get_start_time = function() return env.req.start_ms end,
      -- Kong 3.x: the body read in full, or nil and an error when nginx left it in a file
      -- (env.req.body_in_file).
      get_raw_body = function()
        if env.req.body_in_file then
          return nil, "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
        end
        env.req.body_reads = (env.req.body_reads or 0) + 1
        return env.req.body or ""
      end,
      get_query_arg = function(name) return (env.req.query or {})[name] end,
    },
    -- A consumer comes with a credential, as Kong's auth plugins set them, unless env.req.anonymous
    -- (the `anonymous` consumer of an auth plugin: no credential) or env.req.credential says otherwise.
    client = {
      get_consumer = function() return env.req.consumer end,
      get_credential = function()
        if env.req.anonymous or not env.req.consumer then
          return nil
        end
        return env.req.credential or { id = "cred-1", consumer = { id = env.req.consumer.id } }
      end,
    },
    response = {
      -- As Kong's PDK: deferred while the access phase runs as Kong's runloop runs it (helper.access:
      -- stored, and the handler's coroutine yields for good), else answered at once.
      exit = function(status, body, headers)
        check_values(headers)
        local shared = env.req.shared
        shared.KONG_EXITED = true
        if shared.delay_response and not shared.delayed_response then
          shared.delayed_response = { status_code = status, content = body, headers = headers }
          shared.delayed_response_callback = function(c)
            local dr = c.delayed_response
            env.req.exited = { status = dr.status_code, body = dr.content, headers = dr.headers or {} }
          end
          coroutine.yield()
          env.req.resumed_after_exit = true -- never: Kong abandons the coroutine
        end
        env.req.exited = { status = status, body = body, headers = headers or {} }
        return "exited"
      end,
      set_header = function(k, v) check_value(k, v) env.req.set_headers[k] = v end,
      set_headers = function(h) check_values(h) for k, v in pairs(h) do env.req.set_headers[k] = v end end,
      get_header = function() error("the plugin reads response headers through ngx.header") end,
      -- As Kong 3.x: every occurrence goes (names are case-insensitive), non-string names raise.
      clear_header = function(name)
        if type(name) ~= "string" then error("header name must be a string", 2) end
        for k in pairs(env.req.resp_headers) do
          if k:lower() == name:lower() then env.req.resp_headers[k] = nil end
        end
        env.req.cleared_headers[#env.req.cleared_headers + 1] = name
      end,
      get_status = function() return env.req.status end,
    },
    service = { request = { set_header = function(k, v) check_value(k, v) env.req.upstream_headers[k] = v end } },
    router = {
      get_service = function() return env.req.service end,
      get_route = function() return env.req.route end,
    },
    log = { err = logger("err"), warn = logger("warn"), notice = logger("notice"),
            info = logger("info"), debug = logger("debug") },
    ctx = setmetatable({}, { __index = function(_, k)
      if k == "plugin" then return env.req.ctx end
      if k == "shared" then return env.req.kong_shared end -- a table of its own, as in Kong
    end }),
  }

  -- The real module's pure helpers, with request() scripted.
  local real_client = require "kong.plugins.aforo-metering.client"
  package.loaded["kong.plugins.aforo-metering.client"] = {
    authorization = real_client.authorization,
    status_text = real_client.status_text,
    request = function(url, method, path, body, opts)
      env.calls[#env.calls + 1] = { url = url, method = method, path = path, body = body, opts = opts }
      return responder(url, method, path, body, opts)
    end,
  }
  return env
end


--- Starts a worker as the profile's Kong does: init_worker, then (Kong >= 3.5) configure with every
-- active config. Returns true when configure was called.
function helper.start_worker(handler, confs)
  if handler.init_worker then
    handler:init_worker()
  end
  if helper.profile ~= "3.4" and handler.configure then
    handler:configure(confs)
    return true
  end
  return false
end


--- Runs handler:access(conf) as Kong's runloop does (tests/lua/shim/aforo_shim/runloop.lua): in a
-- coroutine, kong.response.exit deferred to the end of the phase (env.req.exited set then). A handler
-- that raises is answered 500 as Kong does, and the error is raised again here (no spec expects one)
-- unless expect_error; then it is returned.
function helper.access(handler, conf, expect_error)
  local env = helper.current_env
  local _, raised = require("aforo_shim.runloop").access(handler, conf)
  if raised and not expect_error then
    error(raised, 2)
  end
  assert(not env.req.resumed_after_exit, "the access coroutine ran on after kong.response.exit")
  return raised
end


--- Runs the pending timers (and the ones they schedule) until none is left or `max` ran, in the
-- order they were created; the clock moves on to each timer's due time when it is later.
function helper.run_timers(env, premature, max)
  local ran = 0
  while #env.timers > 0 and ran < (max or 100) do
    local t = table.remove(env.timers, 1)
    if not premature and t.at and t.at > env.clock.t then
      env.clock.t = t.at
    end
    t.fn(premature or false, unpack(t.args))
    ran = ran + 1
  end
  return ran
end


--- A full plugin config: schema defaults plus `overrides`, validated like Kong does.
function helper.conf(overrides)
  local schema = require "kong.plugins.aforo-metering.schema"
  local conf, errs = require("aforo_shim.schema").process(schema, overrides or {})
  assert(conf, errs and cjson.encode(errs))
  return conf
end


--- A sidecar responder answering 200 with the JSON of t.
function helper.answer(t)
  return function() return 200, cjson.encode(t) end
end


--- The decoded body of the i-th request the plugin sent to the sidecar (default the first).
function helper.check_body(env, i)
  return helper.decode(env.calls[i or 1].body)
end


--- The last message the plugin logged at `level` (nil when none).
function helper.last_log(env, level)
  local found
  for _, l in ipairs(env.logs) do
    if l.level == level then found = l.msg end
  end
  return found
end


--- The messages the plugin logged at level err.
function helper.errors(env)
  local out = {}
  for _, l in ipairs(env.logs) do
    if l.level == "err" then out[#out + 1] = l.msg end
  end
  return out
end


function helper.decode(s)
  return cjson.decode(s)
end


--- One event's JSON from a table keyed by event.FIELDS, through event.put as the flush builds it.
function helper.build_event(e)
  local event = require "kong.plugins.aforo-metering.event"
  local record, parts = {}, {}
  for i, name in ipairs(event.FIELDS) do
    record[i] = e[name]
  end
  local n = event.put(parts, 0, record, 0)
  return table.concat(parts, "", 1, n)
end

--- The events queued for conf's sidecar, decoded: what the flush would send (each queued record through
-- the queue's encoder).
function helper.buffered(conf)
  local buffer = require "kong.plugins.aforo-metering.buffer"
  local q = buffer._queues()[conf.sidecar_url]
  local out = {}
  if q then
    local record = require("kong.plugins.aforo-metering.event").RECORD
    for i = q.first, q.last do
      local parts = {}
      local n = q.put(parts, 0, q.items, (i - 1) * record)
      out[#out + 1] = helper.decode(table.concat(parts, "", 1, n))
    end
  end
  return out
end

return helper
