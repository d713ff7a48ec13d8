// Quota counters: local check-and-consume plus the delta/total bookkeeping for Redis sharing.
#include "core/entitlements/quota.hpp"

#include <algorithm>

namespace aforo::core::entitlements {

namespace {
// Smallest used count that reaches percent% of limit, without overflow.
std::int64_t warning_threshold(std::int64_t limit, std::uint32_t percent) {
  const std::int64_t p = percent;
  return (limit / 100) * p + ((limit % 100) * p + 99) / 100;
}
}  // namespace

void quota_counters::make_key(std::string& out, std::string_view customer, std::string_view feature,
                              std::string_view period_key) {
  out.clear();
  out.append(customer).push_back(':');
  out.append(feature).push_back(':');
  out.append(period_key);
}

void quota_counters::mark_dirty(map_type::value_type& entry) {
  if (!entry.second.dirty) {
    entry.second.dirty = true;
    dirty_.push_back(&entry);
  }
}

quota_result quota_counters::check_and_consume(std::string_view customer, std::string_view feature, std::int64_t limit,
                                               period_kind period, std::int64_t quantity, std::int64_t now) {
  const period_window w = period_of(period, now);
  make_key(key_buf_, customer, feature, w.key());
  auto it = counters_.find(std::string_view(key_buf_));
  if (it == counters_.end()) it = counters_.emplace(key_buf_, counter{0, 0, w.end, false}).first;
  counter& c = it->second;

  quota_result r;
  r.limit = limit;
  r.reset_at = w.end;
  r.used = c.remote + c.pending;
  quantity = std::max<std::int64_t>(quantity, 0);
  r.allowed = r.used <= limit && quantity <= limit - r.used;
  if (r.allowed && quantity > 0) {
    c.pending += quantity;
    r.used += quantity;
    mark_dirty(*it);
  }
  r.remaining = std::max<std::int64_t>(limit - r.used, 0);
  r.warning = r.allowed && warning_percent_ > 0 && limit > 0 && r.used >= warning_threshold(limit, warning_percent_);
  return r;
}

void quota_counters::consume(std::string_view customer, std::string_view feature, period_kind period,
                             std::int64_t quantity, std::int64_t now) {
  if (quantity <= 0) return;
  const period_window w = period_of(period, now);
  make_key(key_buf_, customer, feature, w.key());
  auto it = counters_.find(std::string_view(key_buf_));
  if (it == counters_.end()) it = counters_.emplace(key_buf_, counter{0, 0, w.end, false}).first;
  it->second.pending += quantity;
  mark_dirty(*it);
}

std::int64_t quota_counters::used(std::string_view key) const {
  auto it = counters_.find(key);
  return it == counters_.end() ? 0 : it->second.remote + it->second.pending;
}

std::vector<pending_delta> quota_counters::take_pending_deltas() {
  std::vector<pending_delta> out;
  out.reserve(dirty_.size());
  for (auto* entry : dirty_) {
    counter& c = entry->second;
    c.dirty = false;
    if (c.pending == 0) continue;
    out.push_back(pending_delta{entry->first, c.pending, c.period_end});
    c.remote += c.pending;
    c.pending = 0;
  }
  dirty_.clear();
  return out;
}

void quota_counters::restore_pending_deltas(const std::vector<pending_delta>& deltas) {
  for (const auto& d : deltas) {
    auto it = counters_.find(std::string_view(d.key));
    if (it == counters_.end()) it = counters_.emplace(d.key, counter{d.delta, 0, d.period_end, false}).first;
    it->second.remote -= d.delta;
    it->second.pending += d.delta;
    mark_dirty(*it);
  }
}

bool quota_counters::apply_remote_total(std::string_view key, std::int64_t total) {
  auto it = counters_.find(key);
  if (it == counters_.end()) {
    const auto colon = key.rfind(':');
    if (colon == std::string_view::npos) return false;
    const auto w = parse_period_key(key.substr(colon + 1));
    if (!w) return false;
    it = counters_.emplace(std::string(key), counter{0, 0, w->end, false}).first;
  }
  it->second.remote = total;
  return true;
}

std::size_t quota_counters::expire(std::int64_t now) {
  return std::erase_if(counters_, [now](const auto& kv) {
    return kv.second.period_end <= now && kv.second.pending == 0 && !kv.second.dirty;
  });
}

}  // namespace aforo::core::entitlements
