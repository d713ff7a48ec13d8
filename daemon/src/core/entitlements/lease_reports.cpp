#include "core/entitlements/lease_reports.hpp"

#include <algorithm>

namespace aforo::core::entitlements {

lease_reports::outcome lease_reports::apply(check_request& req) {
  if (req.report_id.empty()) return outcome::none;
  auto it = applied_.find(std::string(req.report_id));
  if (it == applied_.end()) {
    const counts recorded{req.leased, req.lease_unused};
    // A re-sent report this ledger does not know may have been applied: its unused units may have
    // gone back already, so they do not go back now (recorded as applied all the same).
    if (req.report_resent) req.lease_unused = 0;
    if (applied_.size() >= capacity_) {
      applied_.erase(order_.front());
      order_.pop_front();
      ++forgotten_;
    }
    order_.emplace_back(req.report_id);
    applied_.emplace(order_.back(), recorded);
    return req.report_resent ? outcome::unknown_resend : outcome::first;
  }
  counts& c = it->second;
  const std::int64_t leased = std::max<std::int64_t>(req.leased - c.leased, 0);
  const std::int64_t unused = std::max<std::int64_t>(req.lease_unused - c.unused, 0);
  c.leased = std::max(c.leased, req.leased);
  c.unused = std::max(c.unused, req.lease_unused);
  req.leased = leased;
  req.lease_unused = unused;
  return outcome::repeated;
}

void lease_reports::own_counted(std::string_view report_id, std::int64_t quantity) {
  if (report_id.empty()) return;
  if (auto it = applied_.find(std::string(report_id)); it != applied_.end()) it->second.leased += quantity;
}

}  // namespace aforo::core::entitlements
