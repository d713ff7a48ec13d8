// The entitlement snapshot of docs/design/snapshot.md: customers with plan, status, features and revenue, and
// the feature rules that map traffic to features, metrics and unit costs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/money.hpp"
#include "core/entitlements/period.hpp"
#include "core/entitlements/string_map.hpp"

namespace aforo::core::entitlements {

enum class customer_status : std::uint8_t { active, trialing, past_due, suspended, cancelled };

/// "active" | "trialing" | "past_due" | "suspended" | "cancelled".
[[nodiscard]] std::string_view to_string(customer_status s);
[[nodiscard]] std::optional<customer_status> parse_customer_status(std::string_view text);

/// A feature a customer's plan includes. No limit = unlimited.
struct feature_entitlement {
  std::optional<std::int64_t> limit;        ///< units per period; nullopt = unlimited
  period_kind period = period_kind::month;  ///< defaults to month when omitted
};

/// Contract revenue, for the margin guard.
struct revenue_terms {
  micros amount = 0;  ///< micro-units of the contract currency
  period_kind period = period_kind::month;
};

/// One customer's entitlements.
///
/// Subscription status: active and trialing are served. past_due is served while in grace:
/// until `grace_until` when it is set (unix seconds, from an ISO-8601 UTC text in the snapshot),
/// indefinitely when it is not (the control plane ends grace by moving the customer to
/// suspended). suspended and cancelled are never served (402 subscription_inactive).
struct customer {
  std::string id;
  std::string plan;
  customer_status status = customer_status::active;
  std::optional<std::int64_t> grace_until;  ///< unix seconds; only meaningful for past_due
  string_map<feature_entitlement> features;
  std::optional<revenue_terms> revenue;

  /// The feature's entitlement, or null when the plan does not include it.
  [[nodiscard]] const feature_entitlement* find_feature(std::string_view feature) const {
    auto it = features.find(feature);
    return it == features.end() ? nullptr : &it->second;
  }
  /// Whether the subscription is served at unix time now (see the status rules above).
  [[nodiscard]] bool subscription_active(std::int64_t now) const;
};

/// What a feature rule matches; an empty field (or empty methods) matches anything.
struct rule_match {
  std::string service;
  std::string route;
  std::vector<std::string> methods;  ///< upper case
  std::string path_prefix;           ///< matched on '/' segment boundaries
  /// The protocol operation, exactly: a GraphQL operation name, an MCP tool name or a gRPC
  /// `Service/Method` (the check's `operation`, the event's gqlOperationName / toolName /
  /// grpcService + "/" + grpcMethod).
  std::string operation{};
};

/// Maps traffic to a feature, the metric it is metered as and its cost of goods per unit.
struct feature_rule {
  std::string feature;
  rule_match match;
  std::string metric;    ///< empty = the plugin's metric name
  micros unit_cost = 0;  ///< micro-units of revenue's currency per unit
};

/// A parsed, validated snapshot. Immutable once built; share it as shared_ptr<const snapshot>
/// (readers on any thread).
struct snapshot {
  std::string version;
  string_map<customer> customers;
  std::vector<feature_rule> rules;  ///< file order; first match wins

  [[nodiscard]] const customer* find_customer(std::string_view id) const {
    auto it = customers.find(id);
    return it == customers.end() ? nullptr : &it->second;
  }
};

/// A parse outcome: a snapshot, or every validation error found, each "path: message"
/// (e.g. "customers.cust_acme.features.advanced_search.period: must be one of hour, day, month").
struct snapshot_result {
  std::optional<snapshot> value;
  std::vector<std::string> errors;

  [[nodiscard]] bool ok() const { return value.has_value(); }
};

}  // namespace aforo::core::entitlements
