-- Decision leases of one worker (see handler.lua): what the sidecar let this
-- worker admit without asking, and how many it admitted and has not reported.
--
-- A lease covers one customer, service, route, method and configured feature
-- (the route key) and, by its scope, every path ("route"), the paths under a
-- prefix ("prefix", segment-aware like the sidecar's feature rules) or one
-- path ("path"). Route and prefix leases sit in a small list per route key;
-- path leases under route key .. "\0" .. path.
local pairs = pairs
local tonumber = tonumber
local type = type
local next = next
local find = string.find
local byte = string.byte
local floor = math.floor
local max = math.max
local lower = string.lower
local tostring = tostring
local SLASH = 47

local SWEEP_SLOTS = 10000 -- route keys and path leases past which expired leases are dropped
local SWEEP_EVERY_S = 10   -- and at least this often

local _M = {}

local by_route = {} -- route key -> array of leases of scope route (prefix "") and prefix
local by_path = {}  -- route key .. "\0" .. path -> lease of scope path
local open = {} -- route key .. "\0" .. path -> array of reports not confirmed by an answer (see report)
local report_prefix -- this worker's part of report ids (its pid and start time), made on first use
local report_seq = 0
local slots = 0
local sweep_at, next_sweep = SWEEP_SLOTS, 0


-- "/v1/a" covers "/v1/a" and "/v1/a/x", not "/v1/ab"; "" covers every path.
-- (find and byte: no substring is made on the request path.)
local function covers(prefix, path)
  local n = #prefix
  if n == 0 then
    return true
  end
  if find(path, prefix, 1, true) ~= 1 then
    return false
  end
  local nxt = byte(path, n + 1)
  return nxt == nil or nxt == SLASH or byte(prefix, n) == SLASH
end


--- The lease covering this request, or nil.
function _M.find(route_key, path)
  local group = by_route[route_key]
  if group then
    -- The usual group holds one lease: checked before the loop, which then never runs (a loop
    -- entered on this per-request path would keep LuaJIT from compiling the caller).
    local l = group[1]
    if l and covers(l.prefix, path) then
      return l
    end
    for i = 2, #group do
      l = group[i]
      if covers(l.prefix, path) then
        return l
      end
    end
  end
  return by_path[route_key .. "\0" .. path]
end


--- Admits one request under the lease when it can: returns true (counted),
-- or false when the request must ask the sidecar or renew the lease (renew).
-- From half left or a quarter of the lifetime left, one request renews while
-- the others keep using what is left.
function _M.admit(l, now)
  if l.left <= 0 or l.expires <= now then
    return false
  end
  if not l.renewing and (l.left <= l.low or now >= l.renew_at) then
    return false
  end
  l.left = l.left - 1
  l.used = l.used + 1
  return true
end


--- Marks the lease as being renewed and takes its unreported count (the
-- caller reports it, or gives it back with untake when the check fails).
function _M.take(l)
  local used = l.used
  l.used = 0
  l.renewing = true
  return used
end


--- Units of this lease and of the leases it replaced that will never be admitted (replaced, ended
-- by a deny, or expired), taken for the check about to be sent ("lease_unused": the sidecar gives
-- them back to its chunk); part of that check's report (see report).
function _M.take_unused(l, now)
  if l.left > 0 and l.expires <= now then
    l.unused = l.unused + l.left
    l.left = 0
  end
  local n = l.unused
  l.unused = 0
  return n
end


--- Adds n to the unused count of the key's lease (new, else old if still in place, else the one
-- found): a renewal's own request, admitted under old, that the sidecar counted as the check's quantity.
function _M.add_unused(new, old, route_key, path, n)
  local l = new or (not old.detached and old) or _M.find(route_key, path)
  if l then
    l.unused = l.unused + n
  end
end


-- A lease that admits nothing more: what it had left is unused.
local function close(l)
  l.unused = l.unused + max(l.left, 0)
  l.left = 0
end


--- A renewal is due (admit said no) and the lease still admits: admits this
-- request under it, marks the lease as being renewed and takes its unreported
-- count, for a check sent in the background whose own quantity is this
-- request (so it is not in the count). nil when the request must ask itself
-- (nothing left, expired, or a renewal already in flight).
function _M.renew(l, now)
  if l.left <= 0 or l.expires <= now or l.renewing then
    return nil
  end
  l.left = l.left - 1
  return _M.take(l)
end


-- Lease reports. What a check reports for a key ("leased": requests admitted under its leases;
-- "lease_unused": units its ended leases never admitted) goes with an id ("report_id"). A check
-- that fails after it went out may or may not have been counted by the sidecar, so its report is
-- kept, id and counts, and a later check of the lease sends it again ("report_resent"), grown by
-- what the lease has to report since: a report's counts are cumulative for its id, and the sidecar
-- counts for an id only what it did not count yet. So nothing is lost and nothing counted twice.
-- Kept reports stay with the lease (l.kept), which hands them on to the lease that replaces it;
-- those of a check made without a live lease wait for the key's next check of that path.

local function next_report_id()
  if not report_prefix then
    report_prefix = string.format("%x-%x", ngx.worker.pid(), floor(ngx.now() * 1000))
  end
  report_seq = report_seq + 1
  return report_prefix .. ":" .. report_seq
end


local function push(list_owner, field, rep)
  local list = list_owner[field]
  if list then
    list[#list + 1] = rep
  else
    list_owner[field] = { rep }
  end
end


-- Keeps rep for a later check: with l if it is still in place, else with the lease in place for
-- the key and path now, else under the key and path.
local function keep(l, route_key, path, rep)
  if not (l and not l.detached) then
    l = _M.find(route_key, path)
  end
  if l then
    push(l, "kept", rep)
  else
    push(open, route_key .. "\0" .. path, rep)
  end
end


local function pop(owner, field)
  local list = owner[field]
  local rep = table.remove(list, 1)
  if #list == 0 then
    owner[field] = nil
  end
  return rep
end


--- The report for the lease's (or the key's) next check: the oldest report a failed check kept
-- (counts added), else a new one. Every check carries one, 0 counts included: if its answer is
-- lost, sending the id again tells the sidecar that the lease in that answer never arrived.
function _M.report(l, route_key, path, leased, unused)
  local rep
  if l and l.kept then
    rep = pop(l, "kept")
  elseif next(open) then
    local k = route_key .. "\0" .. path
    if open[k] then
      rep = pop(open, k)
    end
  end
  if rep then
    rep.leased, rep.unused = rep.leased + leased, rep.unused + unused
    return rep
  end
  return { id = next_report_id(), leased = leased, unused = unused }
end


--- The check carrying rep failed. sent: it went out and no answer came back (the sidecar may have
-- counted it, and granted a lease: marked "report_resent" from then on); false when it never
-- reached the sidecar or the sidecar refused it before counting (a non-200 answer). Kept, and sent
-- again by a later check, unless there is nothing in it.
function _M.check_failed(l, rep, route_key, path, sent)
  if l then
    l.renewing = nil
  end
  rep.sent = rep.sent or sent
  if rep.sent or rep.leased > 0 or rep.unused > 0 then
    keep(l, route_key, path, rep)
  end
end


--- Requests admitted under l that a check did not count (a denied renewal's own request) go back to
-- the lease, reported next time; if that lease was replaced or dropped meanwhile (another check of
-- the key settled, or a sweep), to the lease in place now, else to the key's next report.
function _M.untake(l, used, route_key, path)
  l.renewing = nil
  if used <= 0 then
    return
  end
  if l.detached then
    l = _M.find(route_key, path)
  end
  if l then
    l.used = l.used + used
  else
    push(open, route_key .. "\0" .. path, { id = next_report_id(), leased = used, unused = 0 })
  end
end


--- A renewal's check (rep, whose own request l admitted) got no answer: its report, with that
-- request in it, is sent again by a later check. went_out: false when its timer never ran (the
-- worker exited); sent: as for check_failed. After a failure that went out the lease admits what it
-- has left without trying again; once it runs out, requests ask themselves (and fallback_on_error
-- applies if that fails too).
function _M.renewal_failed(l, rep, route_key, path, went_out, sent)
  l.renewing = nil
  rep.leased = rep.leased + 1
  rep.sent = rep.sent or sent
  if went_out then
    l.low, l.renew_at = -1, math.huge
  end
  keep(l, route_key, path, rep)
end


-- The lease l replaces old: old's counts and kept reports go with l.
local function inherit(l, old)
  l.used, l.unused = l.used + old.used, l.unused + old.unused
  old.used, old.unused = 0, 0
  local kept = old.kept
  if kept then
    old.kept = nil
    for i = 1, #kept do
      push(l, "kept", kept[i])
    end
  end
end


local function unlink(l)
  l.detached = true
  if l.path_key then
    if by_path[l.path_key] == l then
      by_path[l.path_key] = nil
      slots = slots - 1
    end
    return
  end
  local group = l.group
  for i = 1, #group do
    if group[i] == l then
      table.remove(group, i)
      break
    end
  end
  if #group == 0 and by_route[l.route_key] == group then
    by_route[l.route_key] = nil
    slots = slots - 1
  end
end


local function sweep(now)
  local n = 0
  for k, l in pairs(by_path) do
    if l.expires <= now and not l.renewing then
      l.detached = true
      by_path[k] = nil
    else
      n = n + 1
    end
  end
  for k, group in pairs(by_route) do
    for i = #group, 1, -1 do
      local l = group[i]
      if l.expires <= now and not l.renewing then
        l.detached = true
        table.remove(group, i)
      end
    end
    if #group == 0 then
      by_route[k] = nil
    else
      n = n + 1
    end
  end
  slots = n
  -- Live leases are kept: sweeping again only once their number doubled keeps inserts O(1) amortized.
  sweep_at = math.max(SWEEP_SLOTS, 2 * n)
  next_sweep = now + SWEEP_EVERY_S
end


local function link(l, route_key, path, now)
  if slots >= sweep_at or now >= next_sweep then
    -- Expired leases nobody asked about since: their unreported counts are lost (the customer has
    -- not come back on that key for a whole sweep period; the sidecar counted them as used).
    sweep(now)
  end
  if l.scope == "path" then
    local k = route_key .. "\0" .. path
    local old = by_path[k]
    if old then
      close(old)
      inherit(l, old)
    else
      slots = slots + 1
    end
    l.path_key = k
    by_path[k] = l
    return
  end
  local group = by_route[route_key]
  if not group then
    group = {}
    by_route[route_key] = group
    slots = slots + 1
  end
  l.group, l.route_key = group, route_key
  for i = 1, #group do
    local old = group[i]
    if old.prefix == l.prefix then
      close(old)
      inherit(l, old)
      group[i] = l
      return
    end
  end
  group[#group + 1] = l
end


local REMAINING = "x-ratelimit-remaining"

-- A decision's headers as parallel arrays, made once per lease so that the requests it admits set
-- them with a numeric loop and no table of their own ({ names, values, n, counted = index of
-- `counted_name`, compared case-insensitively }); nil when there are none.
local function header_list(headers, counted_name)
  if type(headers) ~= "table" then
    return nil
  end
  local names, values, n, counted = {}, {}, 0, nil
  for k, v in pairs(headers) do
    if type(k) == "string" and (type(v) == "string" or type(v) == "number") then
      n = n + 1
      names[n], values[n] = k, tostring(v)
      if counted_name and lower(k) == counted_name then
        counted = n
      end
    end
  end
  if n == 0 then
    return nil
  end
  return { names = names, values = values, n = n, counted = counted }
end


--- Applies the answer of a check: a new lease replaces the one the request
-- found (old, may be nil), which hands on its count; without a new lease the
-- old one admits nothing more (the sidecar's latest answer governs) but keeps
-- its count for the next check. Malformed leases are ignored.
-- @param grant the decision's lease table, or nil
-- @param decision the decision (headers, upstream_headers, remaining_quota)
function _M.settle(old, route_key, path, grant, decision, now)
  if old then
    old.renewing = nil
  end
  local n = type(grant) == "table" and tonumber(grant.requests)
  local ttl = n and tonumber(grant.ttl_ms)
  local scope = n and grant.scope
  local prefix = ""
  if scope == "prefix" then
    prefix = grant.prefix
    if type(prefix) ~= "string" then
      scope = nil
    end
  elseif scope ~= "route" and scope ~= "path" then
    scope = nil
  end
  if not n or n < 1 or not ttl or ttl <= 0 or not scope or decision.allowed ~= true then
    if old then
      close(old)
    end
    -- Another check of this key may have settled a newer lease meanwhile: this answer is the
    -- latest, so that one admits nothing more either (its counts are still reported).
    local current = _M.find(route_key, path)
    if current then
      close(current)
    end
    return nil
  end
  n = floor(n)
  local l = {
    scope = scope, prefix = prefix, left = n, granted = n, low = floor(n / 2), used = 0, unused = 0,
    expires = now + ttl / 1000, renew_at = now + ttl * 0.75 / 1000,
    remaining = tonumber(decision.remaining_quota),
  }
  l.headers = header_list(decision.headers, REMAINING)
  l.upstream = header_list(decision.upstream_headers)
  if not (l.remaining and l.headers and l.headers.counted) then
    l.remaining = nil -- nothing to count down
  end
  if old then
    unlink(old)
    close(old)
    inherit(l, old)
  end
  link(l, route_key, path, now)
  if l.remaining then
    -- Requests admitted under the old lease after its renewal went out are not in the sidecar's
    -- count yet: X-RateLimit-Remaining goes on counting down from them.
    l.remaining = l.remaining - l.used
  end
  return l
end


--- Every lease of the worker, for specs: returns the number of slots in use.
function _M._slots()
  return slots
end


--- Forgets every lease (specs).
function _M._reset()
  by_route, by_path, open, slots = {}, {}, {}, 0
  report_prefix, report_seq = nil, 0
  sweep_at, next_sweep = SWEEP_SLOTS, 0
end


return _M
