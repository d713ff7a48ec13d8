// The edge decision of POST /v1/check: the decision table (docs/design/decision-contract.md#reasons) over the
// snapshot, the quota counters and (optionally) the margin guard's verdict.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/entitlements/check_request.hpp"
#include "core/entitlements/decision.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/snapshot.hpp"

namespace aforo::core::entitlements {

enum class enforcement_mode : std::uint8_t { enforce, shadow };
enum class unknown_customer_policy : std::uint8_t { block, allow };

/// From the sidecar config: `mode`, `entitlements.unknown_customer`, `entitlements.lease_requests`
/// and `entitlements.lease_ttl`.
struct engine_options {
  enforcement_mode mode = enforcement_mode::enforce;
  unknown_customer_policy unknown_customer = unknown_customer_policy::block;
  std::int64_t lease_requests = 0;  ///< most requests one lease admits; 0 = no leases
  std::int64_t lease_ttl_ms = 1000;
};

/// A lease on a limited feature admits at most remaining / lease_quota_divisor requests, so the
/// leases of up to this many plugin workers together stay within the remaining quota.
inline constexpr std::int64_t lease_quota_divisor = 64;

/// What the margin guard is asked about: an entitled, active customer about to use a feature.
struct margin_query {
  std::string_view customer_id;
  const customer& cust;
  std::string_view feature;  ///< empty when the request maps to no feature
  const feature_rule* rule;  ///< metric and unit cost, or null
  std::int64_t quantity;
  std::int64_t now;  ///< unix seconds
};

/// The guard's answer. deny with l2 -> margin_throttle (429), deny with l3 -> margin_block (429);
/// any level without deny -> margin_alert (allowed, upstream X-Margin-Guard-Warning).
struct margin_verdict {
  margin_level level = margin_level::none;
  bool deny = false;
  std::int64_t retry_after = 0;           ///< seconds; 0 = 1 for a throttle, 1800 for a block
  std::optional<std::int64_t> margin_bp;  ///< the customer's margin in basis points, when a guard applies
};

/// The hook the margin guard implements. Called at most once per check, after the entitlement
/// checks pass and before quota is consumed (so a margin deny consumes no quota).
class margin_hook {
 public:
  virtual ~margin_hook() = default;
  virtual margin_verdict evaluate(const margin_query& q) = 0;
};

/// Applies the decision table in this order: unknown customer -> subscription status -> feature
/// entitlement -> margin guard -> quota. A request that maps to no feature is allowed without
/// quota. A denied request consumes no quota. In shadow mode a would-deny keeps its reason and
/// is answered allowed with shadow = true (and no Retry-After or guard headers for the client).
///
/// Decision leases: the check round trip is most of what the plugin costs a Kong worker, so an
/// allowed decision may carry a lease: the plugin's worker may admit up to `lease` further
/// requests of the same customer, service, route and method whose path is in the lease's scope
/// (scope_of_mapping: any path, the paths under the matched rule's prefix, or this path) for
/// lease_ttl_ms without asking, applying the same headers, and reports how many it admitted in
/// `leased` on its next check of that key, which adds them to the quota counter. A lease is granted
/// only to a plain allow (ok, quota_warning or margin_alert; never in shadow, on a throttle or
/// block, at margin L2/L3, for an unknown customer or from a stale or missing snapshot entry) for a
/// request of quantity 1. On a limited feature a lease is at most remaining / lease_quota_divisor
/// and never path-scoped. Bounds: a change of snapshot or margin level reaches a key within
/// lease_ttl_ms. The quota counter lags by what workers admitted under leases not yet reported: per
/// worker and limited feature, at most 1.5 leases (one being renewed, the next) for each route or
/// prefix scope that maps to the feature, each at most 1/64 of the remaining quota when granted.
/// With quota_reservations as the ledger, a lease of a limited feature is drawn from the units the
/// sidecar holds (quota_ledger::lease), so the plugin cannot admit past them; and a quota check
/// the ledger cannot answer yet (pending) ends the decision early with decision::quota_pending:
/// the caller decides again once the reservation is answered (with leased = 0: already counted;
/// the margin guard is asked again on that pass).
/// Stateless apart from the options; not thread-safe only through the quota and hook it is given.
class decision_engine {
 public:
  explicit decision_engine(engine_options options) : options_(options) {}

  /// nullopt when there is no snapshot: the caller answers 503 and the plugin's
  /// fallback_on_error applies. `now` is unix seconds; cache_state is "hit" | "stale" | "miss".
  [[nodiscard]] std::optional<decision> decide(const check_request& req, const snapshot* snap, quota_ledger& quota,
                                               std::int64_t now, std::string_view cache_state,
                                               margin_hook* margin = nullptr) const;

  /// The same with the customer already resolved (e.g. read through the LRU / Redis);
  /// cust null = unknown customer. The decision points into rules, cust and req.
  [[nodiscard]] decision decide_for(const check_request& req, std::span<const feature_rule> rules, const customer* cust,
                                    quota_ledger& quota, std::int64_t now, std::string_view cache_state,
                                    margin_hook* margin = nullptr) const;

  [[nodiscard]] const engine_options& options() const { return options_; }

 private:
  void deny(decision& d, verdict kind, int status, reason why, std::int64_t retry_after) const;
  void grant_lease(decision& d, const check_request& req, std::span<const feature_rule> rules, quota_ledger& quota,
                   const feature_entitlement* fe, std::string_view feature, std::int64_t now) const;

  engine_options options_;
};

}  // namespace aforo::core::entitlements
