-- POST /v1/ingest/batch: how a buffer queue's batch reaches the sidecar (buffer.lua calls send), with the
-- drops the worker has not reported yet, and what the answer means for the queue.
local cjson = require "cjson.safe"
local client = require "kong.plugins.aforo-metering.client"

local sub = string.sub
local tonumber = tonumber
local tostring = tostring
local type = type
local decode = cjson.decode

local INGEST_PATH = "/v1/ingest/batch"

local _M = {}


-- Events this worker dropped and has not reported yet: sent to the sidecar on the next batch's
-- X-Aforo-Plugin-Dropped header (aforo_sidecar_plugin_events_dropped_total, /v1/handshake), and
-- counted as reported once the sidecar answers 2xx.
local function drops_to_report(q)
  local buffer_full = q.dropped - (q.dropped_reported or 0)
  local overflow_full = q.overflow_dropped - (q.overflow_dropped_reported or 0)
  if buffer_full > 0 or overflow_full > 0 then
    return buffer_full, overflow_full
  end
end


--- Posts `body` for queue q; returns true (taken, or refused for good), or nil, why and true for a 413.
function _M.send(q, body)
  local opts = q.opts
  local buffer_full, overflow_full = drops_to_report(q)
  if buffer_full then
    opts = q.report_opts
    opts.headers = "X-Aforo-Plugin-Dropped: buffer_full=" .. buffer_full .. ",overflow_full=" .. overflow_full
                   .. "\r\n"
  end
  local status, resp = client.request(q.url, "POST", INGEST_PATH, body, opts)
  if not status then
    return nil, resp
  end
  if buffer_full and status >= 200 and status < 300 then
    q.dropped_reported = (q.dropped_reported or 0) + buffer_full
    q.overflow_dropped_reported = (q.overflow_dropped_reported or 0) + overflow_full
  end
  if status >= 200 and status < 300 then
    if not resp:find('"failed":0', 1, true) then
      local r = decode(resp)
      local failed = type(r) == "table" and tonumber(r.failed) or 0
      if failed > 0 then
        local first = type(r.errors) == "table" and type(r.errors[1]) == "table" and r.errors[1] or {}
        q.log.warn("sidecar rejected ", failed, " events (first: index ",
                   tostring(first.index), ": ", tostring(first.message), ")")
      end
    end
    return true
  end
  if status == 413 then
    -- Too many events or bytes for one POST: the queue sends fewer (or drops a lone event).
    return nil, "HTTP 413: " .. sub(resp, 1, 200), true
  end
  if status == 400 or status == 422 then
    -- The sidecar will never take this batch; retrying would block the queue.
    q.log.err("ERROR sidecar refused a batch of events with HTTP ", status, ", batch dropped: ",
              sub(resp, 1, 200))
    return true
  end
  return nil, client.status_text(status)
end


return _M
