// The /v1/check decision table (docs/design/decision-contract.md#reasons), row by row, and the decision JSON.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <optional>
#include <string>

#include "entitlements_fixtures.hpp"

using namespace decision_fixtures;

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
  CHECK(json == R"({"decision":"allow","allowed":true,"status":200,"reason":"ok","plan":"enterprise",)"
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
  CHECK(json.find(R"("decision":"block","allowed":false,"status":403,"reason":"unknown_customer")") !=
        std::string::npos);
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

  for (auto [customer, why] :
       {std::pair{"cust_nobody", reason::unknown_customer}, std::pair{"cust_gone", reason::subscription_inactive},
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
  m.answer = {margin_level::l2, true, 0, std::nullopt};
  const decision d = f.run(req("cust_acme", "/v1/search"), &m);
  check_denied(d, verdict::throttle, 429, reason::margin_throttle);
  CHECK(d.retry_after == 1);
  CHECK(header(d, "X-Aforo-Throttle") == "true");
  CHECK(header(d, "X-Margin-Guard") == "throttled");
  CHECK(header(d, "X-Margin-Guard-Level") == "L2");
  CHECK(header(d, "Retry-After") == "1");
  CHECK(f.quota.used("cust_acme:advanced_search:2026-11") == 0);  // denied before quota

  m.answer = {margin_level::l2, false, 0, std::nullopt};  // under the L2 rate: allowed, with the alert
  CHECK(f.run(req("cust_acme", "/v1/search"), &m).why == reason::margin_alert);
}

TEST_CASE("decision: margin_block is a 429 block with Retry-After 1800 by default", "[entitlements][decision]") {
  fixture f;
  fake_margin m;
  m.answer = {margin_level::l3, true, 0, std::nullopt};
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

TEST_CASE("decision: JSON strings escape quotes, backslashes and control characters only", "[entitlements][decision]") {
  std::string out;
  append_json_string(out, "plain /v1/é\"q\\\n\r\t\x01\x1f end");
  CHECK(out == R"("plain /v1/é\"q\\\n\r\t\u0001\u001f end")");
  out.clear();
  append_json_string(out, std::string_view("\0", 1));
  CHECK(out == R"("\u0000")");
  out.clear();
  append_json_string(out, "");
  CHECK(out == R"("")");
}
