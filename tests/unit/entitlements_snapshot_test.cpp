// Snapshot parsing from YAML and JSON: the same model, exact money, and errors that name the path.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "config/snapshot_yaml.hpp"
#include "core/entitlements/snapshot_json.hpp"

using namespace aforo::core::entitlements;
using aforo::config::load_snapshot_file;
using aforo::config::parse_snapshot_yaml;

namespace {
bool has_error(const snapshot_result& r, const std::string& text) {
  return std::find(r.errors.begin(), r.errors.end(), text) != r.errors.end();
}
std::string all_errors(const snapshot_result& r) {
  std::string s;
  for (const auto& e : r.errors) s += e + "\n";
  return s;
}
}  // namespace

TEST_CASE("money: decimal text parses exactly into micro-units", "[entitlements][money]") {
  CHECK(parse_micros("2000.00").value == 2'000'000'000);
  CHECK(parse_micros("0.004").value == 4'000);
  CHECK(parse_micros("0.000001").value == 1);
  CHECK(parse_micros("499.99").value == 499'990'000);
  CHECK(parse_micros("12").value == 12'000'000);
  CHECK(parse_micros("-1.5", true).value == -1'500'000);
  CHECK(parse_micros("0.1").value * 3 == parse_micros("0.3").value);  // no floating drift
}

TEST_CASE("money: malformed or over-precise amounts are rejected", "[entitlements][money]") {
  for (const char* bad : {"", "1.", ".5", "1e3", "+1", "1.2.3", "abc", "1,5", " 1"}) {
    INFO(bad);
    CHECK(parse_micros(bad).error != nullptr);
  }
  CHECK(std::string(parse_micros("0.0000001").error) == "has more than 6 decimal places");
  CHECK(std::string(parse_micros("-1").error) == "must not be negative");
  CHECK(parse_micros("1234567890123").error != nullptr);
  CHECK(parse_micros("999999999999.999999").error == nullptr);
}

TEST_CASE("money: formatting prints the shortest exact decimal", "[entitlements][money]") {
  CHECK(format_micros(2'000'000'000) == "2000");
  CHECK(format_micros(4'000) == "0.004");
  CHECK(format_micros(-1'500'000) == "-1.5");
  CHECK(format_micros(0) == "0");
}

TEST_CASE("snapshot: the example YAML file loads into the contracts model", "[entitlements][snapshot]") {
  const auto r = load_snapshot_file(std::string(AFORO_SOURCE_DIR) + "/config/snapshot.example.yaml");
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const snapshot& s = *r.value;
  CHECK(s.version == "42");
  REQUIRE(s.customers.size() == 6);

  const customer* acme = s.find_customer("cust_acme");
  REQUIRE(acme != nullptr);
  CHECK(acme->id == "cust_acme");
  CHECK(acme->plan == "enterprise");
  CHECK(acme->status == customer_status::active);
  const feature_entitlement* adv = acme->find_feature("advanced_search");
  REQUIRE(adv != nullptr);
  CHECK(adv->limit == 10000);
  CHECK(adv->period == period_kind::month);
  const feature_entitlement* basic = acme->find_feature("basic_search");
  REQUIRE(basic != nullptr);
  CHECK_FALSE(basic->limit.has_value());
  CHECK(acme->find_feature("nope") == nullptr);
  REQUIRE(acme->revenue.has_value());
  CHECK(acme->revenue->amount == 2'000'000'000);

  const customer* late = s.find_customer("cust_late");
  REQUIRE(late != nullptr);
  CHECK(late->status == customer_status::past_due);
  CHECK(late->grace_until == 1'797'292'800);  // 2026-12-15T00:00:00Z

  REQUIRE(s.rules.size() == 4);
  CHECK(s.rules[3].match.operation == "ExportReport");
  CHECK(s.rules[0].match.operation.empty());
  CHECK(s.rules[0].feature == "advanced_search");
  CHECK(s.rules[0].match.service == "search");
  CHECK(s.rules[0].match.methods == std::vector<std::string>{"GET", "POST"});
  CHECK(s.rules[0].match.path_prefix == "/v1/search");
  CHECK(s.rules[0].metric == "search_calls");
  CHECK(s.rules[0].unit_cost == 4'000);
  CHECK(s.find_customer("cust_nobody") == nullptr);
}

TEST_CASE("snapshot: JSON and YAML produce the same model", "[entitlements][snapshot]") {
  const auto json = parse_snapshot_json(R"({"version":"7","customers":{"c1":{"plan":"pro","status":"trialing",
    "features":{"f1":{"limit":100,"period":"day"},"f2":{}},"revenue":{"amount":12.5,"period":"month"}}},
    "features":[{"feature":"f1","match":{"service":"s","route":"r","methods":["get"],"path_prefix":"/a"},
    "metric":"m1","unit_cost":0.004}]})");
  const auto yaml = parse_snapshot_yaml(R"(
version: "7"
customers:
  c1:
    plan: pro
    status: trialing
    features: { f1: { limit: 100, period: day }, f2: {} }
    revenue: { amount: 12.5, period: month }
features:
  - feature: f1
    match: { service: s, route: r, methods: [get], path_prefix: /a }
    metric: m1
    unit_cost: 0.004
)");
  INFO(all_errors(json) << all_errors(yaml));
  REQUIRE(json.ok());
  REQUIRE(yaml.ok());
  for (const snapshot* s : {&*json.value, &*yaml.value}) {
    CHECK(s->version == "7");
    const customer* c = s->find_customer("c1");
    REQUIRE(c != nullptr);
    CHECK(c->status == customer_status::trialing);
    CHECK(c->find_feature("f1")->limit == 100);
    CHECK(c->find_feature("f1")->period == period_kind::day);
    CHECK_FALSE(c->find_feature("f2")->limit.has_value());
    CHECK(c->revenue->amount == 12'500'000);
    REQUIRE(s->rules.size() == 1);
    CHECK(s->rules[0].match.methods == std::vector<std::string>{"GET"});
    CHECK(s->rules[0].match.route == "r");
    CHECK(s->rules[0].unit_cost == 4'000);
  }
}

TEST_CASE("snapshot: validation collects every error with its path", "[entitlements][snapshot]") {
  const auto r = parse_snapshot_yaml(R"(
version: "1"
colour: blue
customers:
  cust_acme:
    plan: enterprise
    status: frozen
    features:
      advanced_search: { limit: -5, period: week }
      "bad name!": {}
    revenue: { amount: 1.1234567 }
    extra: 1
  cust_b:
    status: active
    grace_until: tomorrow
features:
  - feature: f
    match: { methods: GET, path_prefix: v1 }
    unit_cost: abc
  - match: { service: s, hosts: [a] }
)");
  INFO(all_errors(r));
  REQUIRE_FALSE(r.ok());
  CHECK(has_error(r, "colour: unknown key"));
  CHECK(has_error(r, "customers.cust_acme.status: must be one of active, trialing, past_due, suspended, cancelled"));
  CHECK(has_error(
      r, "customers.cust_acme.features.advanced_search.limit: must be an integer >= 0 (omit it for unlimited)"));
  CHECK(has_error(r, "customers.cust_acme.features.advanced_search.period: must be one of hour, day, month"));
  CHECK(has_error(
      r, "customers.cust_acme.features.bad name!: feature name must be 1..255 characters of A-Z a-z 0-9 _ . -"));
  CHECK(has_error(r, "customers.cust_acme.revenue.amount: has more than 6 decimal places"));
  CHECK(has_error(r, "customers.cust_acme.extra: unknown key"));
  CHECK(has_error(r, "customers.cust_b.plan: is required"));
  CHECK(has_error(r, "customers.cust_b.grace_until: must be an ISO-8601 UTC time like 2026-12-01T00:00:00Z"));
  CHECK(has_error(r, "features[0].match.methods: must be a list"));
  CHECK(has_error(r, "features[0].match.path_prefix: must start with /"));
  CHECK(has_error(r, "features[0].unit_cost: must be a decimal number"));
  CHECK(has_error(r, "features[1].feature: is required"));
  CHECK(has_error(r, "features[1].match.hosts: unknown key"));
  CHECK(r.errors.size() == 14);
}

TEST_CASE("snapshot: structural errors and malformed text are reported", "[entitlements][snapshot]") {
  auto r = parse_snapshot_json(R"({"customers":[]})");
  CHECK(has_error(r, "version: is required"));
  CHECK(has_error(r, "customers: must be a map"));

  r = parse_snapshot_json(R"({"version":"1","customers":{}, "features":{}})");
  CHECK(has_error(r, "features: must be a list"));

  r = parse_snapshot_json(R"({"version":"1","customers":{"c":{"plan":"p","status":"active","plan":"q"}}})");
  CHECK(has_error(r, "customers.c.plan: duplicate key"));

  r = parse_snapshot_json(R"({"version":"1",)");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].rfind("malformed JSON at offset", 0) == 0);

  r = parse_snapshot_yaml("version: [1\ncustomers: {");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].rfind("YAML line", 0) == 0);

  r = parse_snapshot_yaml("- 1\n- 2\n");
  CHECK(has_error(r, "(root): must be a map"));

  r = load_snapshot_file("/nonexistent/snapshot.yaml");
  CHECK(has_error(r, "/nonexistent/snapshot.yaml: cannot read the snapshot file"));
}

TEST_CASE("snapshot: an empty customer map and null feature values are valid", "[entitlements][snapshot]") {
  const auto r = parse_snapshot_yaml(
      "version: v1\ncustomers:\n  c:\n    plan: p\n    status: active\n    features:\n      f:\n        limit: null\n      g:\n");
  INFO(all_errors(r));
  REQUIRE(r.ok());
  CHECK_FALSE(r.value->find_customer("c")->find_feature("f")->limit.has_value());
  CHECK(r.value->find_customer("c")->find_feature("g") != nullptr);
  CHECK(parse_snapshot_json(R"({"version":"1","customers":{}})").ok());
}

TEST_CASE("snapshot: file text is read as JSON when it starts with a brace, else YAML", "[entitlements][snapshot]") {
  const auto json = aforo::config::parse_snapshot_text("  \n{\"version\": 42, \"customers\": {}}");
  REQUIRE(json.ok());
  CHECK(json.value->version == "42");
  const auto yaml = aforo::config::parse_snapshot_text("version: 43\ncustomers: {}\n");
  REQUIRE(yaml.ok());
  CHECK(yaml.value->version == "43");
  const auto bad = aforo::config::parse_snapshot_text("{\"version\": 42,");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].rfind("malformed JSON", 0) == 0);  // not retried as YAML
}

TEST_CASE("snapshot: a feature rule may match an operation, in JSON and YAML", "[entitlements][snapshot]") {
  const auto json = parse_snapshot_json(R"({"version":"1","customers":{},"features":[
    {"feature":"gql_export","match":{"path_prefix":"/graphql","operation":"ExportReport"}},
    {"feature":"grpc_get","match":{"operation":"shop.v1.Catalog/GetItem"}}]})");
  const auto yaml = parse_snapshot_yaml(R"(
version: "1"
customers: {}
features:
  - feature: gql_export
    match: { path_prefix: /graphql, operation: ExportReport }
  - feature: grpc_get
    match: { operation: shop.v1.Catalog/GetItem }
)");
  INFO(all_errors(json) << all_errors(yaml));
  REQUIRE(json.ok());
  REQUIRE(yaml.ok());
  for (const snapshot* s : {&*json.value, &*yaml.value}) {
    REQUIRE(s->rules.size() == 2);
    CHECK(s->rules[0].match.operation == "ExportReport");
    CHECK(s->rules[0].match.path_prefix == "/graphql");
    CHECK(s->rules[1].match.operation == "shop.v1.Catalog/GetItem");
  }

  const auto bad = parse_snapshot_yaml(R"(
version: "1"
customers: {}
features:
  - feature: a
    match: { operation: "" }
  - feature: b
    match: { operation: [x] }
  - feature: c
    match: { operation: )" + std::string(513, 'o') +
                                       R"( }
  - feature: d
    match: { operations: [x] }
)");
  INFO(all_errors(bad));
  CHECK(has_error(bad, "features[0].match.operation: must be 1..512 characters"));
  CHECK(has_error(bad, "features[1].match.operation: must be a string"));
  CHECK(has_error(bad, "features[2].match.operation: must be 1..512 characters"));
  CHECK(has_error(bad, "features[3].match.operations: unknown key"));
  CHECK(bad.errors.size() == 4);
  const auto bad_json = parse_snapshot_json(R"({"version":"1","customers":{},"features":[
    {"feature":"a","match":{"operation":{"name":"x"}}}]})");
  CHECK(has_error(bad_json, "features[0].match.operation: must be a string"));
}
