// Cost of goods sold per customer per UTC period, in exact micro-units, kept in quota counters so the
// Redis quota sharing can push and reconcile it like any quota.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/entitlements/period.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/string_map.hpp"
#include "core/margin/margin_math.hpp"

namespace aforo::core::margin {

/// COGS counters keyed like quota counters with the reserved feature "$cogs":
/// "{customer}:$cogs:{period key}" (e.g. "cust_acme:$cogs:2026-11"); a new period is a new key, so
/// COGS resets by itself at the period boundary. In Redis the key can be shared exactly like a
/// quota counter (one hash per key, field = sidecar instance, value = its contribution in
/// micro-units; see core::entitlements::quota_sync), under its own prefix, e.g.
/// "aforo:{tenant}:m:{customer}:{period}".
///
/// Costs are added in pico-units (micro x micro) so quantity x unit_cost is exact; the whole
/// micro-units go to the counter and the sub-micro remainder is carried per key, so a million
/// events of 0.0000005 add up to exactly 0.5. Not thread-safe: one owner (the io thread).
class cogs_ledger {
 public:
  static constexpr std::string_view cogs_feature = "$cogs";

  /// Adds a cost (pico-units, >= 0) to the customer's COGS in the period of `kind` containing
  /// `now` (unix seconds, UTC).
  void add(std::string_view customer, entitlements::period_kind kind, picos cost, std::int64_t now);
  /// Adds a cost already in micro-units.
  void add_micros(std::string_view customer, entitlements::period_kind kind, micros cost, std::int64_t now) {
    add(customer, kind, static_cast<picos>(cost) * entitlements::micros_per_unit, now);
  }

  /// The customer's COGS (micro-units, whole micro-units only) in the period of `kind` at `now`.
  [[nodiscard]] micros cogs(std::string_view customer, entitlements::period_kind kind, std::int64_t now);

  /// Drops counters and remainders of periods that ended at or before now.
  void expire(std::int64_t now);

  /// The counters, for sharing through Redis (take_pending_deltas / apply_remote_total).
  [[nodiscard]] entitlements::quota_counters& counters() { return counters_; }

 private:
  struct remainder {
    std::int64_t picos = 0;      // 0 <= picos < 10^6
    std::int64_t period_end = 0;
  };

  entitlements::quota_counters counters_{0};  // no quota warnings
  entitlements::string_map<remainder> remainders_;
  std::string key_buf_;
};

}  // namespace aforo::core::margin
