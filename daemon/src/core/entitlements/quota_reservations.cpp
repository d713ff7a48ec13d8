// Quota reservations: the per-key policy of quota_reservations.hpp and the store's script.
#include "core/entitlements/quota_reservations.hpp"

#include <algorithm>
#include <cmath>

#include "core/entitlements/redis_keys.hpp"

namespace aforo::core::entitlements {

namespace {
// KEYS[1] = reservation hash; ARGV = instance, consumed, held, want, limit, ttl_ms, expire_at (unix s),
// bound, others.
// 1. Holders whose e: passed (another sidecar stopped calling) are settled: u:{i} += min(h:{i},
//    r:{i}) (all of h: for a hold without r:), the rest of the hold returns: the holder admitted at
//    most r:{i} units its u: does not show. 2. A caller whose u: is missing while it knows the
//    others' part (others >= 0: the store lost the key or this holder's record) leaves it as a
//    floor: b:{me} = others. 3. u:{me} = max(u:{me}, consumed), always written: consumption is
//    absolute, so a call retried after a timeout changes nothing. 4. h:{me} = held (the caller's
//    own view: a grant whose reply was lost is given back here). 5. reserved = max(sum of u: s: h:,
//    b:{i} + u:{i} + h:{i} for every floor); grant = min(want, limit - reserved), never negative.
//    6. h:{me} += grant with e:{me} = now + ttl (the store's clock) and r:{me} = bound, or h: e: r:
//    deleted when nothing is held (a return). Effects replication (the default from Redis 7; asked
//    for on 5 and 6) because the script reads TIME.
constexpr std::string_view script = R"lua(
if redis.replicate_commands then redis.replicate_commands() end -- TIME then writes (Redis 5 and 6)
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'none' and t ~= 'hash' then
  return redis.error_reply('WRONGTYPE quota reservation ' .. KEYS[1])
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local me, consumed, held = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local want, limit, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local bound, others = tonumber(ARGV[8]), tonumber(ARGV[9] or '-1') -- no bound: settled whole
local f = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do f[all[i]] = tonumber(all[i + 1]) end
local expired = {}
for k, v in pairs(f) do
  if string.sub(k, 1, 2) == 'e:' and string.sub(k, 3) ~= me and v <= now then
    expired[#expired + 1] = string.sub(k, 3)
  end
end
for _, i in ipairs(expired) do
  local h = f['h:' .. i] or 0
  local r = f['r:' .. i]
  if r and r < h then h = r end
  if h > 0 then
    f['u:' .. i] = (f['u:' .. i] or 0) + h
    redis.call('HSET', KEYS[1], 'u:' .. i, f['u:' .. i])
  end
  f['h:' .. i], f['e:' .. i], f['r:' .. i] = nil, nil, nil
  redis.call('HDEL', KEYS[1], 'h:' .. i, 'e:' .. i, 'r:' .. i)
end
if f['u:' .. me] == nil and others > (f['b:' .. me] or 0) then
  f['b:' .. me] = others
  redis.call('HSET', KEYS[1], 'b:' .. me, others)
end
if f['u:' .. me] == nil or consumed > f['u:' .. me] then
  f['u:' .. me] = consumed
  redis.call('HSET', KEYS[1], 'u:' .. me, consumed)
end
f['h:' .. me] = held
local used, holds = 0, 0
for k, v in pairs(f) do
  local p = string.sub(k, 1, 2)
  if p == 'u:' or p == 's:' then used = used + v elseif p == 'h:' then holds = holds + v end
end
local reserved = used + holds
for k, v in pairs(f) do
  if string.sub(k, 1, 2) == 'b:' then
    local i = string.sub(k, 3)
    local floor = v + (f['u:' .. i] or 0) + (f['h:' .. i] or 0)
    if floor > reserved then reserved = floor end
  end
end
local grant = math.min(want, limit - reserved)
if grant < 0 then grant = 0 end
held = held + grant
if held > 0 then
  redis.call('HSET', KEYS[1], 'h:' .. me, held, 'e:' .. me, now + ttl)
  if bound then redis.call('HSET', KEYS[1], 'r:' .. me, bound) else redis.call('HDEL', KEYS[1], 'r:' .. me) end
else
  redis.call('HDEL', KEYS[1], 'h:' .. me, 'e:' .. me, 'r:' .. me)
end
redis.call('EXPIREAT', KEYS[1], ARGV[7])
return {grant, used, reserved + grant}
)lua";

// Smallest used count that reaches percent% of limit, without overflow.
std::int64_t warning_threshold(std::int64_t limit, std::uint32_t percent) {
  const std::int64_t p = percent;
  return (limit / 100) * p + ((limit % 100) * p + 99) / 100;
}

constexpr std::int64_t rate_sample_ms = 20;
}  // namespace

std::string_view quota_reserve_script() { return script; }

void quota_reservations::set_connected(bool up) {
  if (up == connected_) return;
  connected_ = up;
  if (!up) return;
  // Back: a new outage gets a new allowance, and every key reports again (a store restarted empty
  // gets each live holder's consumption and holds back).
  down_warned_ = false;
  for (auto& [key, s] : keys_) {
    s.down_used = 0;
    s.failed_ms = -1;
    s.reported = -1;
  }
  due_ = true;
}

bool quota_reservations::take_down_warning() {
  const bool w = down_warning_;
  down_warning_ = false;
  return w;
}

quota_reservations::state& quota_reservations::state_of(std::string_view customer, std::string_view feature,
                                                        std::int64_t limit, period_kind period, std::int64_t now) {
  const period_window w = period_of(period, now);
  quota_counters::make_key(key_buf_, customer, feature, w.key());
  auto it = keys_.find(std::string_view(key_buf_));
  if (it == keys_.end()) {
    it = keys_.emplace(key_buf_, state{}).first;
    it->second.period_end = w.end;
    it->second.limit = limit;
    it->second.rate_mark_ms = now_ms_;
  }
  state& s = it->second;
  if (limit >= 0 && limit != s.limit) {
    s.limit = limit;
    s.last_remaining = -1;
  }
  return s;
}

void quota_reservations::write_off(state& s) {
  // Set-aside units nobody reported: the plugin may still have admitted them, so they count as
  // consumed (never returned); a report arriving later is taken from what was written off.
  s.consumed += s.lease_pool;
  s.written_off += s.lease_pool;
  s.lease_pool = 0;
}

void quota_reservations::expire_held(state& s) {
  if ((s.held > 0 || s.lease_pool > 0) && now_ms_ >= s.held_until_ms) {
    s.held = 0;  // the store settles them; no longer ours to admit
    write_off(s);
  }
}

void quota_reservations::sample_rate(state& s) {
  const std::int64_t dt = now_ms_ - s.rate_mark_ms;
  if (dt < rate_sample_ms) return;
  const double inst = static_cast<double>(s.consumed - s.rate_mark) * 1000.0 / static_cast<double>(dt);
  s.local_rate = s.local_rate == 0 ? inst : 0.6 * s.local_rate + 0.4 * inst;
  s.rate_mark = s.consumed;
  s.rate_mark_ms = now_ms_;
}

std::int64_t quota_reservations::target_of(const state& s) const {
  const double base = std::ceil(s.local_rate * static_cast<double>(o_.chunk_window_ms) / 1000.0);
  std::int64_t t = std::min<std::int64_t>(o_.max_chunk, std::max<std::int64_t>(1, static_cast<std::int64_t>(base)));
  if (s.free >= 0) {
    // What is left for everyone (this sidecar's held included), split by this sidecar's part of
    // the key's cluster rate, halved so that the others' next chunks fit too.
    const std::int64_t avail = std::max<std::int64_t>(s.limit - s.others - s.consumed, 0);
    double share = 1.0;
    if (s.cluster_rate > 0) share = std::min(1.0, s.local_rate / s.cluster_rate);
    t = std::min(t, static_cast<std::int64_t>(static_cast<double>(avail) * share / 2));
  }
  return std::max<std::int64_t>(t, 1);
}

std::int64_t quota_reservations::unreported_of(const state& s) const {
  // At a high rate a report takes longer than R / 2 units to come back: R grows with the rate, so
  // that requests do not wait for it (the bound after a kill is then that long of this traffic).
  const double by_rate = std::ceil(s.local_rate * static_cast<double>(o_.unreported_window_ms) / 1000.0);
  return std::max<std::int64_t>(o_.unreported, static_cast<std::int64_t>(std::min(by_rate, 1e12)));
}

bool quota_reservations::store_usable(const state& s) const {
  return connected_ && !(s.failed_ms >= 0 && now_ms_ - s.failed_ms < o_.recheck_ms);
}

quota_result quota_reservations::result(state& s, bool allowed, std::int64_t limit) const {
  quota_result r;
  r.allowed = allowed;
  r.limit = limit;
  r.reset_at = s.period_end;
  std::int64_t remaining = std::max<std::int64_t>(limit - s.others - s.consumed, 0);
  if (s.last_remaining >= 0) remaining = std::min(remaining, s.last_remaining);
  s.last_remaining = remaining;
  r.remaining = remaining;
  r.used = limit - remaining;
  r.warning = allowed && warning_percent_ > 0 && limit > 0 && r.used >= warning_threshold(limit, warning_percent_);
  return r;
}

quota_result quota_reservations::check_and_consume(std::string_view customer, std::string_view feature,
                                                   std::int64_t limit, period_kind period, std::int64_t quantity,
                                                   std::int64_t now) {
  state& s = state_of(customer, feature, limit, period, now);
  s.last_use_ms = now_ms_;
  expire_held(s);
  sample_rate(s);
  quantity = std::max<std::int64_t>(quantity, 0);
  if (quantity == 0) return result(s, s.consumed + s.others <= limit, limit);
  const bool within_cap = s.consumed + s.lease_pool + quantity <= s.cap;
  if (s.held >= quantity && within_cap) {
    s.held -= quantity;
    s.consumed += quantity;
    const std::int64_t t = target_of(s);
    // Refill from half the chunk; report from half of R unacknowledged, so a request rarely waits.
    if (!s.in_flight &&
        ((t > 1 && s.held <= t / 2) || s.cap - s.consumed - s.lease_pool < (unreported_of(s) + 1) / 2)) {
      s.refill = true;
      due_ = true;
    }
    return result(s, true, limit);
  }
  // Used by the cluster only grows within a period: no room there is final.
  if (s.cluster_used >= 0 && limit - s.cluster_used < quantity) return result(s, false, limit);
  if (!store_usable(s)) {
    const std::int64_t allowance =
        std::max<std::int64_t>(o_.down_allowance, limit / 100 * o_.down_percent + limit % 100 * o_.down_percent / 100);
    if (s.down_used + quantity > allowance) return result(s, false, limit);
    s.down_used += quantity;
    s.consumed += quantity;
    down_admitted_ += static_cast<std::uint64_t>(quantity);
    if (!down_warned_) down_warned_ = down_warning_ = due_ = true;
    return result(s, true, limit);
  }
  // Units held but R unacknowledged reached: wait for the report (no refusal involved).
  if (s.held < quantity && s.refused_ms >= 0 && now_ms_ - s.refused_ms < o_.recheck_ms) return result(s, false, limit);
  s.want += quantity;
  due_ = true;
  quota_counters::make_key(pending_key_, customer, feature, period_of(period, now).key());
  quota_result r;
  r.pending = true;
  r.limit = limit;
  r.reset_at = s.period_end;
  return r;
}

void quota_reservations::consume(std::string_view customer, std::string_view feature, period_kind period,
                                 std::int64_t quantity, std::int64_t now) {
  if (quantity <= 0) return;
  state& s = state_of(customer, feature, -1, period, now);
  expire_held(s);
  const std::int64_t from_pool = std::min(quantity, s.lease_pool);
  s.lease_pool -= from_pool;
  s.consumed += from_pool;
  quantity -= from_pool;
  const std::int64_t from_written_off = std::min(quantity, s.written_off);  // already counted
  s.written_off -= from_written_off;
  quantity -= from_written_off;
  const std::int64_t from_held = std::min(quantity, s.held);
  s.held -= from_held;
  s.consumed += quantity;  // it happened: counted even beyond what is held
}

void quota_reservations::release(std::string_view customer, std::string_view feature, period_kind period,
                                 std::int64_t quantity, std::int64_t now) {
  if (quantity <= 0) return;
  state& s = state_of(customer, feature, -1, period, now);
  expire_held(s);
  const std::int64_t back = std::min(quantity, s.lease_pool);
  s.lease_pool -= back;
  s.held += back;
  s.written_off -= std::min(quantity - back, s.written_off);  // counted already; nothing to give back
}

std::int64_t quota_reservations::lease(std::string_view customer, std::string_view feature, period_kind period,
                                       std::int64_t wanted, std::int64_t ttl_ms, std::int64_t now) {
  (void)ttl_ms;
  quota_counters::make_key(key_buf_, customer, feature, period_of(period, now).key());
  auto it = keys_.find(std::string_view(key_buf_));
  if (it == keys_.end()) return 0;
  state& s = it->second;
  expire_held(s);
  if (target_of(s) <= 1) return 0;  // exact mode: every request reserves its own units
  // Set-aside units stay at most about what the chunk holds for requests asking themselves, so
  // leases a client never uses cannot starve them; and within half of what cap leaves (the plugin
  // may admit them all before anything is reported; the other half is for those requests).
  const std::int64_t n = std::min({wanted, (s.held - s.lease_pool) / 2, (s.cap - s.consumed - s.lease_pool) / 2});
  if (n <= 0) return 0;
  s.held -= n;
  s.lease_pool += n;
  if (!s.in_flight) {
    s.refill = true;  // the store learns the larger bound (and the chunk is refilled)
    due_ = true;
  }
  return n;
}

reserve_call quota_reservations::make_call(const std::string& key, state& s, std::int64_t held_after,
                                           std::int64_t want) {
  s.held = held_after;
  s.in_flight = true;
  s.refill = false;
  s.reported = s.consumed;
  reserve_call c;
  c.key = key;
  c.consumed = s.consumed;
  c.held = held_after + s.lease_pool;
  c.want = std::max<std::int64_t>(want, 0);
  c.limit = s.limit;
  c.expire_at = quota_expire_at(s.period_end);
  c.sent_ms = now_ms_;
  // Waiting requests larger than R fit too: the bound covers them before they are admitted.
  c.bound = std::max(unreported_of(s), s.want) + s.lease_pool;
  c.others = s.free >= 0 ? s.others : -1;
  // Until the answer the store holds either this call or the last acknowledged one: the smaller cap.
  s.cap = std::min(s.cap, c.consumed + c.bound);
  return c;
}

std::vector<reserve_call> quota_reservations::take_calls(std::int64_t now_s, bool report) {
  due_ = false;
  std::vector<reserve_call> out;
  const std::int64_t idle_ms = o_.chunk_ttl_ms / 3;
  for (auto it = keys_.begin(); it != keys_.end();) {
    const std::string& key = it->first;
    state& s = it->second;
    if (s.in_flight) {
      ++it;
      continue;
    }
    expire_held(s);
    const bool holds = s.held + s.lease_pool > 0;
    if (s.period_end <= now_s) {  // period over: give back, report, forget
      if (connected_ && (holds || s.consumed != s.reported)) {
        write_off(s);
        out.push_back(make_call(key, s, 0, 0));
        ++it;
      } else if (!holds && s.consumed == s.reported) {
        it = keys_.erase(it);
      } else {
        ++it;
      }
      continue;
    }
    if (!connected_) {
      ++it;
      continue;
    }
    sample_rate(s);
    const std::int64_t t = target_of(s);
    if (s.want > 0) {
      const std::int64_t ask = std::max(s.want - s.held, t - s.held);
      out.push_back(make_call(key, s, s.held, ask));
    } else if (holds && now_ms_ - s.last_use_ms >= idle_ms) {
      write_off(s);
      out.push_back(make_call(key, s, 0, 0));  // idle: give the chunk back
    } else if (s.refill) {
      out.push_back(make_call(key, s, s.held, std::max<std::int64_t>(t - s.held, 0)));
    } else if (report && s.held > 2 * t) {
      out.push_back(make_call(key, s, t, 0));  // the limit nears: the surplus goes back
    } else if ((report || (s.reported < 0 && store_usable(s))) &&
               (s.consumed != s.reported || (holds && s.held_until_ms - now_ms_ < o_.chunk_ttl_ms / 2))) {
      // Periodically, or at once after a reconnection (a Redis back empty gets this sidecar's part).
      out.push_back(make_call(key, s, s.held, 0));
    }
    ++it;
  }
  return out;
}

void quota_reservations::on_reply(const reserve_call& c, const reserve_reply& r) {
  auto it = keys_.find(std::string_view(c.key));
  if (it == keys_.end()) return;
  state& s = it->second;
  s.in_flight = false;
  s.failed_ms = -1;
  s.down_used = 0;
  s.cap = c.consumed + c.bound;  // the store holds this call now
  s.acked = c.consumed;
  s.held += std::max<std::int64_t>(r.granted, 0);
  if (s.held + s.lease_pool > 0) s.held_until_ms = c.sent_ms + o_.chunk_ttl_ms;
  const std::int64_t mine = c.held + r.granted + c.consumed;
  s.others = std::max<std::int64_t>(r.reserved - mine, 0);
  if (s.cluster_used >= 0 && now_ms_ > s.last_reply_ms) {
    const double inst = static_cast<double>(std::max<std::int64_t>(r.used - s.cluster_used, 0)) * 1000.0 /
                        static_cast<double>(now_ms_ - s.last_reply_ms);
    s.cluster_rate = s.cluster_rate == 0 ? inst : 0.6 * s.cluster_rate + 0.4 * inst;
  }
  s.cluster_used = std::max(s.cluster_used, r.used);
  s.last_reply_ms = now_ms_;
  s.free = std::max<std::int64_t>(c.limit - r.reserved, 0);
  if (c.want > 0 && r.granted < c.want && s.held < s.want)
    s.refused_ms = now_ms_;
  else if (r.granted > 0)
    s.refused_ms = -1;
  s.want = 0;  // the waiting requests decide again now
}

void quota_reservations::on_failure(const reserve_call& c) {
  auto it = keys_.find(std::string_view(c.key));
  if (it == keys_.end()) return;
  state& s = it->second;
  s.in_flight = false;
  s.failed_ms = now_ms_;
  s.reported = -1;  // sent again by the next report
  s.want = 0;
}

std::vector<reserve_call> quota_reservations::shutdown_calls(std::int64_t now_s) {
  (void)now_s;
  std::vector<reserve_call> out;
  for (auto& [key, s] : keys_) {
    if (s.held + s.lease_pool == 0 && s.consumed == s.reported) continue;
    write_off(s);
    s.in_flight = false;
    out.push_back(make_call(key, s, 0, 0));
  }
  return out;
}

std::int64_t quota_reservations::held(std::string_view key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : it->second.held;
}

std::int64_t quota_reservations::lease_pool(std::string_view key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : it->second.lease_pool;
}

std::int64_t quota_reservations::unacknowledged(std::string_view key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : it->second.consumed + it->second.lease_pool - it->second.acked;
}

std::int64_t quota_reservations::target(std::string_view key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : target_of(it->second);
}

}  // namespace aforo::core::entitlements
