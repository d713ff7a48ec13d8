// Quota sharing bookkeeping; see redis_quota_sync.hpp.
#include "core/entitlements/redis_quota_sync.hpp"

#include <algorithm>
#include <numeric>

namespace aforo::core::entitlements {

namespace {
// KEYS = quota hashes. ARGV[1] = this sidecar's instance id; for key i: ARGV[2i] = contribution,
// ARGV[2i+1] = expire_at (unix s). Checks every type first so an error reply has written nothing.
constexpr std::string_view script = R"lua(
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= 'none' and t ~= 'hash' then
    return redis.error_reply('WRONGTYPE quota counter ' .. KEYS[i])
  end
end
local out = {}
for i = 1, #KEYS do
  local mine = tonumber(ARGV[2 * i])
  local cur = tonumber(redis.call('HGET', KEYS[i], ARGV[1]) or '0')
  if mine > cur then redis.call('HSET', KEYS[i], ARGV[1], ARGV[2 * i]) end
  redis.call('EXPIREAT', KEYS[i], ARGV[2 * i + 1])
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[i])) do sum = sum + tonumber(v) end
  out[i] = sum
end
return out
)lua";
}  // namespace

std::string_view quota_sync_script() { return script; }

std::int64_t quota_total(std::span<const std::int64_t> contributions) {
  return std::accumulate(contributions.begin(), contributions.end(), std::int64_t{0});
}

void quota_sync::follow(std::string_view key, std::int64_t period_end, std::int64_t now) {
  if (follow_s_ == 0) return;
  auto it = entries_.find(key);
  if (it == entries_.end()) it = entries_.emplace(std::string(key), entry{}).first;
  it->second.expire_at = quota_expire_at(period_end, expire_margin_s_);
  it->second.follow_until = std::max(it->second.follow_until, now + follow_s_);
}

std::vector<std::vector<quota_push>> quota_sync::collect(quota_counters& q, std::int64_t now) {
  for (auto& d : q.take_pending_deltas()) {
    auto it = entries_.find(std::string_view(d.key));
    if (it == entries_.end()) it = entries_.emplace(std::move(d.key), entry{}).first;
    it->second.contribution += d.delta;
    it->second.expire_at = quota_expire_at(d.period_end, expire_margin_s_);
    if (follow_s_ > 0) it->second.follow_until = std::max(it->second.follow_until, now + follow_s_);
  }
  std::vector<std::vector<quota_push>> out;
  for (auto& [key, e] : entries_) {
    if (e.sending || (e.contribution == e.confirmed && e.follow_until <= now)) continue;
    if (out.empty() || out.back().size() >= max_pushes_) out.emplace_back();
    out.back().push_back(quota_push{key, e.contribution, e.expire_at});
    e.sending = true;
  }
  return out;
}

bool quota_sync::applied(std::span<const quota_push> batch, std::span<const std::int64_t> totals, quota_counters& q) {
  if (totals.size() != batch.size()) {
    failed(batch);
    return false;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& p = batch[i];
    // Deltas taken after this batch was built are already in the local remote part; keep them.
    std::int64_t unsent = 0;
    std::int64_t total = totals[i];
    if (auto it = entries_.find(std::string_view(p.key)); it != entries_.end()) {
      entry& e = it->second;
      e.sending = false;
      e.confirmed = std::max(e.confirmed, p.contribution);
      unsent = e.contribution - p.contribution;
      // Counters only grow: a lower reply means Redis lost data that other sidecars have not put
      // back yet. What was known, plus this sidecar's own growth since, is still a lower bound.
      if (e.total >= 0) total = std::max(total, e.total + (p.contribution - e.total_mine));
      e.total = total;
      e.total_mine = p.contribution;
    }
    q.apply_remote_total(p.key, total + unsent);
  }
  return true;
}

void quota_sync::failed(std::span<const quota_push> batch) {
  for (const auto& p : batch) {
    if (auto it = entries_.find(std::string_view(p.key)); it != entries_.end()) it->second.sending = false;
  }
}

std::size_t quota_sync::resend_all() {
  for (auto& [key, e] : entries_) e.confirmed = never_confirmed;
  return entries_.size();
}

std::size_t quota_sync::expire(std::int64_t now) {
  return std::erase_if(entries_, [now](const auto& kv) {
    const entry& e = kv.second;
    if (e.sending) return false;
    const bool only_read = e.contribution == 0 && e.follow_until <= now;
    return e.expire_at <= now || only_read;
  });
}

std::size_t quota_sync::unconfirmed() const {
  std::size_t n = 0;
  for (const auto& [key, e] : entries_) n += e.contribution != e.confirmed ? 1 : 0;
  return n;
}

std::int64_t quota_sync::contribution(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.contribution;
}

std::vector<std::string> quota_sync::script_args(std::span<const quota_push> batch, const redis_keys& keys,
                                                 std::string_view instance, std::string_view set) {
  std::vector<std::string> a;
  a.reserve(2 + batch.size() * 3);
  a.push_back(std::to_string(batch.size()));
  for (const auto& p : batch) a.push_back(keys.counter(set, p.key));
  a.emplace_back(instance);
  for (const auto& p : batch) {
    a.push_back(std::to_string(p.contribution));
    a.push_back(std::to_string(p.expire_at));
  }
  return a;
}

}  // namespace aforo::core::entitlements
