// The /v1/check decision table (contracts §2), row by row, and the decision JSON.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>

#include "config/snapshot_yaml.hpp"
#include "core/entitlements/decision_engine.hpp"
#include "core/entitlements/feature_mapper.hpp"

using namespace aforo::core::entitlements;

namespace {

const snapshot& example() {
  static const snapshot s = [] {
    auto r = aforo::config::load_snapshot_file(std::string(AFORO_SOURCE_DIR) + "/config/snapshot.example.yaml");
    REQUIRE(r.ok());
    return std::move(*r.value);
  }();
  return s;
}

const std::int64_t now = *parse_iso8601("2026-11-26T06:00:00Z");

check_request req(std::string_view customer, std::string_view path, std::int64_t quantity = 1) {
  check_request r;
  r.customer_id = customer;
  r.service = "search";
  r.route = "search-v1";
  r.method = "GET";
  r.path = path;
  r.quantity = quantity;
  return r;
}

struct fixture {
  quota_counters quota{80};
  decision_engine engine{engine_options{}};

  decision run(const check_request& r, margin_hook* margin = nullptr) {
    auto d = engine.decide(r, &example(), quota, now, "hit", margin);
    REQUIRE(d.has_value());
    return *d;
  }
};

std::string header(const decision& d, std::string_view name) {
  auto v = d.headers.get(name);
  return v ? std::string(*v) : std::string("(absent)");
}

void check_denied(const decision& d, verdict kind, int status, reason why) {
  CHECK(d.kind == kind);
  CHECK_FALSE(d.allowed);
  CHECK(d.status == status);
  CHECK(d.why == why);
  CHECK_FALSE(d.shadow);
}

struct fake_margin : margin_hook {
  margin_verdict answer;
  int calls = 0;
  std::string last_feature;
  margin_verdict evaluate(const margin_query& q) override {
    ++calls;
    last_feature = std::string(q.feature);
    return answer;
  }
};

}  // namespace

TEST_CASE("decision: no snapshot means the sidecar cannot decide", "[entitlements][decision]") {
  quota_counters q;
  decision_engine e{engine_options{}};
  CHECK_FALSE(e.decide(req("cust_acme", "/v1/search"), nullptr, q, now, "miss").has_value());
}

TEST_CASE("decision: ok for an unlimited feature carries no quota fields", "[entitlements][decision]") {
  fixture f;
  const decision d = f.run(req("cust_acme", "/v1/basic/items"));
  CHECK(d.kind == verdict::allow);
  CHECK(d.allowed);
  CHECK(d.status == 200);
  CHECK(d.why == reason::ok);
  CHECK(d.plan == "enterprise");
  CHECK(d.feature == "basic_search");
  CHECK(d.metric == "basic_search_calls");
  CHECK(d.unit_cost == 500);
  CHECK_FALSE(d.remaining_quota.has_value());
  CHECK_FALSE(d.quota_reset.has_value());
  CHECK(d.headers.size() == 0);
}

TEST_CASE("decision: ok under a limit reports the remaining quota and rate-limit headers", "[entitlements][decision]") {
  fixture f;
  const decision d = f.run(req("cust_acme", "/v1/search/items/42"));
  CHECK(d.allowed);
  CHECK(d.why == reason::ok);
  CHECK(d.feature == "advanced_search");
  CHECK(d.remaining_quota == 9999);
  CHECK(d.quota_reset == *parse_iso8601("2026-12-01T00:00:00Z"));
  CHECK(header(d, "X-RateLimit-Limit") == "10000");
  CHECK(header(d, "X-RateLimit-Remaining") == "9999");
  CHECK(header(d, "X-RateLimit-Reset") == "410400");  // 4 days 18 hours
  CHECK(header(d, "Retry-After") == "(absent)");
  std::string json;
  encode_decision(d, json);
  CHECK(json ==
        R"({"decision":"allow","allowed":true,"status":200,"reason":"ok","plan":"enterprise",)"
        R"("feature":"advanced_search","remaining_quota":9999,"quota_reset":"2026-12-01T00:00:00Z",)"
        R"("margin_level":"NONE","retry_after":0,"headers":{"X-RateLimit-Limit":"10000",)"
        R"("X-RateLimit-Remaining":"9999","X-RateLimit-Reset":"410400"},"upstream_headers":{},"cache":"hit"})");
}

TEST_CASE("decision: quota_warning past the warning share adds X-RateLimit-Warning", "[entitlements][decision]") {
  fixture f;
  CHECK(f.run(req("cust_small", "/v1/basic", 79)).why == reason::ok);
  const decision d = f.run(req("cust_small", "/v1/basic", 6));
  CHECK(d.allowed);
  CHECK(d.kind == verdict::allow);
  CHECK(d.why == reason::quota_warning);
  CHECK(d.remaining_quota == 15);
  CHECK(header(d, "X-RateLimit-Warning") == "85% of quota used");
}

TEST_CASE("decision: quota_exceeded is a 429 block with Retry-After and consumes nothing", "[entitlements][decision]") {
  fixture f;
  CHECK(f.run(req("cust_small", "/v1/basic", 100)).allowed);
  const decision d = f.run(req("cust_small", "/v1/basic", 1));
  check_denied(d, verdict::block, 429, reason::quota_exceeded);
  CHECK(d.retry_after == 3600);  // the hourly period resets at 07:00
  CHECK(header(d, "Retry-After") == "3600");
  CHECK(header(d, "X-RateLimit-Remaining") == "0");
  CHECK(f.quota.used("cust_small:basic_search:2026-11-26T06") == 100);

  fixture g;
  const decision big = g.run(req("cust_small", "/v1/basic", 101));
  CHECK(big.why == reason::quota_exceeded);
  CHECK(big.remaining_quota == 100);
  CHECK(g.quota.used("cust_small:basic_search:2026-11-26T06") == 0);
}

TEST_CASE("decision: feature_not_entitled is a 403 block", "[entitlements][decision]") {
  fixture f;
  const decision d = f.run(req("cust_trial", "/v1/search/x"));
  check_denied(d, verdict::block, 403, reason::feature_not_entitled);
  CHECK(d.plan == "pro");
  CHECK(d.feature == "advanced_search");
  check_request explicit_feature = req("cust_acme", "/v1/basic");
  explicit_feature.feature = "not_in_plan";
  check_denied(f.run(explicit_feature), verdict::block, 403, reason::feature_not_entitled);
}

TEST_CASE("decision: trialing and past_due within grace are served", "[entitlements][decision]") {
  fixture f;
  CHECK(f.run(req("cust_trial", "/v1/basic")).why == reason::ok);
  const decision late = f.run(req("cust_late", "/v1/basic"));
  CHECK(late.allowed);
  CHECK(late.why == reason::ok);
}

TEST_CASE("decision: subscription_inactive is a 402 for suspended, cancelled and past grace",
          "[entitlements][decision]") {
  fixture f;
  check_denied(f.run(req("cust_paused", "/v1/basic")), verdict::block, 402, reason::subscription_inactive);
  check_denied(f.run(req("cust_gone", "/v1/basic")), verdict::block, 402, reason::subscription_inactive);
  const std::int64_t after_grace = *parse_iso8601("2026-12-15T00:00:00Z");
  auto d = f.engine.decide(req("cust_late", "/v1/basic"), &example(), f.quota, after_grace, "hit");
  REQUIRE(d.has_value());
  check_denied(*d, verdict::block, 402, reason::subscription_inactive);

  customer no_grace;
  no_grace.plan = "pro";
  no_grace.status = customer_status::past_due;
  CHECK(no_grace.subscription_active(after_grace));  // no grace_until: served until suspended
}

TEST_CASE("decision: unknown_customer blocks with 403 by default", "[entitlements][decision]") {
  fixture f;
  const decision d = f.run(req("cust_nobody", "/v1/search"));
  check_denied(d, verdict::block, 403, reason::unknown_customer);
  CHECK_FALSE(d.plan.has_value());
  std::string json;
  encode_decision(d, json);
  CHECK(json.find("\"plan\"") == std::string::npos);
  CHECK(json.find(R"("decision":"block","allowed":false,"status":403,"reason":"unknown_customer")") != std::string::npos);
}

TEST_CASE("decision: unknown_customer allow lets it through without quota", "[entitlements][decision]") {
  quota_counters q;
  decision_engine e{engine_options{enforcement_mode::enforce, unknown_customer_policy::allow}};
  fake_margin margin;
  auto d = e.decide(req("cust_nobody", "/v1/search"), &example(), q, now, "miss", &margin);
  REQUIRE(d.has_value());
  CHECK(d->allowed);
  CHECK(d->kind == verdict::allow);
  CHECK(d->status == 200);
  CHECK(d->why == reason::unknown_customer);
  CHECK_FALSE(d->remaining_quota.has_value());
  CHECK(d->feature == "advanced_search");  // still mapped, for metering
  CHECK(q.size() == 0);
  CHECK(margin.calls == 0);
  CHECK(d->cache == "miss");
}

TEST_CASE("decision: a request that maps to no feature is allowed without quota", "[entitlements][decision]") {
  fixture f;
  const decision d = f.run(req("cust_acme", "/v2/other"));
  CHECK(d.allowed);
  CHECK(d.why == reason::ok);
  CHECK_FALSE(d.feature.has_value());
  CHECK(d.metric.empty());
}

TEST_CASE("decision: shadow mode reports a would-deny but allows it", "[entitlements][decision]") {
  quota_counters q;
  decision_engine e{engine_options{enforcement_mode::shadow, unknown_customer_policy::block}};
  const snapshot& s = example();
  REQUIRE(e.decide(req("cust_small", "/v1/basic", 100), &s, q, now, "hit")->allowed);

  auto d = *e.decide(req("cust_small", "/v1/basic", 1), &s, q, now, "hit");
  CHECK(d.allowed);
  CHECK(d.kind == verdict::allow);
  CHECK(d.status == 200);
  CHECK(d.shadow);
  CHECK(d.why == reason::quota_exceeded);
  CHECK(d.retry_after == 0);
  CHECK(header(d, "Retry-After") == "(absent)");
  CHECK(q.used("cust_small:basic_search:2026-11-26T06") == 100);  // a would-deny consumes nothing
  std::string json;
  encode_decision(d, json);
  CHECK(json.find(R"("shadow":true)") != std::string::npos);

  for (auto [customer, why] : {std::pair{"cust_nobody", reason::unknown_customer},
                               std::pair{"cust_gone", reason::subscription_inactive},
                               std::pair{"cust_trial", reason::feature_not_entitled}}) {
    auto x = *e.decide(req(customer, "/v1/search"), &s, q, now, "hit");
    CHECK(x.allowed);
    CHECK(x.shadow);
    CHECK(x.why == why);
  }
  auto fine = *e.decide(req("cust_acme", "/v1/search"), &s, q, now, "hit");
  CHECK_FALSE(fine.shadow);
}

TEST_CASE("decision: margin_alert allows and warns upstream", "[entitlements][decision]") {
  fixture f;
  fake_margin m;
  m.answer = {margin_level::l1, false, 0, 2850};
  const decision d = f.run(req("cust_acme", "/v1/search"), &m);
  CHECK(d.allowed);
  CHECK(d.why == reason::margin_alert);
  CHECK(d.margin == margin_level::l1);
  CHECK(m.calls == 1);
  CHECK(m.last_feature == "advanced_search");
  REQUIRE(d.upstream_headers.get("X-Margin-Guard-Warning").has_value());
  CHECK(*d.upstream_headers.get("X-Margin-Guard-Warning") == "margin-low");
  CHECK(d.remaining_quota == 9999);
  std::string json;
  encode_decision(d, json);
  CHECK(json.find(R"("margin_level":"L1","margin_percent":28.50,"retry_after":0)") != std::string::npos);
  CHECK(json.find(R"("upstream_headers":{"X-Margin-Guard-Warning":"margin-low"})") != std::string::npos);
}

TEST_CASE("decision: margin_throttle is a 429 throttle with the guard headers", "[entitlements][decision]") {
  fixture f;
  fake_margin m;
  m.answer = {margin_level::l2, true, 0};
  const decision d = f.run(req("cust_acme", "/v1/search"), &m);
  check_denied(d, verdict::throttle, 429, reason::margin_throttle);
  CHECK(d.retry_after == 1);
  CHECK(header(d, "X-Aforo-Throttle") == "true");
  CHECK(header(d, "X-Margin-Guard") == "throttled");
  CHECK(header(d, "X-Margin-Guard-Level") == "L2");
  CHECK(header(d, "Retry-After") == "1");
  CHECK(f.quota.used("cust_acme:advanced_search:2026-11") == 0);  // denied before quota

  m.answer = {margin_level::l2, false, 0};  // under the L2 rate: allowed, with the alert
  CHECK(f.run(req("cust_acme", "/v1/search"), &m).why == reason::margin_alert);
}

TEST_CASE("decision: margin_block is a 429 block with Retry-After 1800 by default", "[entitlements][decision]") {
  fixture f;
  fake_margin m;
  m.answer = {margin_level::l3, true, 0};
  decision d = f.run(req("cust_acme", "/v1/search"), &m);
  check_denied(d, verdict::block, 429, reason::margin_block);
  CHECK(d.retry_after == 1800);
  CHECK(header(d, "X-Margin-Guard") == "blocked");
  CHECK(header(d, "X-Margin-Guard-Level") == "L3");
  m.answer.retry_after = 60;
  CHECK(f.run(req("cust_acme", "/v1/search"), &m).retry_after == 60);
  CHECK(f.quota.used("cust_acme:advanced_search:2026-11") == 0);
  fake_margin inactive;
  f.run(req("cust_gone", "/v1/search"), &inactive);
  CHECK(inactive.calls == 0);  // the guard only sees entitled, active customers
}

TEST_CASE("decision: the JSON escapes strings and parses back", "[entitlements][decision]") {
  decision d;
  d.plan = std::string_view("pro \"gold\"\n\x01");
  d.feature = std::string_view("f\\1");
  d.cache = "stale";
  d.headers.add("X-RateLimit-Limit", std::int64_t{5});
  std::string json = "garbage-to-keep:";
  encode_decision(d, json);
  rapidjson::Document doc;
  doc.Parse(json.c_str() + 16);
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["plan"].GetString()) == "pro \"gold\"\n\x01");
  CHECK(std::string(doc["feature"].GetString()) == "f\\1");
  CHECK(std::string(doc["cache"].GetString()) == "stale");
  CHECK(std::string(doc["headers"]["X-RateLimit-Limit"].GetString()) == "5");
  CHECK(doc["retry_after"].GetInt() == 0);
  CHECK_FALSE(doc.HasMember("shadow"));
  CHECK_FALSE(doc.HasMember("remaining_quota"));
}

TEST_CASE("decision: a negative margin is encoded exactly as a percentage", "[entitlements][decision]") {
  fixture f;
  fake_margin m;
  m.answer = {margin_level::l3, false, 0, -125};
  const decision d = f.run(req("cust_acme", "/v1/search"), &m);
  std::string json;
  encode_decision(d, json);
  CHECK(json.find(R"("margin_percent":-1.25,)") != std::string::npos);
}

namespace {
struct lease_fixture {
  quota_counters quota{80};
  decision_engine engine{engine_options{enforcement_mode::enforce, unknown_customer_policy::block, 50, 1000}};

  decision run(const check_request& r, std::string_view cache = "hit", margin_hook* margin = nullptr) {
    auto d = engine.decide(r, &example(), quota, now, cache, margin);
    REQUIRE(d.has_value());
    return *d;
  }
};

check_request route_req(std::string_view customer, std::string_view route, std::string_view path) {
  check_request r = req(customer, path);
  r.service = "billing";
  r.route = route;
  return r;
}
}  // namespace

TEST_CASE("decision: leases are off unless configured", "[entitlements][decision][lease]") {
  fixture f;
  CHECK(f.run(req("cust_acme", "/v1/basic/items")).lease == 0);
}

TEST_CASE("decision: an allow on an unlimited feature carries a full lease", "[entitlements][decision][lease]") {
  lease_fixture f;
  const decision d = f.run(req("cust_acme", "/v1/basic/items"));
  CHECK(d.allowed);
  CHECK(d.lease == 50);
  CHECK(d.lease_ttl_ms == 1000);
  CHECK(d.lease_scope == "prefix");  // basic_search is mapped by path prefix
  CHECK(d.lease_prefix == "/v1/basic");
  std::string json;
  encode_decision(d, json);
  CHECK(json.find(R"("lease":{"requests":50,"ttl_ms":1000,"scope":"prefix","prefix":"/v1/basic"})") !=
        std::string::npos);
}

TEST_CASE("decision: a lease on a limited feature is at most remaining / 64", "[entitlements][decision][lease]") {
  lease_fixture f;
  const decision big = f.run(req("cust_acme", "/v1/search/items/1"));  // 9999 remaining
  CHECK(big.lease == 50);
  f.quota.consume("cust_acme", "advanced_search", period_kind::month, 9999 - 640, now);
  const decision small = f.run(req("cust_acme", "/v1/search/items/1"));
  CHECK(small.remaining_quota == 639);
  CHECK(small.lease == 639 / lease_quota_divisor);
  // cust_small: limit 100 per hour -> never more than 1.
  const decision tiny = f.run(req("cust_small", "/v1/basic"));
  CHECK(tiny.remaining_quota == 99);
  CHECK(tiny.lease == 1);
  f.quota.consume("cust_small", "basic_search", period_kind::hour, 40, now);
  CHECK(f.run(req("cust_small", "/v1/basic")).lease == 0);  // 58 left: 58 / 64 = 0
}

TEST_CASE("decision: leased requests reported by the plugin are added to the quota", "[entitlements][decision][lease]") {
  lease_fixture f;
  CHECK(f.run(req("cust_acme", "/v1/search/x")).remaining_quota == 9999);
  check_request r = req("cust_acme", "/v1/search/x");
  r.leased = 49;
  CHECK(f.run(r).remaining_quota == 9999 - 49 - 1);
  // Counted even past the limit (they were admitted already), then the limit applies.
  check_request s = req("cust_small", "/v1/basic");
  s.leased = 150;
  const decision d = f.run(s);
  CHECK(d.why == reason::quota_exceeded);
  CHECK(d.lease == 0);
  CHECK(f.quota.used("cust_small:basic_search:2026-11-26T06") == 150);
  // A customer that lost the feature drops the report: no counter to add it to.
  check_request t = req("cust_trial", "/v1/search/x");
  t.leased = 5;
  CHECK(f.run(t).why == reason::feature_not_entitled);
}

TEST_CASE("decision: no lease for a deny, shadow, stale entry, unknown customer or quantity above 1",
          "[entitlements][decision][lease]") {
  lease_fixture f;
  CHECK(f.run(req("cust_trial", "/v1/search/x")).lease == 0);             // feature_not_entitled
  CHECK(f.run(req("cust_paused", "/v1/basic")).lease == 0);               // subscription_inactive
  CHECK(f.run(req("cust_nobody", "/v1/basic")).lease == 0);               // unknown_customer
  CHECK(f.run(req("cust_acme", "/v1/basic"), "stale").lease == 0);
  CHECK(f.run(req("cust_acme", "/v1/basic"), "miss").lease == 0);
  CHECK(f.run(req("cust_acme", "/v1/basic", 2)).lease == 0);
  decision_engine shadow{engine_options{enforcement_mode::shadow, unknown_customer_policy::block, 50, 1000}};
  auto would_deny = shadow.decide(req("cust_trial", "/v1/search/x"), &example(), f.quota, now, "hit");
  REQUIRE(would_deny.has_value());
  CHECK(would_deny->shadow);
  CHECK(would_deny->lease == 0);
  auto fine = shadow.decide(req("cust_acme", "/v1/basic"), &example(), f.quota, now, "hit");
  CHECK(fine->lease == 50);  // shadow mode still leases what it would allow
}

TEST_CASE("decision: a lease at margin L1 but none at L2 or L3", "[entitlements][decision][lease]") {
  lease_fixture f;
  fake_margin m;
  m.answer.level = margin_level::l1;
  const decision l1 = f.run(req("cust_acme", "/v1/basic"), "hit", &m);
  CHECK(l1.why == reason::margin_alert);
  CHECK(l1.lease == 50);
  m.answer.level = margin_level::l2;  // within the throttle rate: allowed, but each request must ask
  const decision l2 = f.run(req("cust_acme", "/v1/basic"), "hit", &m);
  CHECK(l2.allowed);
  CHECK(l2.lease == 0);
  m.answer.level = margin_level::l3;
  m.answer.deny = true;
  CHECK(f.run(req("cust_acme", "/v1/basic"), "hit", &m).lease == 0);
}

TEST_CASE("decision: the lease scope is the route unless a rule maps by path", "[entitlements][decision][lease]") {
  lease_fixture f;
  // reports is mapped by route, but 49 left of 50 a day is too little to lease.
  const decision reports = f.run(route_req("cust_acme", "reports-v1", "/v1/reports/7"));
  CHECK(reports.feature == "reports");
  CHECK(reports.lease == 0);
  // No rule can match service billing, route x: unmapped for every path.
  const decision unmapped = f.run(route_req("cust_acme", "x", "/v1/anything"));
  CHECK_FALSE(unmapped.feature.has_value());
  CHECK(unmapped.lease == 50);
  CHECK(unmapped.lease_scope == "route");
  std::string json;
  encode_decision(unmapped, json);
  CHECK(json.find(R"("lease":{"requests":50,"ttl_ms":1000,"scope":"route"})") != std::string::npos);
  // An explicit feature never depends on the path.
  check_request explicit_feature = req("cust_acme", "/v1/search/x");
  explicit_feature.feature = std::string_view("basic_search");
  CHECK(f.run(explicit_feature).lease_scope == "route");
  // Service search: the first rule matching service and method maps by prefix.
  CHECK(f.run(req("cust_acme", "/v1/search/x")).lease_scope == "prefix");
  // Service search, a path no rule's prefix covers: unmapped here, mapped elsewhere.
  const decision other = f.run(req("cust_acme", "/v1/other"));
  CHECK_FALSE(other.feature.has_value());
  CHECK(other.lease_scope == "path");
}

TEST_CASE("mapper: the scope of a mapping among requests that differ only in path", "[entitlements][mapper][lease]") {
  using kind = mapping_scope::kind;
  const auto& rules = example().rules;
  auto scope = [&](route_info r, std::optional<std::string_view> feature = std::nullopt) {
    const auto s = scope_of_mapping(rules, feature, r);
    return std::string(s.scope == kind::route ? "route" : s.scope == kind::path ? "path" : "prefix ") +
           std::string(s.prefix);
  };
  CHECK(scope({"search", "search-v1", "GET", "/v1/search"}) == "prefix /v1/search");
  CHECK(scope({"search", "x", "DELETE", "/v1/basic"}) == "prefix /v1/basic");  // basic_search: any method
  CHECK(scope({"search", "x", "GET", "/v1/basic/x?q=1"}) == "prefix /v1/basic");
  CHECK(scope({"search", "x", "GET", "/v1/other"}) == "path");  // unmatched, but other paths match
  CHECK(scope({"billing", "reports-v1", "GET", "/x"}) == "route");
  CHECK(scope({"billing", "other", "GET", "/x"}) == "route");  // nothing can match
  CHECK(scope({"search", "x", "GET", "/v1/search"}, std::string_view("reports")) == "route");

  // An earlier rule under the matched prefix takes some of its paths: only this path is safe.
  std::vector<feature_rule> nested(3);
  nested[0].feature = "admin";
  nested[0].match.path_prefix = "/v1/a/admin";
  nested[1].feature = "a";
  nested[1].match.path_prefix = "/v1/a";
  nested[2].feature = "b";
  nested[2].match.path_prefix = "/v1/b";
  CHECK(scope_of_mapping(nested, std::nullopt, {"s", "r", "GET", "/v1/a/x"}).scope == kind::path);
  CHECK(scope_of_mapping(nested, std::nullopt, {"s", "r", "GET", "/v1/a/admin/1"}).scope == kind::prefix);
  const auto b = scope_of_mapping(nested, std::nullopt, {"s", "r", "GET", "/v1/b/1"});
  CHECK(b.scope == kind::prefix);
  CHECK(b.prefix == "/v1/b");
}

TEST_CASE("decision: a limited feature is never leased by path, an unlimited one may be", "[entitlements][decision][lease]") {
  lease_fixture f;
  // An earlier rule takes /v1/search/basic out of /v1/search: requests under /v1/search map by path.
  std::vector<feature_rule> rules(2);
  rules[0].feature = "basic_search";
  rules[0].match.path_prefix = "/v1/search/basic";
  rules[1].feature = "advanced_search";
  rules[1].match.path_prefix = "/v1/search";
  const customer* acme = example().find_customer("cust_acme");
  REQUIRE(acme != nullptr);
  const decision limited = f.engine.decide_for(req("cust_acme", "/v1/search/x"), rules, acme, f.quota, now, "hit");
  CHECK(limited.feature == "advanced_search");
  CHECK(limited.remaining_quota == 9999);
  CHECK(limited.lease == 0);  // one lease per path would have no bound on the sum
  const decision unlimited = f.engine.decide_for(req("cust_acme", "/v1/search/basic/1"), rules, acme, f.quota, now, "hit");
  CHECK(unlimited.feature == "basic_search");
  CHECK(unlimited.lease == 50);
  CHECK(unlimited.lease_scope == "prefix");
  CHECK(f.run(req("cust_acme", "/v1/other")).lease_scope == "path");  // unmapped: no quota to bound
}
