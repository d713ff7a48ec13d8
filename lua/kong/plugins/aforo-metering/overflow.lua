-- The overflow file of a buffer queue (buffer.lua): where a worker's events go while the sidecar
-- cannot take them and its queue passes the high-water mark, and how they are replayed.
--
-- While the sidecar cannot take a batch and the queue passes its high-water mark (half of
-- buffer_max_size), a timer appends the queued events to the queue's overflow file, one event's JSON
-- per line (the worker's own file: Kong's prefix, worker id, a hash of sidecar_url), up to
-- overflow_max bytes; past that, events are dropped, counted (overflow_dropped) and logged. A flush
-- replays the file before the queue (the events in memory are newer): it first *claims* it (renames it
-- to `<file>.replaying`, so that later appends start a new file) and reads the claimed file
-- CLAIM_SETTLE_S later, once a writer that opened it before the rename has finished (the worker this
-- one replaces may still be exiting and appending, in another process); meanwhile the queue waits
-- (past its high-water mark it spills to a new file, after the claimed one), so events stay in order.
-- Only complete lines that decode as JSON objects are sent (a line cut short by a failed write is
-- skipped and counted); the claimed file is removed once all of it was taken. Within a worker only a
-- flush (one at a time) or the spill timer, both under q.running, touch the files. A replay cut short
-- (the worker stopped) is started again from the top by the next worker with the same id: the events
-- sent twice keep their idempotency keys, and Aforo takes each once. A watch timer looks for a file
-- every CHECK_S while nothing is scheduled, so that a file the previous worker wrote after
-- this one started is sent without waiting for traffic.
local ngx = ngx
local concat = table.concat
local floor = math.floor
local max = math.max
local sub = string.sub
local tostring = tostring
local type = type
local decode = require("cjson.safe").decode
local RECORD = require("kong.plugins.aforo-metering.event").RECORD -- values per record


local _M = {}

_M.CHECK_S = 1 -- how often the file of another worker (same id) is looked for
local CHECK_S = _M.CHECK_S
local CLAIM_SETTLE_S = 1 -- wait between claiming a file and reading it (a writer's last append lands)


local function file_size(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local size = f:seek("end")
  f:close()
  return size
end


--- Whether the queue's overflow files hold events (its own, or one claimed for replay).
function _M.has(q)
  return q.overflow_path ~= nil and ((file_size(q.overflow_claimed) or 0) > 0 or (file_size(q.overflow_path) or 0) > 0)
end


-- The last byte of a file, or nil.
local function last_byte(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local b = f:seek("end", -1) and f:read(1)
  f:close()
  return b
end


-- Moves every queued event to the overflow file (or drops it past the bound). Returns true when the
-- queue was emptied, nil and why when the file could not be written (the events stay queued).
function _M.spill(q)
  local first, last = q.first, q.last
  if last < first then
    return true
  end
  local path = q.overflow_path
  local before = file_size(path) or 0
  local unsent = before + max(0, (file_size(q.overflow_claimed) or 0) - q.overflow_offset)
  local room = q.overflow_max - unsent
  local items, put = q.items, q.put
  local lines, n, bytes, dropped = {}, 0, 0, 0
  -- After a write cut short, the next line starts on a line of its own.
  if before > 0 and last_byte(path) ~= "\n" then
    n, bytes = 1, 1
    lines[1] = ""
  end
  local parts = {}
  for i = first, last do
    local k = put(parts, 0, items, (i - 1) * RECORD)
    local line = concat(parts, "", 1, k)
    for j = 1, k do
      parts[j] = nil
    end
    if bytes + #line + 1 <= room then
      n = n + 1
      lines[n] = line
      bytes = bytes + #line + 1
    else
      dropped = dropped + 1
    end
  end
  local kept = lines[1] == "" and n - 1 or n
  if kept > 0 then
    lines[n + 1] = ""
    local f, err = io.open(path, "ab")
    if not f then
      return nil, err
    end
    -- One write(2) for the whole append (O_APPEND): another worker appending at the same time
    -- cannot land inside a line.
    f:setvbuf("no")
    local ok, werr = f:write(concat(lines, "\n"))
    f:close()
    if not ok then
      return nil, werr
    end
    if unsent == 0 then
      q.log.notice("sidecar at ", q.url, " not taking events: appending them to ", path)
    end
  end
  for i = (first - 1) * RECORD + 1, last * RECORD do
    items[i] = nil
  end
  q.first, q.last = 1, 0
  q.spilled = q.spilled + kept
  q.overflow_pending = true
  if dropped > 0 then
    q.overflow_dropped = q.overflow_dropped + dropped
    q.log.err("ERROR overflow file ", path, " full (overflow_max_bytes ", q.overflow_max, "), dropped ",
              dropped, " events (", q.overflow_dropped, " in total) for ", q.url)
  end
  return true
end


-- Reads up to `limit` complete lines from `f` (at q.overflow_offset) that decode as JSON objects.
-- Returns the lines, their count and the bytes read (skipped lines included).
local function read_lines(q, f, limit)
  local lines, n, bytes = {}, 0, 0
  while n < limit do
    local line = f:read("*l")
    if not line then
      break
    end
    local complete = f:seek() - (q.overflow_offset + bytes) == #line + 1
    bytes = bytes + #line + (complete and 1 or 0)
    local ev = complete and sub(line, 1, 1) == "{" and decode(line)
    if type(ev) == "table" then
      n = n + 1
      lines[n] = line
    elseif line ~= "" then
      q.overflow_skipped = (q.overflow_skipped or 0) + 1
      q.log.err("ERROR overflow file ", q.overflow_claimed, ": skipped a line that is not a whole event (",
                #line, " bytes, cut short by a failed write?)")
    end
  end
  return lines, n, bytes
end


-- Sends the claimed overflow file's events, oldest first, up to the most one POST may carry at a time.
-- Returns true when it was all taken (the file is removed), true and the seconds to wait when a file
-- was claimed and is not settled yet, else nil and the send's error.
local function replay_claimed(q, f, max_posts)
  local path = q.overflow_claimed
  if q.overflow_offset > 0 and not f:seek("set", q.overflow_offset) then
    q.overflow_offset = 0
  end
  local replayed = 0
  while true do
    local lines, n, bytes = read_lines(q, f, max_posts[q.url] or q.batch_size)
    if n == 0 and bytes == 0 then
      break
    end
    if n > 0 then
      local ok, err, too_large = q.send(q, '{"events":[' .. concat(lines, ",") .. "]}")
      if too_large and n > 1 then
        max_posts[q.url] = floor(n / 2)
        f:seek("set", q.overflow_offset) -- the same events again, fewer per POST
        bytes = 0
      elseif not ok and not too_large then
        return nil, err
      else
        if too_large then
          q.log.err("ERROR sidecar refused an event with ", err, ", event dropped")
        end
        replayed = replayed + n
      end
    end
    q.overflow_offset = q.overflow_offset + bytes
  end
  os.remove(path)
  q.overflow_offset, q.claimed_at = 0, nil
  if replayed > 0 then
    q.log.notice("sent ", replayed, " events from overflow file ", q.overflow_path, " to ", q.url)
  end
  return true
end


function _M.replay(q, max_posts)
  local path = q.overflow_path
  if not path then
    return true
  end
  if not q.overflow_pending then
    local now = ngx.now()
    if now - q.overflow_checked < CHECK_S then
      return true
    end
    q.overflow_checked = now
  end
  while true do
    local f = io.open(q.overflow_claimed, "rb")
    if not f then
      if (file_size(path) or 0) == 0 then
        q.overflow_pending, q.overflow_offset, q.claimed_at = false, 0, nil
        return true
      end
      local ok, err = os.rename(path, q.overflow_claimed)
      if not ok then
        return nil, "could not claim overflow file: " .. tostring(err)
      end
      q.overflow_offset = 0
    else
      -- Settled: claimed at least CLAIM_SETTLE_S ago (by this worker, or seen that long ago).
      local now = ngx.now()
      q.claimed_at = q.claimed_at or now
      if now - q.claimed_at < CLAIM_SETTLE_S then
        f:close()
        -- At least 10 ms: a shorter delay is a zero-delay timer to nginx, which runs in the same
        -- event loop iteration, before the cached clock moves.
        return true, max(CLAIM_SETTLE_S - (now - q.claimed_at), 0.01)
      end
      local ok, err = replay_claimed(q, f, max_posts)
      f:close()
      if not ok then
        return nil, err
      end
    end
  end
end


return _M
