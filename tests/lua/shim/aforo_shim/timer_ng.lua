-- TEST SHIM: an emulation of the worker-exit semantics of Kong's lua-resty-timer-ng, which every Kong 3.x
-- installs in place of ngx.timer.at (kong/globalpatches.lua keeps nginx's own as _G.native_timer_at).
--
-- What it reproduces (and what a plugin must survive):
--   * ngx.timer.at(delay, fn, ...) queues a job of the timer library, not an nginx timer; it is accepted
--     with any delay, also while the worker exits (nginx refuses delay > 0 then);
--   * when the worker exits, the library stops within about a second (STOP_AFTER_S here) and runs each
--     job still pending once, with premature = true;
--   * a job created after it stopped is accepted and never runs (its events, if it was a flush, vanish);
--   * _G.native_timer_at is nginx's ngx.timer.at, which keeps working until the worker is gone.
-- What it does not: timer-ng's wheel, its thread pool, timer names, ngx.timer.every, stats, debug.
-- Jobs run in nginx timers of their own here (one per job), not in the library's threads.
local ngx = ngx
local unpack = unpack or table.unpack

local _M = {}

local STOP_AFTER_S = 0.5 -- "within about a second"

local installed = false
local native_at
local stopped = false
local pending = {} -- job -> true while created and not run


local function run(job, premature)
  if not pending[job] then
    return
  end
  pending[job] = nil
  local ok, err = pcall(job.fn, premature, unpack(job.args, 1, job.n))
  if not ok then
    ngx.log(ngx.ERR, "[timer-ng shim] job failed: ", err)
  end
end


local function fire(premature, job)
  if premature then
    return -- the worker exits: the library's stop runs it (below), as timer-ng does
  end
  run(job, false)
end


local function stop(premature)
  if not premature and not ngx.worker.exiting() then
    return native_at(1, stop) -- not exiting yet: look again in a second
  end
  ngx.sleep(STOP_AFTER_S)
  stopped = true
  local jobs = {}
  for job in pairs(pending) do
    jobs[#jobs + 1] = job
  end
  table.sort(jobs, function(a, b) return a.seq < b.seq end)
  for _, job in ipairs(jobs) do
    run(job, true)
  end
end


local seq = 0

local function timer_at(delay, fn, ...)
  if type(fn) ~= "function" then
    error("argument 'callback' must be a function", 2)
  end
  if stopped then
    return true -- accepted, never run
  end
  seq = seq + 1
  local job = { fn = fn, args = { ... }, n = select("#", ...), seq = seq }
  pending[job] = true
  -- nginx refuses delayed timers while the worker exits; the library keeps such a job for its stop.
  native_at(delay, fire, job)
  return true
end


--- Replaces ngx.timer.at in this worker (init_worker), keeping nginx's own as _G.native_timer_at.
function _M.install()
  if installed then
    return
  end
  installed = true
  native_at = ngx.timer.at
  _G.native_timer_at = native_at
  ngx.timer.at = timer_at
  native_at(1, stop)
end


--- Test hooks.
_M._pending = function() return pending end
_M._stopped = function() return stopped end

return _M
