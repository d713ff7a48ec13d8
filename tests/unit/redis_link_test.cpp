// The Redis connection state machine: backoff doubling to a cap, reset on success, log once per change.
#include <catch2/catch.hpp>

#include "core/entitlements/redis_link.hpp"
#include "core/entitlements/redis_customer_entry.hpp"
#include "core/entitlements/snapshot_json.hpp"

using namespace aforo::core::entitlements;
using namespace std::chrono_literals;

TEST_CASE("redis link: reconnect delays double from 100 ms up to 5 s", "[redis][link]") {
  redis_link l;
  std::vector<std::chrono::milliseconds> seen;
  for (int i = 0; i < 9; ++i) seen.push_back(l.on_failure().retry_in);
  CHECK(seen ==
        std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 800ms, 1600ms, 3200ms, 5000ms, 5000ms, 5000ms});
}

TEST_CASE("redis link: a success resets the delay", "[redis][link]") {
  redis_link l;
  (void)l.on_failure();
  (void)l.on_failure();
  l.on_connected();
  CHECK(l.on_failure().retry_in == 100ms);
}

TEST_CASE("redis link: only state changes are logged", "[redis][link]") {
  redis_link l;
  CHECK(l.state() == redis_link_state::connecting);
  CHECK(l.on_failure().log);        // first failure: unavailable
  CHECK_FALSE(l.on_failure().log);  // still unavailable: quiet
  CHECK(l.on_connected());          // back
  CHECK_FALSE(l.on_connected());
  CHECK(l.state() == redis_link_state::connected);
  CHECK(std::string(to_string(l.state())) == "connected");
  CHECK(l.on_failure().log);
  CHECK(std::string(to_string(l.state())) == "unavailable");
}

TEST_CASE("redis customer entry: a customer survives the trip through its entry JSON", "[redis][entry]") {
  auto snap = parse_snapshot_json(R"({"version":"42","customers":{"cust_acme":{"plan":"enterprise",
    "status":"past_due","grace_until":"2026-12-01T00:00:00Z",
    "features":{"advanced_search":{"limit":10000,"period":"day"},"basic_search":{}},
    "revenue":{"amount":2000.5,"period":"month"}}}})");
  REQUIRE(snap.ok());
  const customer& c = *snap.value->find_customer("cust_acme");
  auto e = parse_customer_entry(customer_entry_json(c, "42"));
  REQUIRE(e);
  CHECK(e->version == "42");
  CHECK(e->value.id == "cust_acme");
  CHECK(e->value.plan == "enterprise");
  CHECK(e->value.status == customer_status::past_due);
  CHECK(e->value.grace_until == c.grace_until);
  REQUIRE(e->value.find_feature("advanced_search"));
  CHECK(e->value.find_feature("advanced_search")->limit == 10000);
  CHECK(e->value.find_feature("advanced_search")->period == period_kind::day);
  REQUIRE(e->value.find_feature("basic_search"));
  CHECK_FALSE(e->value.find_feature("basic_search")->limit);
  REQUIRE(e->value.revenue);
  CHECK(e->value.revenue->amount == 2000'500'000);
}

TEST_CASE("redis customer entry: malformed entries are rejected", "[redis][entry]") {
  CHECK_FALSE(parse_customer_entry("{"));
  CHECK_FALSE(parse_customer_entry(R"({"version":"1","customers":{}})"));
}
