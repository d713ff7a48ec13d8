// Cost of a usage event; see usage_cost.hpp.
#include "core/margin/usage_cost.hpp"

#include <algorithm>

namespace aforo::core::margin {

namespace ce = entitlements;

const ce::feature_rule* rule_for_usage(std::span<const ce::feature_rule> rules, const usage_event& ev) {
  const ce::feature_rule* by_metric = nullptr;
  bool shared_metric = false;
  for (const auto& r : rules) {
    if (r.metric.empty() || r.metric != ev.metric_name) continue;
    if (by_metric != nullptr) {
      shared_metric = true;
      break;
    }
    by_metric = &r;
  }
  const bool has_route =
      !ev.route.service.empty() || !ev.route.route.empty() || !ev.route.path.empty() || !ev.route.operation.empty();
  if (by_metric != nullptr && (!shared_metric || !has_route)) return by_metric;
  if (!has_route) return nullptr;
  const ce::feature_rule* mapped = ce::map_feature(rules, ev.route);
  // Rules that share a metric (one per GraphQL operation, MCP tool, gRPC method...): the one the event's
  // route maps to, else the first of them.
  if (by_metric != nullptr) return mapped != nullptr && mapped->metric == ev.metric_name ? mapped : by_metric;
  if (mapped != nullptr && mapped->metric.empty()) return mapped;
  return nullptr;
}

picos usage_cost(std::span<const ce::feature_rule> rules, const usage_event& ev) {
  picos total = static_cast<picos>(std::max<micros>(ev.reported_cost, 0)) * ce::micros_per_unit;
  if (const ce::feature_rule* r = rule_for_usage(rules, ev); r != nullptr && ev.quantity_micros > 0) {
    total += usage_cost_picos(ev.quantity_micros, r->unit_cost);
  }
  return total;
}

std::string_view operation_of_event(std::string_view gql_operation_name, std::string_view tool_name,
                                    std::string_view grpc_service, std::string_view grpc_method, std::string& buf) {
  if (!gql_operation_name.empty()) return gql_operation_name;
  if (!tool_name.empty()) return tool_name;
  if (grpc_service.empty() || grpc_method.empty()) return {};
  buf.assign(grpc_service);
  buf.push_back('/');
  buf.append(grpc_method);
  return buf;
}

bool any_rule_without_metric(std::span<const ce::feature_rule> rules) {
  return std::any_of(rules.begin(), rules.end(), [](const ce::feature_rule& r) { return r.metric.empty(); });
}

}  // namespace aforo::core::margin
