// Cost of goods sold per customer per UTC period, in exact micro-units, kept in quota counters so the
// Redis counter sharing can push and reconcile it like any quota.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/period.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/redis_quota_sync.hpp"
#include "core/entitlements/string_map.hpp"
#include "core/margin/margin_math.hpp"

namespace aforo::core::margin {

/// COGS counters keyed like quota counters with the reserved feature "$cogs":
/// "{customer}:$cogs:{period key}" (e.g. "cust_acme:$cogs:2026-11"); a new period is a new key, so
/// COGS resets by itself at the period boundary.
///
/// Sharing (cache.redis set): the counters are shared exactly like quota counters (one hash per
/// key, field = sidecar instance, value = its contribution in micro-units; see
/// core::entitlements::quota_sync) under their own key set, "aforo:{tenant}:m:{customer}:$cogs:{period}"
/// (core::entitlements::redis_keys::cogs), pushed every cache.sync_interval. cogs() is then the
/// cluster-wide view: the shared total as last synced + the costs added here since. With
/// follow_reads on, cogs() also notes the keys it reads (take_reads), so a sidecar follows the
/// shared COGS of the customers it guards even when it records no cost for them. Lag bound: while
/// a key is followed (app::margin_service::cogs_follow_window after its last read or cost here),
/// the view lags the cluster total by at most one sync interval plus a Redis round trip (see
/// quota_sync's following). Redis down: costs stay pending here and are pushed when it returns;
/// nothing is lost or counted twice.
///
/// Costs are added in pico-units (micro x micro) so quantity x unit_cost is exact; the whole
/// micro-units go to the counter and the sub-micro remainder is carried per key (per sidecar: a
/// remainder never reaches Redis), so a million events of 0.0000005 add up to exactly 0.5.
/// Not thread-safe: one owner (the io thread).
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

  /// The customer's COGS (micro-units, whole micro-units only) in the period of `kind` at `now`:
  /// the shared total as last synced + what was added here since (just the local sum when not
  /// shared). With follow_reads on, notes the key for take_reads (allocates only on the first read
  /// of a customer's period).
  [[nodiscard]] micros cogs(std::string_view customer, entitlements::period_kind kind, std::int64_t now);

  /// Whether cogs() notes the keys it reads (on when the counters are shared; off by default so a
  /// sidecar without Redis keeps no such list).
  void follow_reads(bool on) { follow_reads_ = on; }
  /// The keys cogs() read since the last call, each once.
  [[nodiscard]] std::vector<entitlements::counter_read> take_reads();

  /// Drops counters, remainders and read marks of periods that ended at or before now.
  void expire(std::int64_t now);

  /// The counters, for sharing through Redis (core::entitlements::quota_sync).
  [[nodiscard]] entitlements::quota_counters& counters() { return counters_; }

 private:
  struct remainder {
    std::int64_t picos = 0;  // 0 <= picos < 10^6
    std::int64_t period_end = 0;
  };
  struct read_mark {
    std::int64_t period_end = 0;
    bool listed = false;  // in read_since_
  };
  using read_map = entitlements::string_map<read_mark>;

  entitlements::quota_counters counters_{0};  // no quota warnings
  entitlements::string_map<remainder> remainders_;
  bool follow_reads_ = false;
  read_map reads_;
  std::vector<read_map::value_type*> read_since_;  // element pointers are stable in unordered_map
  std::string key_buf_;
};

}  // namespace aforo::core::margin
