// Feature mapping: first matching rule in file order, segment-boundary prefixes, explicit features.
#include <catch2/catch.hpp>

#include "core/entitlements/feature_mapper.hpp"

using namespace aforo::core::entitlements;

namespace {
feature_rule rule(std::string feature, std::string service, std::string route, std::vector<std::string> methods,
                  std::string prefix) {
  feature_rule r;
  r.feature = std::move(feature);
  r.match = {std::move(service), std::move(route), std::move(methods), std::move(prefix)};
  r.metric = r.feature + "_calls";
  return r;
}

std::string_view mapped(const std::vector<feature_rule>& rules, route_info ri) {
  const feature_rule* r = map_feature(rules, ri);
  return r == nullptr ? std::string_view("(none)") : std::string_view(r->feature);
}
}  // namespace

TEST_CASE("mapper: path prefixes match on segment boundaries", "[entitlements][mapper]") {
  CHECK(path_has_prefix("/v1/search", "/v1/search"));
  CHECK(path_has_prefix("/v1/search/x", "/v1/search"));
  CHECK(path_has_prefix("/v1/search/", "/v1/search"));
  CHECK(path_has_prefix("/v1/search?q=1", "/v1/search"));
  CHECK_FALSE(path_has_prefix("/v1/searchx", "/v1/search"));
  CHECK_FALSE(path_has_prefix("/v1/sear", "/v1/search"));
  CHECK_FALSE(path_has_prefix("/v2/search", "/v1/search"));
  CHECK(path_has_prefix("/v1/search/x", "/v1/search/"));
  CHECK(path_has_prefix("/anything", "/"));
  CHECK(path_has_prefix("/anything", ""));
}

TEST_CASE("mapper: the first rule that matches wins, in file order", "[entitlements][mapper]") {
  const std::vector<feature_rule> rules = {
      rule("advanced_search", "search", "", {"GET", "POST"}, "/v1/search/advanced"),
      rule("search", "search", "", {}, "/v1/search"),
      rule("reports", "", "reports-v1", {}, ""),
      rule("anything_admin", "admin", "", {"DELETE"}, ""),
  };
  CHECK(mapped(rules, {"search", "r", "GET", "/v1/search/advanced/42"}) == "advanced_search");
  CHECK(mapped(rules, {"search", "r", "post", "/v1/search/advanced"}) == "advanced_search");  // case-insensitive
  CHECK(mapped(rules, {"search", "r", "PUT", "/v1/search/advanced"}) == "search");            // method falls through
  CHECK(mapped(rules, {"search", "r", "GET", "/v1/search/items/42"}) == "search");
  CHECK(mapped(rules, {"search", "r", "GET", "/v1/searchx"}) == "(none)");
  CHECK(mapped(rules, {"other", "reports-v1", "GET", "/x"}) == "reports");  // empty fields match anything
  CHECK(mapped(rules, {"admin", "a", "DELETE", "/users/1"}) == "anything_admin");
  CHECK(mapped(rules, {"admin", "a", "GET", "/users/1"}) == "(none)");
  CHECK(mapped({}, {"search", "r", "GET", "/v1/search"}) == "(none)");
}

TEST_CASE("mapper: the plugin's explicit feature overrides the rules", "[entitlements][mapper]") {
  const std::vector<feature_rule> rules = {
      rule("search", "search", "", {}, "/v1/search"),
      rule("reports", "reports", "", {}, "/v1/reports"),
  };
  const route_info ri{"search", "r", "GET", "/v1/search"};

  auto r = resolve_feature(rules, std::nullopt, ri);
  CHECK(r.feature == "search");
  REQUIRE(r.rule != nullptr);
  CHECK(r.rule->metric == "search_calls");

  r = resolve_feature(rules, std::string_view("reports"), ri);
  CHECK(r.feature == "reports");
  REQUIRE(r.rule != nullptr);
  CHECK(r.rule->metric == "reports_calls");  // metric and cost come from the rule naming it

  r = resolve_feature(rules, std::string_view("unlisted"), ri);
  CHECK(r.feature == "unlisted");
  CHECK(r.rule == nullptr);

  r = resolve_feature(rules, std::nullopt, {"x", "y", "GET", "/z"});
  CHECK(r.feature.empty());
  CHECK(r.rule == nullptr);
}

TEST_CASE("mapper: a rule's operation matches only the same operation, exactly", "[entitlements][mapper]") {
  std::vector<feature_rule> rules = {
      rule("gql_search", "api", "", {"POST"}, "/graphql"),
      rule("gql_export", "api", "", {"POST"}, "/graphql"),
      rule("mcp_fetch", "", "", {}, "/mcp"),
      rule("grpc_get", "", "", {}, ""),
      rule("graphql", "api", "", {}, "/graphql"),
  };
  rules[0].match.operation = "SearchItems";
  rules[1].match.operation = "ExportReport";
  rules[2].match.operation = "fetch_page";
  rules[3].match.operation = "shop.v1.Catalog/GetItem";
  CHECK(mapped(rules, {"api", "r", "POST", "/graphql", "SearchItems"}) == "gql_search");
  CHECK(mapped(rules, {"api", "r", "POST", "/graphql", "ExportReport"}) == "gql_export");
  CHECK(mapped(rules, {"api", "r", "POST", "/graphql", "exportreport"}) == "graphql");  // case matters
  CHECK(mapped(rules, {"api", "r", "POST", "/graphql", ""}) == "graphql");  // no operation: no operation rule
  CHECK(mapped(rules, {"api", "r", "POST", "/graphql"}) == "graphql");
  CHECK(mapped(rules, {"m", "r", "POST", "/mcp", "fetch_page"}) == "mcp_fetch");
  CHECK(mapped(rules, {"m", "r", "POST", "/mcp", "fetch"}) == "(none)");
  CHECK(mapped(rules, {"g", "r", "POST", "/shop.v1.Catalog/GetItem", "shop.v1.Catalog/GetItem"}) == "grpc_get");

  auto r = resolve_feature(rules, std::nullopt, {"api", "r", "POST", "/graphql", "ExportReport"});
  CHECK(r.feature == "gql_export");
  r = resolve_feature(rules, std::string_view("graphql"), {"api", "r", "POST", "/graphql", "ExportReport"});
  CHECK(r.feature == "graphql");  // an explicit feature still wins
}

TEST_CASE("mapper: an operation rule is a candidate for the lease scope only for its own operation",
          "[entitlements][mapper][lease]") {
  std::vector<feature_rule> rules = {
      rule("gql_export", "api", "", {}, "/graphql"),
      rule("api", "api", "", {}, ""),
  };
  rules[0].match.operation = "ExportReport";
  // Requests of another operation (or none) never map to the operation rule: any path maps alike.
  CHECK(scope_of_mapping(rules, std::nullopt, {"api", "r", "POST", "/graphql", "Search"}).scope ==
        mapping_scope::kind::route);
  CHECK(scope_of_mapping(rules, std::nullopt, {"api", "r", "POST", "/graphql"}).scope == mapping_scope::kind::route);
  // ExportReport maps by path: under /graphql to gql_export, elsewhere to api.
  const auto s = scope_of_mapping(rules, std::nullopt, {"api", "r", "POST", "/graphql", "ExportReport"});
  CHECK(s.scope == mapping_scope::kind::prefix);
  CHECK(s.prefix == "/graphql");
}
