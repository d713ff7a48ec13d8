// Aforo's decision endpoints in the pure core: parsing their answers (with and without the
// {success, data} wrapping), the answer cache's single-flight / refresh-ahead / stale-while-error
// state machine under time passed in by hand, L2 throttling and the mapping onto decisions.
#include <catch2/catch.hpp>

#include "core/aforo_api/answer_cache.hpp"
#include "core/aforo_api/answers.hpp"
#include "core/aforo_api/decide.hpp"

using namespace aforo::core::aforo_api;
namespace ce = aforo::core::entitlements;

namespace {
std::string encoded(const ce::decision& d) {
  std::string out;
  ce::encode_decision(d, out);
  return out;
}
ce::check_request request() {
  ce::check_request r;
  r.customer_id = "cust_acme";
  r.method = "GET";
  r.path = "/v1/x";
  return r;
}
}  // namespace

TEST_CASE("aforo api: a quota answer is read wrapped in {success, data} or bare", "[aforo_api]") {
  const std::string data =
      R"({"decision":"DENY","reason":"monthly quota used","currentUsage":1000,"limit":1000,"retryAfterMs":2500,)"
      R"("tierName":"pro","headers":{"X-RateLimit-Limit":"1000","X-RateLimit-Remaining":0}})";
  for (const auto& body : {data, R"({"success":true,"data":)" + data + R"(,"meta":{}})"}) {
    const auto p = parse_quota_answer(body);
    INFO(p.error);
    REQUIRE(p.value);
    CHECK(p.value->decision == quota_answer::kind::deny);
    CHECK(p.value->reason == "monthly quota used");
    CHECK(p.value->current_usage == 1000);
    CHECK(p.value->limit == 1000);
    CHECK(p.value->retry_after_ms == 2500);
    CHECK(p.value->tier_name == "pro");
    REQUIRE(p.value->headers.size() == 2);
    CHECK(p.value->headers[1] == std::pair<std::string, std::string>{"X-RateLimit-Remaining", "0"});
  }
}

TEST_CASE("aforo api: unusable quota answers are errors with a reason", "[aforo_api]") {
  CHECK(parse_quota_answer(R"({"success":false,"error":{"message":"tenant unknown"}})").error ==
        "success is false: tenant unknown");
  CHECK(parse_quota_answer(R"({"decision":"MAYBE"})").error == "decision must be ALLOW, WARN or DENY");
  CHECK(parse_quota_answer("{nope").error.find("malformed JSON") == 0);
  CHECK(parse_quota_answer(R"({"success":true})").error.find("without a data object") != std::string::npos);
  CHECK(parse_quota_answer("[]").error == "the answer must be a JSON object");
  // A header with CR/LF or a bad name is dropped, never forwarded.
  const auto p = parse_quota_answer(R"({"decision":"ALLOW","headers":{"X-A":"a\r\nX-B: b","Bad Name":"1","X-C":"c"}})");
  REQUIRE(p.value);
  REQUIRE(p.value->headers.size() == 1);
  CHECK(p.value->headers[0].first == "X-C");
}

TEST_CASE("aforo api: margin answers by level, and Aforo's 429 deny body", "[aforo_api]") {
  auto m = parse_margin_answer(
      R"({"success":true,"data":{"allowed":true,"level":"L2_THROTTLE","throttleRate":25,"retryAfterSeconds":7,"message":"slow down"}})");
  REQUIRE(m.value);
  CHECK(m.value->level == ce::margin_level::l2);
  CHECK(m.value->throttle_rate == 25);
  CHECK(m.value->retry_after_s == 7);
  CHECK(m.value->message == "slow down");
  m = parse_margin_answer(R"({"error":{"code":"SERVICE_RESTRICTED_MARGIN","message":"m","retryAfterSeconds":60}})");
  REQUIRE(m.value);
  CHECK(m.value->level == ce::margin_level::l3);
  CHECK_FALSE(m.value->allowed);
  CHECK(m.value->retry_after_s == 60);
  CHECK(parse_margin_answer(R"({"allowed":true,"level":"L9"})").error.find("level must be") == 0);
}

TEST_CASE("aforo api: L2 lets exactly throttleRate percent through, the first request included", "[aforo_api]") {
  for (std::int64_t rate : {0, 10, 25, 50, 100}) {
    std::int64_t credit = initial_throttle_credit;
    int passed = 0;
    bool first = false;
    for (int i = 0; i < 100; ++i) {
      const bool ok = admit_throttled(credit, rate);
      if (i == 0) first = ok;
      passed += ok ? 1 : 0;
    }
    INFO(rate);
    CHECK(passed == rate);
    CHECK(first == (rate > 0));
  }
}

TEST_CASE("aforo api cache: one call per key however many checks wait, then fresh until the TTL", "[aforo_api]") {
  answer_cache<int> c({.ttl_ms = 1000, .refresh_percent = 75, .error_retry_ms = 500});
  auto s = c.lookup("k", 0);
  CHECK(s.start_fetch);
  CHECK(s.wait);
  CHECK_FALSE(s.value);
  for (int i = 0; i < 10; ++i) {
    s = c.lookup("k", 1);
    CHECK_FALSE(s.start_fetch);  // single flight
    CHECK(s.wait);
  }
  c.fetched("k", std::make_shared<const int>(7), 5);
  s = c.lookup("k", 100);
  CHECK(s.fresh);
  CHECK(*s.value == 7);
  CHECK_FALSE(s.start_fetch);
  CHECK_FALSE(s.wait);
}

TEST_CASE("aforo api cache: a check late in the TTL refreshes in the background, once", "[aforo_api]") {
  answer_cache<int> c({.ttl_ms = 1000, .refresh_percent = 75});
  c.lookup("k", 0);
  c.fetched("k", std::make_shared<const int>(1), 0);
  auto s = c.lookup("k", 760);
  CHECK(s.fresh);
  CHECK(s.start_fetch);
  CHECK_FALSE(s.wait);
  s = c.lookup("k", 770);
  CHECK(s.fresh);
  CHECK_FALSE(s.start_fetch);
  c.fetched("k", std::make_shared<const int>(2), 780);
  s = c.lookup("k", 1500);  // the old expiry passed; the refreshed answer is fresh
  CHECK(s.fresh);
  CHECK(*s.value == 2);
}

TEST_CASE("aforo api cache: while calls fail the last answer serves, re-asked after error_retry", "[aforo_api]") {
  answer_cache<int> c({.ttl_ms = 1000, .refresh_percent = 75, .error_retry_ms = 500});
  c.lookup("k", 0);
  c.fetched("k", std::make_shared<const int>(1), 0);
  auto s = c.lookup("k", 1200);  // expired, healthy: call and wait for it
  CHECK(s.start_fetch);
  CHECK(s.wait);
  CHECK(*s.value == 1);
  c.failed("k", 1210);
  s = c.lookup("k", 1300);  // failing: stale at once, no call before error_retry
  CHECK_FALSE(s.fresh);
  CHECK_FALSE(s.wait);
  CHECK_FALSE(s.start_fetch);
  CHECK(*s.value == 1);
  s = c.lookup("k", 1710);
  CHECK(s.start_fetch);
  CHECK_FALSE(s.wait);  // still failing: no waiting on it
  bool fresh = true;
  CHECK(*c.usable("k", 1720, fresh) == 1);
  CHECK_FALSE(fresh);
}

TEST_CASE("aforo api cache: max_stale bounds a stale answer, and a failed first call answers nothing", "[aforo_api]") {
  answer_cache<int> c({.ttl_ms = 1000, .error_retry_ms = 500, .max_stale_ms = 2000});
  c.lookup("k", 0);
  c.fetched("k", std::make_shared<const int>(1), 0);
  c.lookup("k", 1100);
  c.failed("k", 1100);
  CHECK(c.lookup("k", 2900).value);
  auto s = c.lookup("k", 3100);
  CHECK_FALSE(s.value);
  bool fresh = false;
  CHECK_FALSE(c.usable("k", 3100, fresh));

  c.lookup("new", 0);
  c.failed("new", 10);
  s = c.lookup("new", 20);
  CHECK_FALSE(s.value);
  CHECK_FALSE(s.wait);  // nothing to wait for before error_retry: the check is answered at once
  CHECK_FALSE(s.start_fetch);
}

TEST_CASE("aforo api cache: sweep forgets idle keys and keeps the newest within capacity", "[aforo_api]") {
  answer_cache<int> c({.capacity = 2});
  for (int i = 0; i < 4; ++i) {
    c.lookup("k" + std::to_string(i), i);
    c.fetched("k" + std::to_string(i), std::make_shared<const int>(i), i);
  }
  CHECK(c.sweep(10, 1000) == 2);
  CHECK(c.peek("k3"));
  CHECK_FALSE(c.peek("k0"));
  CHECK(c.sweep(5000, 1000) == 2);
  CHECK(c.size() == 0);
}

TEST_CASE("aforo api decide: DENY is 429 quota_exceeded with Retry-After and Aforo's headers", "[aforo_api]") {
  const auto q =
      parse_quota_answer(
          R"({"decision":"DENY","reason":"quota used","currentUsage":1200,"limit":1000,"retryAfterMs":1500,"tierName":"pro",)"
          R"("headers":{"X-RateLimit-Limit":"1000","X-RateLimit-Remaining":"0"}})")
          .value;
  api_inputs in;
  in.quota = &*q;
  const auto req = request();
  const auto d = decide(req, in, ce::enforcement_mode::enforce);
  CHECK_FALSE(d.allowed);
  CHECK(d.status == 429);
  CHECK(d.why == ce::reason::quota_exceeded);
  CHECK(d.retry_after == 2);
  CHECK(d.headers.get("Retry-After") == "2");
  CHECK(d.headers.get("X-RateLimit-Limit") == "1000");
  CHECK(d.remaining_quota == 0);
  CHECK(d.lease == 0);
  const auto json = encoded(d);
  CHECK(json.find(R"("plan":"pro")") != std::string::npos);
  CHECK(json.find(R"("message":"quota used")") != std::string::npos);

  const auto shadow = decide(req, in, ce::enforcement_mode::shadow);
  CHECK(shadow.allowed);
  CHECK(shadow.shadow);
  CHECK(shadow.why == ce::reason::quota_exceeded);
  CHECK_FALSE(shadow.headers.get("Retry-After"));
}

TEST_CASE("aforo api decide: WARN allows with X-RateLimit-Warning, L1 adds the upstream margin warning",
          "[aforo_api]") {
  const auto q = parse_quota_answer(R"({"decision":"WARN","reason":"90% used","currentUsage":900,"limit":1000})").value;
  const auto m = parse_margin_answer(R"({"allowed":true,"level":"L1_ALERT"})").value;
  api_inputs in;
  in.quota = &*q;
  const auto req = request();
  auto d = decide(req, in, ce::enforcement_mode::enforce);
  CHECK(d.allowed);
  CHECK(d.why == ce::reason::quota_warning);
  CHECK(d.headers.get("X-RateLimit-Warning") == "90% used");
  CHECK(d.remaining_quota == 100);
  in.margin = &*m;
  d = decide(req, in, ce::enforcement_mode::enforce);
  CHECK(d.why == ce::reason::margin_alert);
  CHECK(d.margin == ce::margin_level::l1);
  CHECK(d.upstream_headers.get("X-Margin-Guard-Warning") == "margin-low");
}

TEST_CASE("aforo api decide: L3 blocks with Aforo's headers and SERVICE_RESTRICTED_MARGIN body, before quota",
          "[aforo_api]") {
  const auto q = parse_quota_answer(R"({"decision":"ALLOW"})").value;
  const auto m =
      parse_margin_answer(R"({"allowed":false,"level":"L3_BLOCK","retryAfterSeconds":0,"message":"restricted"})").value;
  const std::string body = margin_deny_body(ce::margin_level::l3, m->message, 1800, "https://support.example/x");
  api_inputs in;
  in.quota = &*q;
  in.margin = &*m;
  in.margin_body = body;
  const auto req = request();
  const auto d = decide(req, in, ce::enforcement_mode::enforce);
  CHECK(d.status == 429);
  CHECK(d.why == ce::reason::margin_block);
  CHECK(d.retry_after == 1800);
  CHECK(d.headers.get("X-Margin-Guard") == "blocked");
  CHECK(d.headers.get("X-Margin-Guard-Level") == "L3");
  CHECK(encoded(d).find(R"("body":{"error":{"code":"SERVICE_RESTRICTED_MARGIN","message":"restricted",)"
                        R"("retryAfterSeconds":1800,"supportUrl":"https://support.example/x"}})") != std::string::npos);
}

TEST_CASE("aforo api decide: L2 throttles the requests over throttleRate with RATE_LIMITED_MARGIN", "[aforo_api]") {
  const auto m = parse_margin_answer(R"({"allowed":true,"level":"L2_THROTTLE","throttleRate":50})").value;
  const std::string body = margin_deny_body(ce::margin_level::l2, "", 1, "");
  api_inputs in;
  in.margin = &*m;
  in.margin_body = body;
  const auto req = request();
  in.throttle_admitted = false;
  auto d = decide(req, in, ce::enforcement_mode::enforce);
  CHECK(d.kind == ce::verdict::throttle);
  CHECK(d.why == ce::reason::margin_throttle);
  CHECK(d.retry_after == 1);
  CHECK(d.headers.get("X-Aforo-Throttle") == "true");
  CHECK(d.headers.get("X-Margin-Guard-Level") == "L2");
  CHECK(encoded(d).find(R"("code":"RATE_LIMITED_MARGIN")") != std::string::npos);
  in.throttle_admitted = true;
  d = decide(req, in, ce::enforcement_mode::enforce);
  CHECK(d.allowed);
  CHECK(d.why == ce::reason::margin_alert);
  CHECK(d.margin == ce::margin_level::l2);
}
