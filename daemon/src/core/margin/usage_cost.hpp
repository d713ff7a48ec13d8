// What one metered usage event costs: quantity x the unit cost of its metric's feature rule, plus the
// per-request cost the upstream reported (metadata.cost).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/entitlements/feature_mapper.hpp"
#include "core/entitlements/snapshot.hpp"
#include "core/margin/margin_math.hpp"

namespace aforo::core::margin {

/// The margin-relevant part of an accepted usage event. Views point into the caller's event.
struct usage_event {
  std::string_view customer_id;
  std::string_view metric_name;
  std::int64_t quantity_micros = 0;  ///< the event's quantity in micro-units (1 call = 1'000'000)
  micros reported_cost = 0;          ///< metadata.cost in micro-units; 0 when absent
  /// metadata.service/route, httpMethod, endpointPath and the operation (gqlOperationName, toolName
  /// or grpcService/grpcMethod, see operation_of_event); any may be empty
  entitlements::route_info route;
};

/// The rule whose unit cost applies: the first rule whose metric equals the event's metricName;
/// else, when the event's route maps to a rule that has no metric of its own (it is metered under
/// the plugin's default metric name), that rule; else null (no unit cost: only the reported cost
/// counts). Pure; the result points into rules.
[[nodiscard]] const entitlements::feature_rule* rule_for_usage(std::span<const entitlements::feature_rule> rules,
                                                               const usage_event& ev);

/// The event's cost in pico-units: quantity x unit_cost + reported_cost, exactly.
[[nodiscard]] picos usage_cost(std::span<const entitlements::feature_rule> rules, const usage_event& ev);

/// The operation a feature rule's `match.operation` compares for an event: its gqlOperationName,
/// else its toolName, else grpcService + "/" + grpcMethod (written into `buf`, which the result may
/// point into), else empty.
[[nodiscard]] std::string_view operation_of_event(std::string_view gql_operation_name, std::string_view tool_name,
                                                  std::string_view grpc_service, std::string_view grpc_method,
                                                  std::string& buf);

/// Whether any rule has an empty metric (only then is the route worth extracting from an event).
[[nodiscard]] bool any_rule_without_metric(std::span<const entitlements::feature_rule> rules);

}  // namespace aforo::core::margin
