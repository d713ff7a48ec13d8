// The margin guard (docs/design/margin-guard.md): per customer and guard, the margin level from revenue and COGS,
// the L2 token bucket and the L3 block, as the decision engine's margin_hook. Pure: time is passed in.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/entitlements/decision_engine.hpp"
#include "core/entitlements/string_map.hpp"
#include "core/margin/cogs_ledger.hpp"
#include "core/margin/guard_config.hpp"
#include "core/margin/token_bucket.hpp"
#include "core/margin/usage_cost.hpp"

namespace aforo::core::margin {

/// A customer's level under a guard changed. Reported once per change (both directions), for the
/// log line, the metrics and (unless shadow) the signed webhook to `notify`.
struct level_change {
  std::string guard_id;
  std::string customer_id;
  margin_level from = margin_level::none;
  margin_level to = margin_level::none;
  guard_mode mode = guard_mode::enforce;
  std::optional<std::int64_t> margin_bp;  ///< nullopt when revenue is 0 (margin undefined)
  std::int32_t threshold_bp = 0;          ///< of the level entered; of the level left when recovering
  std::optional<std::int32_t> min_margin_bp;
  micros revenue = 0;
  micros cogs = 0;
  std::string period;               ///< the revenue period's key, e.g. "2026-11"
  std::int64_t period_end = 0;      ///< unix seconds (exclusive); 0 when the customer has no revenue
  std::int64_t at = 0;              ///< unix seconds
  std::vector<std::string> notify;  ///< level_1.notify; empty in shadow mode
};

/// The period kind a customer's COGS is counted in: its revenue's period, month when it has none
/// (or is not in the local snapshot).
[[nodiscard]] entitlements::period_kind cogs_period_of(const entitlements::customer* cust);

/// Decision rules (documented in docs/design/margin-guard.md and docs/guarantees.md#margin-guard):
/// - The first guard (file order) whose applies_to matches the customer, plan and feature applies.
/// - Missing revenue in the snapshot: the guard does not apply (level NONE); the customer's cost is
///   still recorded. Revenue 0 with any cost: below every level (the deepest configured level);
///   revenue 0 and no cost: NONE.
/// - Margin and COGS are per customer per period of the revenue's `period` (UTC calendar; month
///   when the customer has no revenue). A new period starts COGS at 0, which lifts L2/L3; a
///   revenue change in a new snapshot is applied on the next request.
/// - enforce: L1 alerts; L2 allows up to throttle_rate (token bucket, burst one second's worth, full
///   on entering L2) and throttles the rest with Retry-After = seconds to the next token (>= 1);
///   L3 blocks with Retry-After = min(retry_after, seconds to the period end) (>= 1).
///   alert_only: every level only alerts. shadow: every level only alerts and no webhook is sent.
/// Not thread-safe: one owner (the io thread).
class margin_guard final : public entitlements::margin_hook {
 public:
  /// Replaces the guards. The state of guards whose id is still present is kept (levels, buckets),
  /// so a reload re-sends nothing; levels are re-evaluated against the new thresholds on each
  /// customer's next request. State of removed guards is dropped.
  void set_guards(guard_set guards);
  [[nodiscard]] const guard_set& guards() const { return guards_; }

  /// margin_hook: evaluate_at with now_ms = q.now x 1000 (second resolution for the bucket).
  entitlements::margin_verdict evaluate(const entitlements::margin_query& q) override {
    return evaluate_at(q, q.now * 1000);
  }
  /// The verdict for one check. now_ms: monotonic milliseconds for the token bucket; periods use
  /// q.now (unix seconds). Does not allocate once the customer's state exists.
  entitlements::margin_verdict evaluate_at(const entitlements::margin_query& q, std::int64_t now_ms);

  /// Adds an accepted usage event's cost to its customer's COGS. cust: the customer from the
  /// snapshot in force (null when unknown: the month period is used); rules: the snapshot's rules.
  void record_usage(std::span<const entitlements::feature_rule> rules, const entitlements::customer* cust,
                    const usage_event& ev, std::int64_t now);

  /// Level changes since the last call, in order.
  [[nodiscard]] std::vector<level_change> take_changes();

  /// How many (guard, customer) pairs are at L1, L2, L3 (index 1..3; index 0 unused).
  [[nodiscard]] std::array<std::size_t, 4> customers_per_level() const;

  /// Drops ended periods' COGS and the state of customers back at NONE.
  void expire(std::int64_t now);

  [[nodiscard]] cogs_ledger& ledger() { return ledger_; }

 private:
  struct customer_state {
    margin_level level = margin_level::none;
    token_bucket bucket;
  };
  using state_map = entitlements::string_map<customer_state>;

  [[nodiscard]] const guard* find_guard(const entitlements::margin_query& q) const;
  void report(const guard& g, std::string_view customer, margin_level from, margin_level to, micros revenue,
              micros cogs, const entitlements::period_window& window, std::int64_t now);

  guard_set guards_;
  std::vector<state_map> states_;  // parallel to guards_.guards
  cogs_ledger ledger_;
  std::vector<level_change> changes_;
};

}  // namespace aforo::core::margin
