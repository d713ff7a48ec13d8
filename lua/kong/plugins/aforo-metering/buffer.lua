-- Per-worker event buffer, one queue per sidecar_url, flushed by timers to POST /v1/ingest/batch.
--
-- Events are appended at `last` and removed from `first` only after the
-- sidecar answered 2xx, so a failed flush keeps them in place for the retry.
-- `batch_size` events start a flush, and a POST carries everything queued, up
-- to the most the sidecar takes in one POST (its handshake's
-- max_batch_events; batch_size until that is known): under light load the
-- POSTs stay small, and when events arrive faster than one POST a round trip
-- can carry, the POSTs grow instead of the queue overflowing.
-- An event is a record of RECORD plain values stored flat in `items` (event
-- i at items[(i - 1) * RECORD + 1 ..]), which the queue's `put` (event.put)
-- turns into JSON when its batch is sent: no table per request, so the
-- log phase leaves the GC nothing to trace or sweep but the strings the
-- request made anyway, and the batch's JSON is built only when it is sent, in
-- one loop and one table.concat. One flush runs at a time per queue. When the
-- worker exits (reload, stop) pending timers fire with premature = true and
-- the queue is drained before the worker goes. Cosockets are not allowed in
-- the log phase, so adding never does I/O: it only schedules timers.
local ngx = ngx
local concat = table.concat
local min = math.min
local floor = math.floor
local max = math.max
local sub = string.sub
local tostring = tostring


local _M = {}

local high_water -- below
local MAX_BACKOFF_MS = 5000
local event = require "kong.plugins.aforo-metering.event"
local overflow = require "kong.plugins.aforo-metering.overflow"
local RECORD = event.RECORD -- values per record
local EXIT_ATTEMPTS = 3 -- tries per batch while the worker is exiting
local COMPACT_AFTER = 1024 -- records sent before the queued ones move back to the front of `items`

local queues = {} -- sidecar_url -> queue
local max_posts = {} -- sidecar_url -> events the sidecar takes in one POST (handshake, or learnt from a 413)


--- Returns the queue of a sidecar_url, creating it on first use.
-- `send(q, body)` posts a batch and returns true or nil, err; `log` is kong.log-like.
function _M.get(url, send, log)
  local q = queues[url]
  if not q then
    q = {
      url = url, items = {}, first = 1, last = 0,
      running = false, delayed = false, immediate = false,
      failures = 0, dropped = 0, dropped_logged = 0, last_drop_log = 0,
      batch_size = 20, max_size = 10000, interval_ms = 250,
      send = send, log = log, put = event.put, parts = {},
      -- Overflow file (overflow.lua): its path (nil: none), bound, replay offset, counters.
      overflow_path = nil, overflow_max = 0, overflow_offset = 0, overflow_checked = 0,
      overflow_pending = true, spill_scheduled = false, spilled = 0, overflow_dropped = 0,
      watching = false, claimed_at = nil,
    }
    queues[url] = q
  end
  return q
end


--- Number of events waiting in a queue.
function _M.count(q)
  return q.last - q.first + 1
end


--- ngx.timer.at, except while the worker exits: then nginx's own timer, which Kong keeps as
-- _G.native_timer_at. Kong replaces ngx.timer.at with lua-resty-timer-ng, which stops about a second
-- after the worker starts exiting (running each pending job once, premature) and never runs a job
-- created after that: a request finishing later would schedule its flush there, and its events
-- would vanish. Only zero-delay timers can be created while the worker exits, so the delay is 0 then.
function _M.timer_at(delay_s, fn, ...)
  if ngx.worker.exiting() then
    local native = _G.native_timer_at or ngx.timer.at
    return native(0, fn, ...)
  end
  return ngx.timer.at(delay_s, fn, ...)
end
local timer_at = _M.timer_at


local flush -- forward
local spill_timer -- forward
local watch -- forward


-- Queued events past which, while the sidecar is not taking them, the queue spills to its file.
high_water = function(q)
  local h = floor(q.max_size / 2)
  return h >= 1 and h or 1
end


-- `kind` is "delayed" or "immediate": the flag the timer clears when it fires.
local function schedule(q, delay_s, kind)
  local ok, err = timer_at(delay_s, flush, q, kind)
  if not ok then
    q.log.err("ERROR could not schedule flush to ", q.url, ": ", err)
  end
  return ok
end


-- Counts and logs an event dropped because the queue is full.
local function drop(q)
  q.dropped = q.dropped + 1
  local now = ngx.now()
  if now - q.last_drop_log >= 10 then
    q.log.err("ERROR buffer full (", q.max_size, " events), dropped ",
              q.dropped - q.dropped_logged, " events (", q.dropped, " in total) for ", q.url)
    q.last_drop_log = now
    q.dropped_logged = q.dropped
  end
  return false
end


-- Schedules what the event just appended at index `last` calls for.
local function appended(q, last)
  q.last = last
  if q.running then
    return true -- the running flush drains the queue
  end
  local count = last - q.first + 1
  if (q.failures > 0 or q.settling) and q.overflow_max > 0 and count >= high_water(q) and not q.spill_scheduled then
    -- The sidecar is not taking events (or they wait behind a claimed overflow file) and the buffer
    -- passes its high-water mark: move them to the overflow file from a timer (never file I/O in the
    -- request path).
    q.spill_scheduled = timer_at(0, spill_timer, q) and true or false
  end
  if count >= q.batch_size and q.failures == 0 and not q.settling and not q.immediate then
    q.immediate = schedule(q, 0, "immediate") and true or false
  elseif not q.delayed and not q.immediate then
    q.delayed = schedule(q, q.interval_ms / 1000, "delayed") and true or false
  end
  return true
end


--- The slots of the next record: returns the queue's array and the index before the record's RECORD
-- values (event.lua's FIELDS order), or nil when the queue is full (the event is counted and dropped).
-- The caller stores each value as it computes it, then calls commit(q) before it yields; a record
-- never committed is overwritten by the next one. (One call carrying the whole record kept LuaJIT
-- from compiling the log phase: "register coalescing too complex" with that many live values.)
-- Cheap: no I/O; commit creates at most one timer.
function _M.slot(q)
  if q.last - q.first + 1 >= q.max_size then
    return drop(q)
  end
  return q.items, q.last * RECORD
end


--- Queues the record filled through slot(q).
function _M.commit(q)
  return appended(q, q.last + 1)
end


--- Gives the queue its overflow file: `dir` (Kong's prefix) and the bound in bytes (0: none). The
-- file is the worker's own: its id (stable across reloads, so the next worker replays what an exiting
-- one left) and a hash of the sidecar_url.
function _M.set_overflow(q, dir, max_bytes)
  q.overflow_max = max_bytes or 0
  if q.overflow_max <= 0 or not dir or dir == "" then
    q.overflow_path = nil
    return
  end
  if sub(dir, -1) ~= "/" then
    dir = dir .. "/"
  end
  local hash = ngx.crc32_short and ngx.crc32_short(q.url) or #q.url
  local worker = ngx.worker.id and ngx.worker.id() or 0
  q.overflow_path = dir .. "aforo-overflow-" .. worker .. "-" .. hash .. ".jsonl"
  q.overflow_claimed = q.overflow_path .. ".replaying"
  if overflow.has(q) and not q.immediate and not q.running then
    -- Left by the worker this one replaces: send it without waiting for traffic.
    q.immediate = schedule(q, 0, "immediate") and true or false
  end
  if not q.watching then
    -- The worker this one replaces may still be exiting, and write its file after this one started.
    q.watching = timer_at(overflow.CHECK_S, watch, q) and true or false
  end
end


--- The queue's counters (events dropped because the buffer was full, spilled to and dropped past the
-- overflow file, events waiting in memory).
function _M.stats(q)
  return { queued = q.last - q.first + 1, dropped = q.dropped, spilled = q.spilled,
           overflow_dropped = q.overflow_dropped, overflow_file = q.overflow_path }
end


--- The most events one POST to `url` may carry, as the sidecar's handshake
-- reported it (server.max_batch_events); nil forgets it.
function _M.set_max_post(url, n)
  max_posts[url] = n
end


-- Sends the queued events, up to the most one POST may carry, and drops them on success.
local function send_one(q)
  local first = q.first
  local stop = min(q.last, first + (max_posts[q.url] or q.batch_size) - 1)
  local items = q.items
  local put, parts = q.put, q.parts
  parts[1] = '{"events":['
  local k = 1
  for i = first, stop do
    if i > first then
      k = k + 1
      parts[k] = ","
    end
    k = put(parts, k, items, (i - 1) * RECORD)
  end
  parts[k + 1] = "]}"
  local body = concat(parts, "", 1, k + 1)
  for i = 1, k + 1 do
    parts[i] = nil
  end
  local n = stop - first + 1
  local ok, err, too_large = q.send(q, body)
  if too_large and n > 1 then
    -- The sidecar takes fewer events per POST than we sent (its limit was lowered, or the events
    -- are large): halve the POSTs and send again; nothing is dropped.
    max_posts[q.url] = floor(n / 2)
    q.log.warn("sidecar refused ", n, " events in one POST (", err, "); sending at most ", max_posts[q.url])
    return 0
  end
  if not ok and not too_large then
    return nil, err
  end
  if too_large then
    q.log.err("ERROR sidecar refused an event with ", err, ", event dropped")
  end
  for i = (first - 1) * RECORD + 1, stop * RECORD do
    items[i] = nil
  end
  -- `first` may have moved only through this function, and only one runs.
  q.first = stop + 1
  return n
end


-- Moves the queued records to the front of `items`. Under steady load the queue is never empty, so
-- without this its indexes would grow without end, and past the table's array part every record would
-- go to its hash part (a new key per value, and a rehash whenever the dead keys fill it).
local function compact(q)
  local items, from = q.items, (q.first - 1) * RECORD
  local n = (q.last - q.first + 1) * RECORD
  for i = 1, n do
    items[i] = items[from + i]
  end
  -- Slots up to `from` were cleared as their records were sent: only the moved ones' old slots remain.
  for i = max(n, from) + 1, from + n do
    items[i] = nil
  end
  q.first, q.last = 1, q.last - q.first + 1
end


watch = function(premature, q)
  q.watching = false
  if premature or ngx.worker.exiting() or not q.overflow_path then
    return
  end
  if not q.running and not q.immediate and not q.delayed and overflow.has(q) then
    q.overflow_pending = true
    q.immediate = schedule(q, 0, "immediate") and true or false
  end
  q.watching = timer_at(overflow.CHECK_S, watch, q) and true or false
end


spill_timer = function(premature, q)
  q.spill_scheduled = false
  if q.running or (q.failures == 0 and not q.settling) or q.last - q.first + 1 < high_water(q) then
    return -- the running flush spills after a failure; or the sidecar is back, or a flush spilled
  end
  q.running = true
  local ok, err = overflow.spill(q)
  q.running = false
  if not ok then
    q.log.err("ERROR could not write overflow file ", q.overflow_path, ": ", err)
  end
end


-- Sends the queue's events: one POST of whatever is there, then further POSTs only while batch_size
-- or more are waiting, so that under load every POST carries at least batch_size events instead of
-- the few that arrived during the previous round trip. `all` (worker exiting, flush_all) sends everything.
local function drain(q, all)
  local ok, wait = overflow.replay(q, max_posts)
  if not ok then
    return nil, wait
  end
  q.settling = wait ~= nil
  if wait then
    return true, wait -- the queue is newer than the claimed file: it goes after it
  end
  local sent_any = false
  while q.last >= q.first do
    if sent_any and not all and q.last - q.first + 1 < q.batch_size then
      break -- a partial batch waits for the interval or for batch_size events
    end
    local sent, send_err = send_one(q)
    if not sent then
      return nil, send_err
    end
    sent_any = true
    -- Before the next send yields, so appends see the new indexes; only once the queued records are
    -- no more than those sent since the last move (a backlog draining is not copied over and over).
    if q.first > COMPACT_AFTER and q.last - q.first < q.first then
      compact(q)
    end
    if q.failures > 0 then
      q.log.notice("sidecar ingest recovered at ", q.url)
      q.failures = 0
    end
  end
  if q.last < q.first then
    q.first, q.last = 1, 0 -- fresh indexes when empty
  end
  return true
end


-- Appends the queue to the overflow file, after the older events there, for the next worker (same
-- id), which sends the file in order. Returns true when done.
local function hand_over(q)
  local n = q.last - q.first + 1
  local ok, werr = overflow.spill(q)
  if ok then
    if n > 0 then
      q.log.notice("worker exiting: ", n, " events appended to ", q.overflow_path, " for the next worker")
    end
    return true
  end
  q.log.err("ERROR could not write overflow file ", q.overflow_path, ": ", werr)
end


local function drain_on_exit(q)
  local err
  -- Older events wait in the overflow file: sending it now could outlast worker_shutdown_timeout.
  if q.overflow_max > 0 and overflow.has(q) and hand_over(q) then
    return
  end
  for _ = 1, EXIT_ATTEMPTS do
    local ok
    ok, err = drain(q, true) -- true, or true and the wait for a claimed file, or nil and why
    if ok and not err then
      return
    end
    if ok then
      -- A file was claimed meanwhile and is not settled: the queue goes after it.
      if hand_over(q) then
        return
      end
      err = "overflow file not writable"
      break
    end
  end
  local lost = q.last - q.first + 1
  if q.overflow_max > 0 and q.overflow_path then
    local ok, werr = overflow.spill(q)
    if ok then
      q.log.warn("worker exiting: ", lost, " events could not be sent to ", q.url, ": ", err,
                 "; kept in ", q.overflow_path, " for the next worker")
      return
    end
    err = err .. "; overflow file: " .. tostring(werr)
  end
  q.log.err("ERROR worker exiting: ", lost, " events could not be sent to ", q.url, ": ", err)
end


flush = function(premature, q, kind, all)
  if kind then
    q[kind] = false
  end
  if premature or ngx.worker.exiting() then
    if q.running then
      return -- the running flush sees exiting() and drains
    end
    q.running = true
    drain_on_exit(q)
    q.running = false
    return
  end

  if q.running then
    return
  end
  q.running = true
  local ok, err = drain(q, all)
  if ngx.worker.exiting() then
    -- Still running: a premature timer firing meanwhile must not start a second drain.
    drain_on_exit(q)
    q.running = false
    return
  end
  q.running = false
  if ok then
    if err and not q.delayed and not q.immediate then
      -- An overflow file was claimed and is read once settled: `err` is the wait in seconds.
      q.delayed = schedule(q, err, "delayed") and true or false
    elseif q.last < q.first then
      q.first, q.last = 1, 0
    elseif not q.delayed and not q.immediate then
      -- A partial batch is left (add schedules nothing while a flush runs): send it after the interval.
      q.delayed = schedule(q, q.interval_ms / 1000, "delayed") and true or false
    end
    return
  end

  q.failures = q.failures + 1
  if q.overflow_max > 0 and q.overflow_path and q.last - q.first + 1 >= high_water(q) then
    q.running = true
    local spilled, serr = overflow.spill(q)
    q.running = false
    if not spilled then
      q.log.err("ERROR could not write overflow file ", q.overflow_path, ": ", serr)
    end
  end
  if q.failures == 1 or q.failures % 20 == 0 then
    q.log.err("ERROR could not send events to sidecar at ", q.url, ": ", err,
              " (", q.last - q.first + 1, " events kept, retrying)")
  end
  local backoff = min(q.interval_ms * 2 ^ q.failures, MAX_BACKOFF_MS)
  if not q.delayed then
    q.delayed = schedule(q, backoff / 1000, "delayed") and true or false
  end
end


--- Flushes every queue now (used by tests and tools); runs the flush in this coroutine.
function _M.flush_all()
  for _, q in pairs(queues) do
    flush(false, q, nil, true)
  end
end


--- All queues, for tests.
function _M._queues()
  return queues
end


--- The overflow watch timer's function, for tests.
function _M._watch()
  return watch
end


--- Forgets all queues, for tests.
function _M._reset()
  queues = {}
  max_posts = {}
end


return _M
