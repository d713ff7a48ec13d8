// Margin arithmetic: exact integer comparisons, zero revenue, usage cost and exact COGS accumulation.
#include <catch2/catch.hpp>

#include "core/entitlements/period.hpp"
#include "core/margin/cogs_ledger.hpp"
#include "core/margin/guard_config.hpp"
#include "core/margin/margin_math.hpp"
#include "core/margin/usage_cost.hpp"

using namespace aforo::core::margin;
namespace ce = aforo::core::entitlements;

namespace {
constexpr micros units(std::int64_t n) { return n * ce::micros_per_unit; }
const std::int64_t nov26 = *ce::parse_iso8601("2026-11-26T06:00:00Z");
const std::int64_t dec1 = *ce::parse_iso8601("2026-12-01T00:00:00Z");

guard three_levels() {
  guard g;
  g.id = "g";
  g.level_1 = level_1_config{3000, {}};
  g.level_2 = level_2_config{2000, {5, 1000}};
  g.level_3 = level_3_config{1000, 1800};
  return g;
}
}  // namespace

TEST_CASE("margin math: exactly at the threshold is not below it", "[margin][math]") {
  // revenue 2000, cogs 1400 -> margin exactly 30%.
  CHECK_FALSE(margin_below(units(2000), units(1400), 3000));
  CHECK(margin_below(units(2000), units(1400) + 1, 3000));  // one micro-unit more
  CHECK(margin_bp(units(2000), units(1400)) == 3000);
  CHECK(margin_bp(units(2000), units(1400) + 1) == 2999);  // floor: never shown as 30%
}

TEST_CASE("margin math: negative margins and huge amounts compare without overflow", "[margin][math]") {
  CHECK(margin_bp(units(100), units(150)) == -5000);
  CHECK(margin_bp(units(3), units(4)) == -3334);  // -33.333..% floors to -33.34%
  CHECK(margin_below(units(100), units(150), 0));
  const micros big = units(900'000'000'000);  // 9e11 currency units
  CHECK_FALSE(margin_below(big, big / 2, 5000));
  CHECK(margin_below(big, big / 2 + 1, 5000));
}

TEST_CASE("margin math: zero revenue is below every level once anything is spent", "[margin][math]") {
  const guard g = three_levels();
  CHECK(level_for(g, 0, 0) == margin_level::none);
  CHECK(level_for(g, 0, 1) == margin_level::l3);
  CHECK_FALSE(margin_bp(0, 5).has_value());
}

TEST_CASE("margin math: the deepest level whose threshold is crossed wins", "[margin][math]") {
  const guard g = three_levels();
  CHECK(level_for(g, units(1000), units(600)) == margin_level::none);  // 40%
  CHECK(level_for(g, units(1000), units(700)) == margin_level::none);  // exactly 30%
  CHECK(level_for(g, units(1000), units(750)) == margin_level::l1);    // 25%
  CHECK(level_for(g, units(1000), units(850)) == margin_level::l2);    // 15%
  CHECK(level_for(g, units(1000), units(950)) == margin_level::l3);    // 5%
  guard only_l3;
  only_l3.level_3 = level_3_config{1000, 60};
  CHECK(level_for(only_l3, units(1000), units(850)) == margin_level::none);
  CHECK(threshold_of(g, margin_level::l2) == 2000);
}

TEST_CASE("margin math: a million tiny costs add up exactly", "[margin][math]") {
  cogs_ledger ledger;
  // 0.0000005 per event (half a micro-unit): a float sum drifts, the pico remainder does not.
  for (int i = 0; i < 1'000'000; ++i) ledger.add("c", ce::period_kind::month, 500'000, nov26);
  CHECK(ledger.cogs("c", ce::period_kind::month, nov26) == 500'000);  // exactly 0.5
  // 0.1 + 0.2 style costs in micro-units.
  for (int i = 0; i < 10; ++i) ledger.add_micros("d", ce::period_kind::month, 100'000, nov26);
  CHECK(ledger.cogs("d", ce::period_kind::month, nov26) == units(1));
  CHECK(to_micros(0.1) + to_micros(0.2) == to_micros(0.3));
  CHECK(to_micros(0.004) == 4000);
  CHECK(to_micros(-1.0) == 0);
}

TEST_CASE("margin math: COGS is per customer and per revenue period, and rolls over", "[margin][math]") {
  cogs_ledger ledger;
  ledger.add_micros("c", ce::period_kind::month, units(7), nov26);
  ledger.add_micros("e", ce::period_kind::month, units(1), nov26);
  CHECK(ledger.cogs("c", ce::period_kind::month, nov26) == units(7));
  CHECK(ledger.cogs("c", ce::period_kind::month, dec1) == 0);    // a new month starts at 0
  CHECK(ledger.cogs("c", ce::period_kind::day, nov26) == 0);     // another period kind is another counter
  CHECK(ledger.counters().used("c:$cogs:2026-11") == units(7));  // the key Redis sharing pushes
  ledger.expire(dec1);
  CHECK(ledger.counters().size() == 2);  // still pending a push: kept until taken
  (void)ledger.counters().take_pending_deltas();
  ledger.expire(dec1);
  CHECK(ledger.counters().size() == 0);
}

TEST_CASE("margin math: usage cost is quantity x the metric's unit cost plus the reported cost", "[margin][math]") {
  std::vector<ce::feature_rule> rules(2);
  rules[0].feature = "search";
  rules[0].match.service = "search";
  rules[0].metric = "search_calls";
  rules[0].unit_cost = 4000;  // 0.004
  rules[1].feature = "export";
  rules[1].match.service = "exports";
  rules[1].unit_cost = 250'000;  // 0.25, metered under the plugin's default metric

  usage_event ev;
  ev.customer_id = "c";
  ev.metric_name = "search_calls";
  ev.quantity_micros = 3 * ce::micros_per_unit;
  CHECK(usage_cost(rules, ev) == static_cast<picos>(12'000) * ce::micros_per_unit);  // 0.012
  ev.reported_cost = 1'500'000;                                                      // metadata.cost 1.5
  CHECK(usage_cost(rules, ev) == static_cast<picos>(1'512'000) * ce::micros_per_unit);

  usage_event other;
  other.metric_name = "api_calls";
  other.quantity_micros = ce::micros_per_unit;
  CHECK(rule_for_usage(rules, other) == nullptr);  // no route: nothing to map
  CHECK(usage_cost(rules, other) == 0);
  other.route.service = "exports";
  CHECK(rule_for_usage(rules, other) == &rules[1]);
  CHECK(usage_cost(rules, other) == static_cast<picos>(250'000) * ce::micros_per_unit);
  CHECK(any_rule_without_metric(rules));

  usage_event half;  // quantity 0.5 x 0.000001: half a micro-unit, kept exactly in pico-units
  half.metric_name = "search_calls";
  half.quantity_micros = 500'000;
  std::vector<ce::feature_rule> tiny(1);
  tiny[0].metric = "search_calls";
  tiny[0].unit_cost = 1;
  CHECK(usage_cost(tiny, half) == 500'000);
}

TEST_CASE("margin math: an event's operation picks the rule of its GraphQL operation, MCP tool or gRPC method",
          "[margin][math]") {
  std::vector<ce::feature_rule> rules(3);
  rules[0].feature = "mcp_search";
  rules[0].match.path_prefix = "/mcp";
  rules[0].match.operation = "search_docs";
  rules[0].unit_cost = 10'000;  // 0.01
  rules[1].feature = "mcp_render";
  rules[1].match.path_prefix = "/mcp";
  rules[1].match.operation = "render_pdf";
  rules[1].unit_cost = 500'000;  // 0.5
  rules[2].feature = "grpc_get";
  rules[2].match.operation = "shop.v1.Catalog/GetItem";
  rules[2].unit_cost = 2'000;

  usage_event ev;
  ev.metric_name = "api_calls";
  ev.quantity_micros = ce::micros_per_unit;
  ev.route.path = "/mcp";
  ev.route.operation = "search_docs";
  CHECK(rule_for_usage(rules, ev) == &rules[0]);
  ev.route.operation = "render_pdf";
  CHECK(usage_cost(rules, ev) == static_cast<picos>(500'000) * ce::micros_per_unit);
  ev.route.operation = "";
  CHECK(rule_for_usage(rules, ev) == nullptr);

  usage_event grpc;  // an operation alone is a route to map
  grpc.metric_name = "api_calls";
  grpc.quantity_micros = ce::micros_per_unit;
  std::string buf;
  grpc.route.operation = operation_of_event("", "", "shop.v1.Catalog", "GetItem", buf);
  CHECK(grpc.route.operation == "shop.v1.Catalog/GetItem");
  CHECK(rule_for_usage(rules, grpc) == &rules[2]);

  // Rules that share a metric are priced by the one the event's operation maps to, not the first.
  std::vector<ce::feature_rule> shared(2);
  shared[0].feature = "gql_search";
  shared[0].metric = "graphql_calls";
  shared[0].match.operation = "Search";
  shared[0].unit_cost = 1'000;
  shared[1].feature = "gql_checkout";
  shared[1].metric = "graphql_calls";
  shared[1].match.operation = "Checkout";
  shared[1].unit_cost = 90'000;
  usage_event gql;
  gql.metric_name = "graphql_calls";
  gql.quantity_micros = ce::micros_per_unit;
  gql.route.path = "/graphql";
  gql.route.operation = "Checkout";
  CHECK(rule_for_usage(shared, gql) == &shared[1]);
  CHECK(usage_cost(shared, gql) == static_cast<picos>(90'000) * ce::micros_per_unit);
  gql.route.operation = "Unknown";  // no rule for it: the first of the metric's rules, as before
  CHECK(rule_for_usage(shared, gql) == &shared[0]);
  gql.route = {};
  CHECK(rule_for_usage(shared, gql) == &shared[0]);

  CHECK(operation_of_event("AddItem", "", "", "", buf) == "AddItem");
  CHECK(operation_of_event("", "search_docs", "", "", buf) == "search_docs");
  CHECK(operation_of_event("", "", "shop.v1.Catalog", "", buf).empty());
  CHECK(operation_of_event("", "", "", "", buf).empty());
}

TEST_CASE("margin math: percentages format without trailing zeros", "[margin][math]") {
  CHECK(format_bp(3000) == "30");
  CHECK(format_bp(2850) == "28.5");
  CHECK(format_bp(2851) == "28.51");
  CHECK(format_bp(5) == "0.05");
  CHECK(format_bp(-125) == "-1.25");
  CHECK(parse_percent_bp("28.5%") == 2850);
  CHECK_FALSE(parse_percent_bp("100.01%"));
}
