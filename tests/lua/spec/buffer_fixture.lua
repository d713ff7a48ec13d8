-- The queue fixture buffer_spec.lua and buffer_overflow_spec.lua share (not a spec itself): a queue of
-- buffer.lua whose records are one value n each, encoded as {"n":n}.
local record = require("kong.plugins.aforo-metering.event").RECORD -- values per record

local _M = {}

-- Records of one value n, encoded as {"n":n}.
function _M.put_n(parts, k, items, base)
  parts[k + 1] = '{"n":'
  parts[k + 2] = items[base + 1]
  parts[k + 3] = "}"
  return k + 3
end

function _M.new_queue(buffer, send, batch_size, max_size, interval_ms)
  local queue = buffer.get("http://127.0.0.1:8750", send, kong.log)
  queue.batch_size, queue.max_size, queue.interval_ms = batch_size, max_size, interval_ms or 250
  queue.put = _M.put_n
  return queue
end

-- A record whose first value is n and last value is `last` (the others nil).
function _M.add(buffer, queue, n, last)
  local items, b = buffer.slot(queue)
  if not items then
    return false
  end
  for i = 1, record do
    items[b + i] = nil
  end
  items[b + 1], items[b + record] = n, last
  return buffer.commit(queue)
end

--- The state the buffer specs share, made fresh by setup() in their before_each: env (helper.setup),
-- buffer, sent (the batches sent: arrays of decoded events), outcome (what a send returns: set it to
-- make sends fail), q (a queue of batch_size 3, max_size 10), and send/new_queue/add/errors bound to it.
function _M.state(helper)
  local S = {}
  function S.send(_, body)
    local ok, err, too_large = S.outcome(body)
    if ok then
      S.sent[#S.sent + 1] = helper.decode(body).events
    end
    return ok, err, too_large
  end
  function S.new_queue(batch_size, max_size, interval_ms)
    return _M.new_queue(S.buffer, S.send, batch_size, max_size, interval_ms)
  end
  function S.add(queue, n, last) return _M.add(S.buffer, queue, n, last) end
  function S.errors() return helper.errors(S.env) end
  function S.setup()
    S.env = helper.setup()
    S.buffer = require "kong.plugins.aforo-metering.buffer"
    S.buffer._reset()
    S.sent = {}
    S.outcome = function() return true end
    S.q = S.new_queue(3, 10)
  end
  return S
end

return _M
