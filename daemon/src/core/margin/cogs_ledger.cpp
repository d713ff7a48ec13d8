// COGS counters; see cogs_ledger.hpp.
#include "core/margin/cogs_ledger.hpp"

#include <limits>

namespace aforo::core::margin {

namespace ce = entitlements;

void cogs_ledger::add(std::string_view customer, ce::period_kind kind, picos cost, std::int64_t now) {
  if (cost <= 0) return;
  const ce::period_window w = ce::period_of(kind, now);
  ce::quota_counters::make_key(key_buf_, customer, cogs_feature, w.key());
  auto it = remainders_.find(std::string_view(key_buf_));
  const picos carried = it == remainders_.end() ? 0 : it->second.picos;
  const picos total = cost + carried;
  const picos whole = total / ce::micros_per_unit;
  const auto rest = static_cast<std::int64_t>(total % ce::micros_per_unit);
  if (rest != 0 || it != remainders_.end()) {
    if (it == remainders_.end()) it = remainders_.emplace(key_buf_, remainder{}).first;
    it->second = {rest, w.end};
  }
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  const std::int64_t add = whole > max ? max : static_cast<std::int64_t>(whole);
  // No limit: check_and_consume only refuses what would overflow (saturating the counter).
  (void)counters_.check_and_consume(customer, cogs_feature, max, kind, add, now);
}

micros cogs_ledger::cogs(std::string_view customer, ce::period_kind kind, std::int64_t now) {
  const ce::period_window w = ce::period_of(kind, now);
  ce::quota_counters::make_key(key_buf_, customer, cogs_feature, w.key());
  if (follow_reads_) {
    auto it = reads_.find(std::string_view(key_buf_));
    if (it == reads_.end()) it = reads_.emplace(key_buf_, read_mark{w.end, false}).first;
    if (!it->second.listed) {
      it->second.listed = true;
      read_since_.push_back(&*it);
    }
  }
  return counters_.used(key_buf_);
}

std::vector<ce::counter_read> cogs_ledger::take_reads() {
  std::vector<ce::counter_read> out;
  out.reserve(read_since_.size());
  for (auto* entry : read_since_) {
    entry->second.listed = false;
    out.push_back(ce::counter_read{entry->first, entry->second.period_end});
  }
  read_since_.clear();
  return out;
}

void cogs_ledger::expire(std::int64_t now) {
  counters_.expire(now);
  for (auto it = remainders_.begin(); it != remainders_.end();) {
    it = it->second.period_end <= now ? remainders_.erase(it) : std::next(it);
  }
  // Listed marks stay until taken (read_since_ points at them).
  std::erase_if(reads_, [now](const auto& kv) { return kv.second.period_end <= now && !kv.second.listed; });
}

}  // namespace aforo::core::margin
