// Feature rules that match a protocol operation, through the real aforo-sidecar: checks naming the
// GraphQL operation on one endpoint count against that operation's feature and quota, and accepted
// MCP events are priced by their tool's rule in the margin guard.
#include <catch2/catch.hpp>

#include "margin_itest_support.hpp"

using namespace margin_itest;

namespace {

const char* const graphql_snapshot = R"(
version: "op1"
customers:
  cust_g:
    plan: pro
    status: active
    features:
      gql_search: { limit: 2, period: day }
      gql_export: { limit: 100, period: day }
features:
  - feature: gql_search
    match: { service: api, path_prefix: /graphql, operation: SearchItems }
  - feature: gql_export
    match: { service: api, path_prefix: /graphql, operation: ExportReport }
  - feature: graphql
    match: { service: api, path_prefix: /graphql }
)";

std::string gql_check(const std::string& operation_member) {
  return R"({"customer_id":"cust_g","service":"api","method":"POST","path":"/graphql")" + operation_member + "}";
}

// cust_m (the margin support's customer, revenue 100 a month) uses two tools of one MCP endpoint,
// priced differently; no rule names a metric, so events are priced by what they map to.
const char* const mcp_snapshot = R"(
version: "op2"
customers:
  cust_m:
    plan: pro
    status: active
    features:
      mcp_search: {}
      mcp_render: {}
    revenue: { amount: 100.00, period: month }
features:
  - feature: mcp_search
    match: { path_prefix: /mcp, operation: search_docs }
    unit_cost: 1
  - feature: mcp_render
    match: { path_prefix: /mcp, operation: render_pdf }
    unit_cost: 20
)";

std::string mcp_event(int seq, const std::string& tool, int quantity) {
  return R"({"customerId":"cust_m","metricName":"api_calls","quantity":)" + std::to_string(quantity) +
         R"(,"occurredAt":"2026-11-26T06:00:00Z","idempotencyKey":"mcp:r)" + std::to_string(seq) +
         R"(:1","productType":"MCP_SERVER","endpointPath":"/mcp","httpMethod":"POST","statusCode":200,)"
         R"("agentId":"cust_m","toolName":")" +
         tool + R"(","executionDurationMs":12,"metadata":{"gateway":"kong"}})";
}

double margin_percent(const rapidjson::Document& d) {
  return d.HasMember("margin_percent") ? d["margin_percent"].GetDouble() : -1;
}

}  // namespace

TEST_CASE("operation: checks on one GraphQL endpoint count against their operation's feature and quota",
          "[check][operation]") {
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", graphql_snapshot);
  sidecar_process sc("entitlements:\n  source: \"file:" + snap + "\"\n  lease_requests: 0\n");
  auto c = sc.client();

  auto d = json_of(c.post("/v1/check", gql_check(R"(,"operation":"SearchItems")")).body);
  CHECK(str(d, "feature") == "gql_search");
  CHECK(d["allowed"].GetBool());
  CHECK(d["remaining_quota"].GetInt64() == 1);
  d = json_of(c.post("/v1/check", gql_check(R"(,"operation":"SearchItems")")).body);
  CHECK(d["remaining_quota"].GetInt64() == 0);
  d = json_of(c.post("/v1/check", gql_check(R"(,"operation":"SearchItems")")).body);
  CHECK(str(d, "reason") == "quota_exceeded");
  CHECK_FALSE(d["allowed"].GetBool());

  // The other operation on the same method and path has its own feature and quota.
  d = json_of(c.post("/v1/check", gql_check(R"(,"operation":"ExportReport")")).body);
  CHECK(str(d, "feature") == "gql_export");
  CHECK(d["allowed"].GetBool());
  CHECK(d["remaining_quota"].GetInt64() == 99);

  // No operation, or one no rule names: the path's rule (not in cust_g's plan).
  d = json_of(c.post("/v1/check", gql_check("")).body);
  CHECK(str(d, "feature") == "graphql");
  CHECK(str(d, "reason") == "feature_not_entitled");
  d = json_of(c.post("/v1/check", gql_check(R"(,"operation":"searchitems")")).body);
  CHECK(str(d, "feature") == "graphql");

  // A bad operation is a clear 400.
  auto r = c.post("/v1/check", gql_check(R"(,"operation":["SearchItems"])"));
  CHECK(r.status == 400);
  CHECK(r.body.find("operation must be a string") != std::string::npos);
}

TEST_CASE("operation: the margin guard prices MCP events by their tool's feature rule", "[margin][operation]") {
  hook_receiver receiver;
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", mcp_snapshot);
  const std::string guards = dir.write("guards.yaml", guards_yaml(receiver.url(), "enforce"));
  sidecar_process sc("entitlements:\n  source: \"file:" + snap +
                         "\"\n"
                         "margin_guard:\n  config: \"" +
                         guards + "\"\n  reload_interval: 200ms\n",
                     {"AFORO_WEBHOOK_SECRET=" + secret});
  auto c = sc.client();
  auto d = wait_decision(c, [](const rapidjson::Document& x) { return margin_percent(x) == Approx(100.0); });
  REQUIRE(margin_percent(d) == Approx(100.0));

  // 5 x search_docs at 1: COGS 5, margin 95%.
  REQUIRE(c.post("/v1/ingest/batch", R"({"events":[)" + mcp_event(1, "search_docs", 5) + "]}").status == 202);
  d = wait_decision(c, [](const rapidjson::Document& x) { return margin_percent(x) < 100.0; });
  CHECK(margin_percent(d) == Approx(95.0));

  // 1 x render_pdf at 20, and a tool no rule names (no unit cost): COGS 25, margin 75%.
  REQUIRE(c.post("/v1/ingest/batch",
                 R"({"events":[)" + mcp_event(2, "render_pdf", 1) + "," + mcp_event(3, "list_files", 7) + "]}")
              .status == 202);
  d = wait_decision(c, [](const rapidjson::Document& x) { return margin_percent(x) < 95.0; });
  CHECK(margin_percent(d) == Approx(75.0));
  std::this_thread::sleep_for(300ms);  // kept: the margin stays there (no event priced twice) over time
  CHECK(margin_percent(json_of(c.post("/v1/check", check_body()).body)) == Approx(75.0));
}
