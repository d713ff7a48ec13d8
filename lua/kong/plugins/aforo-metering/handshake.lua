-- The worker's handshake with each sidecar it uses (GET /v1/handshake), from a
-- timer: once per sidecar_url per worker, logging the connected line, or the
-- ERROR line with the reason and then retrying quietly with backoff (the
-- sidecar may start after Kong) until it answers.
local cjson = require "cjson.safe"
local client = require "kong.plugins.aforo-metering.client"
local buffer = require "kong.plugins.aforo-metering.buffer"

local ngx = ngx
local type = type
local tonumber = tonumber
local floor = math.floor
local tostring = tostring
local decode = cjson.decode

local HANDSHAKE_PATH = "/v1/handshake"
local MAX_BACKOFF_S = 60

local _M = {}

local states = {} -- sidecar_url -> "pending" | "ok" | "failed"


local function handshake(premature, url, fallback, attempt, logger, opts)
  if premature then
    return
  end
  -- The first connection creates the worker's pool of this sidecar_url, and the
  -- pool keeps the size it was created with: the configured one, or /v1/check
  -- would open a new connection whenever more requests are in flight than that.
  local status, body = client.request(url, "GET", HANDSHAKE_PATH, nil, opts)
  local h = status == 200 and decode(body)
  if type(h) == "table" then
    states[url] = "ok"
    local max_post = tonumber(h.max_batch_events)
    if max_post and max_post >= 1 then
      buffer.set_max_post(url, floor(max_post))
    end
    logger.notice("connected to sidecar at ", url, " (sidecar ", tostring(h.sidecar_version),
                  ", tenant ", tostring(h.tenant_id), ", ingest ", tostring(h.ingest), ")")
    return
  end
  local err = not status and body or (status ~= 200 and client.status_text(status)) or "invalid JSON in handshake"
  if attempt == 1 then
    logger.err("ERROR sidecar unreachable at ", url, ": ", err, " (fallback_on_error=", fallback, ")")
  end
  states[url] = "failed"
  local delay = math.min(2 ^ attempt, MAX_BACKOFF_S)
  local ok = ngx.timer.at(delay, handshake, url, fallback, attempt + 1, logger, opts)
  if not ok and not ngx.worker.exiting() then
    logger.err("ERROR could not schedule handshake with ", url)
  end
end


--- Starts the handshake with conf's sidecar unless this worker has started
-- one (logger: the plugin's kong.log; timeout_ms: the background timeout).
function _M.ensure(conf, logger, timeout_ms)
  local url = conf.sidecar_url
  if states[url] then
    return
  end
  states[url] = "pending"
  local ok, err = ngx.timer.at(0, handshake, url, conf.fallback_on_error, 1, logger, {
    timeout = timeout_ms, keepalive_timeout = conf.keepalive_timeout, pool_size = conf.keepalive_pool_size,
    authorization = client.authorization(conf) })
  if not ok and not ngx.worker.exiting() then
    logger.err("ERROR could not schedule handshake with ", url, ": ", err)
  end
end


return _M
