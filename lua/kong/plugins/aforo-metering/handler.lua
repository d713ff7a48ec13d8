-- Kong plugin aforo-metering: access-phase decisions from the sidecar, log-phase usage events.
--
-- The plugin is minimal on purpose (the sidecar owns caches, retries and the
-- disk spool): it identifies the customer, asks POST /v1/check, applies the
-- decision, and queues one usage record per request in a per-worker buffer
-- whose timers encode it (event.lua) and flush batches to POST
-- /v1/ingest/batch. docs/design/plugin-contract.md.
--
-- Decision leases: the check round trip is most of what the plugin costs a
-- worker, so an allowed decision may carry "lease":{"requests":N,"ttl_ms":T,
-- "scope":"route"|"prefix"|"path"[,"prefix":P]}. The worker then admits up to
-- N further requests of the same customer, service, route, method and
-- configured feature whose path is in scope within T ms without asking, with
-- the same headers (X-RateLimit-Remaining counted down), and reports how many
-- it admitted in "leased" on its next check (lease.lua), which renews the
-- lease from a timer before it runs out; "lease_unused" reports what leases
-- that ended (replaced, denied, expired) left unadmitted. The sidecar decides
-- when to lease (entitlements.lease_requests, lease_ttl; 0 turns leasing off)
-- and bounds a lease by the remaining quota.
local cjson = require "cjson.safe"
local client = require "kong.plugins.aforo-metering.client"
local buffer = require "kong.plugins.aforo-metering.buffer"
local batch = require "kong.plugins.aforo-metering.batch"
local event = require "kong.plugins.aforo-metering.event"
local leases = require "kong.plugins.aforo-metering.lease"
local decisions = require "kong.plugins.aforo-metering.decision"
local handshakes = require "kong.plugins.aforo-metering.handshake"
local identity = require "kong.plugins.aforo-metering.identity"
local protocol = require "kong.plugins.aforo-metering.protocol"
local request = require "kong.plugins.aforo-metering.request"

local kong = kong
local ngx = ngx
local null = ngx.null
local type = type
local max = math.max
local min = math.min
local decode = cjson.decode
local quote = event.quote
local valid_utf8 = event.valid_utf8
local clean_utf8 = event.clean_utf8
local OUTCOME = event.OUTCOME
local PROTOCOL = event.PROTOCOL
local excluded = request.excluded
local http_method = request.http_method
local route_names = request.route_names
local request_id = request.request_id
local identify = identity.customer


local CHECK_PATH = "/v1/check"
local BACKGROUND_TIMEOUT_MS = 2000   -- flush and handshake run in timers, off the request path
local LOG_EVERY_S = 10               -- rate limit of per-request ERROR lines
local MAX_CUSTOMER_ID = 64           -- Aforo's customerId limit

local AforoMeteringHandler = {
  -- After authentication (key-auth 1250, basic-auth 1100, hmac-auth 1030,
  -- jwt 1450, oauth2 1400, ldap-auth 1200) so the consumer is known, after
  -- acl (950) and rate-limiting (910) so requests Kong rejects on its own
  -- never reach the sidecar or consume quota, and before request-transformer
  -- (801) and proxy-cache (100).
  PRIORITY = 905,
  VERSION = "0.1.0",
}


local log = kong and kong.log  -- replaced by the plugin-namespaced logger in every phase
local log_marks = {}            -- rate-limited line key -> { at = s, suppressed = n }
local states = setmetatable({}, { __mode = "k" }) -- conf -> derived per-config state


-- Returns false while a line of this key was logged within LOG_EVERY_S,
-- else the number of lines suppressed since (0 or more).
local function may_log(key)
  local now = ngx.now()
  local mark = log_marks[key]
  if not mark then
    log_marks[key] = { at = now, suppressed = 0 }
    return 0
  end
  if now - mark.at < LOG_EVERY_S then
    mark.suppressed = mark.suppressed + 1
    return false
  end
  local n = mark.suppressed
  mark.at, mark.suppressed = now, 0
  return n
end


local function suppressed_note(n)
  return n > 0 and " (" .. n .. " similar lines suppressed)" or ""
end


-- Derived state of one plugin config: socket options and the queue of its sidecar_url.
local function state_for(conf)
  local s = states[conf]
  if s then
    return s
  end
  local q = buffer.get(conf.sidecar_url, batch.send, log)
  -- Several configs may share a sidecar_url, and so one queue: it takes the largest buffer_max_size and
  -- overflow_max_bytes and the smallest batch_size and flush_interval of the configs this worker has
  -- seen, whatever order they come in (Kong builds them in no fixed order).
  local first = not q.configured
  q.configured = true
  q.batch_size = first and conf.batch_size or min(q.batch_size, conf.batch_size)
  q.max_size = first and conf.buffer_max_size or max(q.max_size, conf.buffer_max_size)
  q.interval_ms = first and conf.flush_interval or min(q.interval_ms, conf.flush_interval)
  local overflow_max = first and conf.overflow_max_bytes or max(q.overflow_max, conf.overflow_max_bytes)
  q.log = log
  local authorization = client.authorization(conf)
  local configuration = kong.configuration
  local prefix = configuration and configuration.prefix
                 or (ngx.config and ngx.config.prefix and ngx.config.prefix())
  buffer.set_overflow(q, prefix, overflow_max)
  q.opts = {
    timeout = max(conf.timeout, BACKGROUND_TIMEOUT_MS),
    keepalive_timeout = conf.keepalive_timeout,
    pool_size = conf.keepalive_pool_size,
    authorization = authorization,
  }
  q.report_opts = { timeout = q.opts.timeout, keepalive_timeout = q.opts.keepalive_timeout,
                    pool_size = q.opts.pool_size, authorization = q.opts.authorization }
  local feature = conf.feature
  s = {
    queue = q,
    check_opts = {
      timeout = conf.timeout,
      keepalive_timeout = conf.keepalive_timeout,
      pool_size = conf.keepalive_pool_size,
      authorization = authorization,
    },
    feature_json = (feature and feature ~= null) and quote(feature) or "null",
    metric_name = conf.metric_name,
  }
  -- Statuses not metered (exclude_status_codes), and the events' productType / executionStatus overrides.
  s.skip_status = {}
  for _, code in ipairs(conf.exclude_status_codes or {}) do
    s.skip_status[code] = true
  end
  s.outcome = event.outcome(conf)
  states[conf] = s
  return s
end


local function log_unreachable(conf, err)
  local n = may_log("unreachable:" .. conf.sidecar_url)
  if n then
    log.err("ERROR sidecar unreachable at ", conf.sidecar_url, ": ", err,
            " (fallback_on_error=", conf.fallback_on_error, ")", suppressed_note(n))
  end
end


local function fallback(conf, ctx, err)
  ctx.fallback = true
  log_unreachable(conf, err)
  if conf.fallback_on_error == "block" then
    return kong.response.exit(503, {
      message = "usage check unavailable", reason = "sidecar_unavailable", retry_after = 0 })
  end
end


-- rep: the lease report the check carries (lease.lua, report; every check has one); renewal: a check
-- sent in the background whose own request a lease already admitted.
local function check_body(s, customer_id, service, route, method, path, rid, operation, rep, renewal, quantity)
  return '{"customer_id":' .. quote(customer_id)
    .. ',"feature":' .. s.feature_json
    .. ',"service":' .. (service and quote(service) or "null")
    .. ',"route":' .. (route and quote(route) or "null")
    .. ',"method":' .. quote(method)
    .. ',"path":' .. quote(path)
    .. (operation and ',"operation":' .. quote(operation) or "")
    .. (quantity and ',"quantity":' .. quantity .. ',"request_id":' or ',"quantity":1,"request_id":') .. quote(rid)
    .. ',"lease_unused":' .. rep.unused -- always: this client reports what its leases leave unadmitted
    .. (rep.leased > 0 and ',"leased":' .. rep.leased or "")
    .. ',"report_id":"' .. rep.id .. (rep.sent and '","report_resent":true' or '"')
    .. (renewal and ',"renewal":true}' or "}")
end


-- POST /v1/check; returns the decision table, or nil, why, and whether the sidecar may have counted
-- the check (it went out and no answer came back, or the answer was a 200 this worker cannot read).
local function ask(conf, opts, body)
  local status, resp, sent = client.request(conf.sidecar_url, "POST", CHECK_PATH, body, opts)
  local decision = status == 200 and decode(resp)
  if type(decision) ~= "table" then
    if not status then
      return nil, resp, sent
    end
    return nil, status ~= 200 and client.status_text(status) or "invalid JSON in /v1/check response", status == 200
  end
  return decision
end


-- A lease renewed in a timer (see check): its report (rep) holds the requests admitted under it
-- and not reported yet; the request that started the renewal, admitted under it too, is the
-- check's own quantity 1. No request waits for this round trip, which may queue behind a batch of
-- events in the sidecar.
local function renew_in_background(premature, conf, opts, body, lease, route_key, path, rep)
  if premature then
    return leases.renewal_failed(lease, rep, route_key, path, false, false)
  end
  local now = ngx.now()
  local decision, err, counted = ask(conf, opts, body)
  if not decision then
    -- The report goes out again with a later check, this request in it.
    leases.renewal_failed(lease, rep, route_key, path, true, counted)
    return log_unreachable(conf, err)
  end
  local renewed = leases.settle(lease, route_key, path, decision.lease, decision, now)
  if decision.allowed ~= true then
    -- The sidecar counts no denied request, but this one was admitted: reported next time.
    leases.untake(lease, 1, route_key, path)
  else
    -- Counted by the sidecar as the check's own quantity: its unit of the lease was not used.
    leases.add_unused(renewed, lease, route_key, path, 1)
  end
end


local function check(conf, ctx, customer_id, path)
  local s = state_for(conf)
  local service, route = route_names()
  ctx.service, ctx.route = service, route
  local method = http_method()
  ctx.method = method -- the log phase reuses it

  local now = ngx.now()
  local route_key = customer_id .. "\0" .. (service or "") .. "\0" .. (route or "") .. "\0" .. method
                    .. "\0" .. s.feature_json
  -- A protocol option's operation (protocol.lua; nil with the options off) is sent with the check
  -- and keys its leases: a feature rule may match on it.
  local operation = ctx.protocol and ctx.protocol.operation
  if operation then
    route_key = route_key .. "\0" .. operation
  end
  -- A batch of N GraphQL operations or MCP calls (N events) asks for N units, never under a lease
  -- (a lease admits one request per unit).
  local quantity = ctx.protocol and ctx.protocol.quantity
  local lease = not quantity and leases.find(route_key, path) or nil
  local used, unused = 0, 0
  if lease then
    if leases.admit(lease, now) then
      return decisions.apply_lease(ctx, lease)
    end
    local reported = leases.renew(lease, now)
    if reported then
      -- Renewal due while the lease still admits: this request goes on under it, and the check runs
      -- in a timer.
      local rep = leases.report(lease, route_key, path, reported, leases.take_unused(lease, now))
      local ok = buffer.timer_at(0, renew_in_background, conf, s.check_opts,
                              check_body(s, customer_id, service, route, method, path, request_id(ctx), operation,
                                         rep, true),
                              lease, route_key, path, rep)
      if not ok then
        -- No timer (the worker is exiting, or lua_max_pending_timers): admitted under the lease,
        -- reported by the next check.
        leases.renewal_failed(lease, rep, route_key, path, false, false)
      end
      return decisions.apply_lease(ctx, lease)
    end
    used = leases.take(lease)
    unused = leases.take_unused(lease, now)
  end
  local rep = leases.report(lease, route_key, path, used, unused)

  local decision, err, counted = ask(conf, s.check_opts,
                                     check_body(s, customer_id, service, route, method, path, request_id(ctx),
                                                operation, rep, nil, quantity))
  if not decision then
    leases.check_failed(lease, rep, route_key, path, counted)
    return fallback(conf, ctx, err)
  end
  leases.settle(lease, route_key, path, decision.lease, decision, now)
  return decisions.apply(ctx, decision)
end


function AforoMeteringHandler:init_worker()
  log = kong.log
end


--- Kong >= 3.4 calls configure with every active config of the plugin (nil
-- when there is none) after init_worker and on each change: one handshake per
-- sidecar_url per worker. Older Kong gets it on the first request instead.
function AforoMeteringHandler:configure(configs)
  log = kong.log
  if configs then
    for i = 1, #configs do
      handshakes.ensure(configs[i], log, BACKGROUND_TIMEOUT_MS)
      if configs[i].metering_enabled then
        -- The queue now, not at the first request: it sends an overflow file the worker this one
        -- replaces left (kong reload during an outage) as soon as the sidecar answers.
        state_for(configs[i])
      end
    end
  end
end


function AforoMeteringHandler:access(conf)
  log = kong.log
  local path = kong.request.get_path()
  if #conf.exclude_paths > 0 and excluded(conf.exclude_paths, path) then
    return
  end

  local customer_id, consumer, excluded_token = identify(conf)
  if excluded_token then
    return -- a token with one of customer_id_jwt_exclude_claims: neither checked nor metered
  end
  if customer_id and (#customer_id > MAX_CUSTOMER_ID or not valid_utf8(customer_id)) then
    local n = may_log("bad_tenant")
    if n then
      log.err("ERROR customer id longer than ", MAX_CUSTOMER_ID, " characters or not valid UTF-8",
              " (request not metered)", suppressed_note(n))
    end
    customer_id = nil
  elseif not customer_id then
    local n = may_log("missing_tenant")
    if n then
      log.err("ERROR missing ", conf.tenant_header, " header (request not metered)", suppressed_note(n))
    end
  end
  if not customer_id then
    if conf.missing_tenant == "block" then
      return kong.response.exit(401, {
        message = "missing " .. conf.tenant_header .. " header", reason = "missing_tenant",
        retry_after = 0 })
    end
    return
  end

  handshakes.ensure(conf, log, BACKGROUND_TIMEOUT_MS)
  local ctx = kong.ctx.plugin
  ctx.customer_id = customer_id
  ctx.consumer = consumer
  -- Bytes that are not UTF-8 (nginx decodes %FF to a byte) are percent-encoded again, so that the
  -- check and the event are valid JSON for the sidecar; the event truncates the path to Aforo's 512.
  ctx.path = clean_utf8(path)
  if protocol.on(conf) then -- gRPC, GraphQL, WebSocket, MCP, agentic: off by default
    protocol.access(conf, ctx, path)
  end
  if conf.entitlement_enabled then
    return check(conf, ctx, customer_id, ctx.path)
  end
end


-- A response header's (first) value. Read through ngx.header, one header at a time: Kong's
-- kong.response.get_header builds the table of every response header (ngx.resp.get_headers) on
-- each call, and this runs for every request.
local function response_header(name)
  local v = ngx.header[name]
  if type(v) == "table" then
    return v[1]
  end
  return v
end


-- The upstream's cost and quantity headers are internal figures: read them
-- for the log phase and remove them from what the client receives.
function AforoMeteringHandler:header_filter(conf)
  local ctx = kong.ctx.plugin
  local response = kong.response
  local quantity = response_header(conf.quantity_header)
  if quantity then
    ctx.quantity = quantity
    response.clear_header(conf.quantity_header)
  end
  local cost = response_header(conf.cost_header)
  if cost then
    ctx.cost = cost
    response.clear_header(conf.cost_header)
  end
  ctx.header_filtered = true
  decisions.set_response_headers(ctx)
end


-- gqlHasErrors: a bounded look at the response of a GraphQL request (protocol.body_filter), on a
-- route with graphql_enabled; any other request returns at the first test, for each chunk.
function AforoMeteringHandler:body_filter(conf)
  if conf.graphql_enabled then
    local p = kong.ctx.plugin.protocol
    if p and p.kind == "graphql" then
      return protocol.body_filter(p)
    end
  end
end


function AforoMeteringHandler:log(conf)
  if not conf.metering_enabled then
    return
  end
  local ctx = kong.ctx.plugin
  local customer_id = ctx.customer_id
  if not customer_id then
    return -- excluded, no customer, or ended before this plugin's access phase
  end
  local s = state_for(conf)
  if s.skip_status[kong.response.get_status()] then
    return -- exclude_status_codes
  end
  local start_ms = kong.request.get_start_time()
  local var = ngx.var

  local quantity, cost = ctx.quantity, ctx.cost
  if not ctx.header_filtered then -- header_filter did not run: the headers are still there
    quantity = response_header(conf.quantity_header)
    cost = response_header(conf.cost_header)
  end
  local service, route
  if conf.discovery_enabled then
    if ctx.service == nil and ctx.route == nil then
      ctx.service, ctx.route = route_names()
    end
    service, route = ctx.service, ctx.route
  end
  -- A record of plain values, in event.FIELDS order, stored one by one in the queue's array: the
  -- queue encodes it (event.put) when its batch is sent.
  local q = s.queue
  q.log = log
  local items, b = buffer.slot(q)
  if not items then
    return
  end
  items[b + OUTCOME] = s.outcome
  items[b + 1] = customer_id
  items[b + 2] = s.metric_name
  items[b + 3] = event.parse_quantity(quantity) or 1
  items[b + 4] = start_ms / 1000
  items[b + 5] = request_id(ctx)
  items[b + 6] = ctx.method or http_method()
  items[b + 7] = ctx.path
  local status, latency = kong.response.get_status(), ngx.now() * 1000 - start_ms
  items[b + 8] = status
  items[b + 9] = latency
  items[b + 10] = var.request_length
  items[b + 11] = var.bytes_sent
  items[b + 12] = ctx.consumer
  items[b + 13] = service
  items[b + 14] = route
  items[b + 15] = event.parse_cost(cost)
  local protos = ctx.protocol and protocol.records(conf, ctx, status, latency)
  items[b + PROTOCOL] = protos and protos[1]
  if protos and protos[2] then
    return protocol.commit_more(q, items, b, protos) -- a batched MCP request: one event per call
  end
  buffer.commit(q)
end


return AforoMeteringHandler
