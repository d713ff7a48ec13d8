// Once-per-cluster level-change webhooks; see level_notice.hpp.
#include "core/margin/level_notice.hpp"

#include <algorithm>

namespace aforo::core::margin {

namespace {

constexpr std::int64_t notice_margin_s = 3600;

// The same comparisons as notice_due, on level numbers; the stored value is "{level}:{instance}".
constexpr std::string_view claim_script = R"lua(
local to, from = tonumber(ARGV[1]), tonumber(ARGV[2])
if to == from then return 0 end
local cur = redis.call('GET', KEYS[1])
local m = cur and string.match(cur, '^(%d+):')
local told = m and tonumber(m)
if told and ((to > from and told >= to) or (to < from and told <= to)) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[3], 'PX', ARGV[4])
return 1
)lua";

}  // namespace

bool notice_due(std::optional<margin_level> notified, margin_level from, margin_level to) {
  if (from == to) return false;
  if (!notified) return true;
  return to > from ? *notified < to : *notified > to;
}

std::string_view notice_claim_script() { return claim_script; }

std::int64_t notice_ttl_ms(const level_change& c, std::int64_t now) {
  const std::int64_t until = std::max(c.period_end, now) + notice_margin_s;
  return (until - now) * 1000;
}

std::vector<std::string> notice_claim_args(const level_change& c, const entitlements::redis_keys& keys,
                                           std::string_view instance, std::int64_t now) {
  return {"1",
          keys.margin_notice(c.customer_id, c.guard_id, c.period),
          std::to_string(static_cast<int>(c.to)),
          std::to_string(static_cast<int>(c.from)),
          std::string(instance),
          std::to_string(notice_ttl_ms(c, now))};
}

}  // namespace aforo::core::margin
