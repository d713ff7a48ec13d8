// Quota sharing bookkeeping; see redis_quota_sync.hpp.
#include "core/entitlements/redis_quota_sync.hpp"

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

std::vector<std::vector<quota_push>> quota_sync::collect(quota_counters& q) {
  for (auto& d : q.take_pending_deltas()) {
    auto it = entries_.find(std::string_view(d.key));
    if (it == entries_.end()) it = entries_.emplace(std::move(d.key), entry{}).first;
    it->second.contribution += d.delta;
    it->second.expire_at = quota_expire_at(d.period_end, expire_margin_s_);
  }
  std::vector<std::vector<quota_push>> out;
  for (auto& [key, e] : entries_) {
    if (e.sending || e.contribution == e.confirmed) continue;
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
    if (auto it = entries_.find(std::string_view(p.key)); it != entries_.end()) {
      it->second.sending = false;
      it->second.confirmed = std::max(it->second.confirmed, p.contribution);
      unsent = it->second.contribution - p.contribution;
    }
    q.apply_remote_total(p.key, totals[i] + unsent);
  }
  return true;
}

void quota_sync::failed(std::span<const quota_push> batch) {
  for (const auto& p : batch) {
    if (auto it = entries_.find(std::string_view(p.key)); it != entries_.end()) it->second.sending = false;
  }
}

std::size_t quota_sync::expire(std::int64_t now) {
  return std::erase_if(entries_, [now](const auto& kv) { return kv.second.expire_at <= now && !kv.second.sending; });
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
                                                 std::string_view instance) {
  std::vector<std::string> a;
  a.reserve(2 + batch.size() * 3);
  a.push_back(std::to_string(batch.size()));
  for (const auto& p : batch) a.push_back(keys.quota(p.key));
  a.emplace_back(instance);
  for (const auto& p : batch) {
    a.push_back(std::to_string(p.contribution));
    a.push_back(std::to_string(p.expire_at));
  }
  return a;
}

}  // namespace aforo::core::entitlements
