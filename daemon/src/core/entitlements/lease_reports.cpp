#include "core/entitlements/lease_reports.hpp"

#include <algorithm>

namespace aforo::core::entitlements {

lease_reports::counts& lease_reports::insert(std::string_view id, counts c) {
  if (applied_.size() >= capacity_) {
    applied_.erase(order_.front());
    order_.pop_front();
    ++forgotten_;
  }
  order_.emplace_back(id);
  return applied_.emplace(order_.back(), c).first->second;
}

lease_reports::outcome lease_reports::apply(check_request& req) {
  if (req.report_id.empty()) return outcome::none;
  auto it = applied_.find(req.report_id);
  if (it == applied_.end()) {
    if (req.leased == 0 && req.lease_unused == 0) return req.report_resent ? outcome::unknown_resend : outcome::first;
    const counts recorded{req.leased, req.lease_unused, 0};
    // A re-sent report this ledger does not know may have been applied: its unused units may have
    // gone back already, so they do not go back now (recorded as applied all the same).
    if (req.report_resent) req.lease_unused = 0;
    insert(req.report_id, recorded);
    return req.report_resent ? outcome::unknown_resend : outcome::first;
  }
  counts& c = it->second;
  const std::int64_t leased = std::max<std::int64_t>(req.leased - c.leased, 0);
  const std::int64_t unused = std::max<std::int64_t>(req.lease_unused - c.unused, 0);
  c.leased = std::max(c.leased, req.leased);
  c.unused = std::max(c.unused, req.lease_unused);
  req.leased = leased;
  // The id again: the answer to its last sending never arrived, nor the lease in it.
  req.lease_unused = unused + c.granted;
  c.granted = 0;
  return outcome::repeated;
}

void lease_reports::decided(std::string_view report_id, std::int64_t renewal_quantity, std::int64_t lease) {
  if (report_id.empty() || (renewal_quantity == 0 && lease == 0)) return;
  auto it = applied_.find(report_id);
  counts& c = it != applied_.end() ? it->second : insert(report_id, counts{});
  c.leased += renewal_quantity;
  c.granted = lease;
}

}  // namespace aforo::core::entitlements
