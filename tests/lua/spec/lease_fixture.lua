-- What the lease specs (lease_spec.lua, lease_report_spec.lua) share (not a spec itself): a decision
-- with a lease, running the renewals started in timers, and one request through access and
-- header_filter.
local _M = {}

--- A decision allowing with a lease of `requests` (scope "route" unless given), as the sidecar answers.
function _M.leased(helper, requests, scope, extra, prefix)
  local t = { decision = "allow", allowed = true, reason = "ok", remaining_quota = 1000,
              headers = { ["X-RateLimit-Limit"] = "2000", ["X-RateLimit-Remaining"] = "1000" },
              upstream_headers = { ["X-Margin-Guard-Warning"] = "margin-low" },
              lease = { requests = requests, ttl_ms = 1000, scope = scope or "route", prefix = prefix } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return helper.answer(t)
end

--- Runs the lease renewals the requests started in timers (the handshake's timer is left pending).
function _M.renewals(env)
  local pending = env.timers
  env.timers = {}
  for _, t in ipairs(pending) do
    if type(t.args[1]) == "table" then
      t.fn(false, unpack(t.args))
    else
      env.timers[#env.timers + 1] = t
    end
  end
end

function _M.pending_renewals(env)
  local n = 0
  for _, t in ipairs(env.timers) do
    if type(t.args[1]) == "table" then n = n + 1 end
  end
  return n
end

function _M.refused() return nil, "connection refused", false end -- never reached the sidecar
function _M.timed_out() return nil, "timeout", true end           -- went out, no answer

function _M.request(helper, env, handler, conf, path, tenant)
  local r = env.new_request()
  r.headers["X-Tenant-Id"] = tenant or "cust_acme"
  if path then r.path = path end
  helper.access(handler, conf)
  handler:header_filter(conf)
  return r
end

return _M
