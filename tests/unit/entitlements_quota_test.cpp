// Quota counters: check-and-consume, warnings, period rollover and the Redis delta/total bookkeeping.
#include <catch2/catch.hpp>

#include "core/entitlements/quota.hpp"

using namespace aforo::core::entitlements;

namespace {
const std::int64_t nov26 = *parse_iso8601("2026-11-26T06:00:00Z");
const std::int64_t dec1 = *parse_iso8601("2026-12-01T00:00:00Z");
}  // namespace

TEST_CASE("quota: requests are admitted up to the limit and no further", "[entitlements][quota]") {
  quota_counters q;
  for (int i = 1; i <= 3; ++i) {
    auto r = q.check_and_consume("c", "f", 3, period_kind::month, 1, nov26);
    CHECK(r.allowed);
    CHECK(r.used == i);
    CHECK(r.remaining == 3 - i);
    CHECK(r.limit == 3);
    CHECK(r.reset_at == dec1);
  }
  auto r = q.check_and_consume("c", "f", 3, period_kind::month, 1, nov26);
  CHECK_FALSE(r.allowed);
  CHECK(r.used == 3);
  CHECK(r.remaining == 0);
  CHECK(q.used("c:f:2026-11") == 3);
}

TEST_CASE("quota: a denied request consumes nothing", "[entitlements][quota]") {
  quota_counters q;
  CHECK(q.check_and_consume("c", "f", 10, period_kind::day, 8, nov26).allowed);
  auto r = q.check_and_consume("c", "f", 10, period_kind::day, 5, nov26);
  CHECK_FALSE(r.allowed);
  CHECK(r.used == 8);
  r = q.check_and_consume("c", "f", 10, period_kind::day, 2, nov26);  // still fits exactly
  CHECK(r.allowed);
  CHECK(r.used == 10);
  CHECK_FALSE(q.check_and_consume("c", "f", 0, period_kind::day, 1, nov26).allowed);
}

TEST_CASE("quota: counters are separate per customer, feature and period", "[entitlements][quota]") {
  quota_counters q;
  CHECK(q.check_and_consume("a", "f", 1, period_kind::month, 1, nov26).allowed);
  CHECK(q.check_and_consume("b", "f", 1, period_kind::month, 1, nov26).allowed);
  CHECK(q.check_and_consume("a", "g", 1, period_kind::month, 1, nov26).allowed);
  CHECK_FALSE(q.check_and_consume("a", "f", 1, period_kind::month, 1, nov26).allowed);
  CHECK(q.size() == 3);
}

TEST_CASE("quota: a new period starts from zero and old ones expire", "[entitlements][quota]") {
  quota_counters q;
  CHECK(q.check_and_consume("c", "f", 1, period_kind::month, 1, dec1 - 1).allowed);
  CHECK_FALSE(q.check_and_consume("c", "f", 1, period_kind::month, 1, dec1 - 1).allowed);
  auto r = q.check_and_consume("c", "f", 1, period_kind::month, 1, dec1);
  CHECK(r.allowed);
  CHECK(r.reset_at == *parse_iso8601("2027-01-01T00:00:00Z"));
  CHECK(q.size() == 2);
  CHECK(q.expire(dec1) == 0);  // the November counter still has a delta to push
  (void)q.take_pending_deltas();
  CHECK(q.expire(dec1) == 1);
  CHECK(q.used("c:f:2026-11") == 0);
  CHECK(q.used("c:f:2026-12") == 1);
}

TEST_CASE("quota: the warning starts at the configured share of the limit", "[entitlements][quota]") {
  quota_counters q(80);
  CHECK_FALSE(q.check_and_consume("c", "f", 10, period_kind::hour, 7, nov26).warning);
  auto r = q.check_and_consume("c", "f", 10, period_kind::hour, 1, nov26);
  CHECK(r.allowed);
  CHECK(r.warning);  // 8 of 10 = 80%
  quota_counters off(0);
  CHECK_FALSE(off.check_and_consume("c", "f", 10, period_kind::hour, 10, nov26).warning);
  quota_counters odd(80);
  CHECK_FALSE(odd.check_and_consume("c", "f", 7, period_kind::hour, 5, nov26).warning);  // 71%
  CHECK(odd.check_and_consume("c", "f", 7, period_kind::hour, 1, nov26).warning);        // 86%
}

TEST_CASE("quota: local deltas are taken once and remote totals add other sidecars' usage", "[entitlements][quota]") {
  quota_counters q;
  REQUIRE(q.check_and_consume("c", "f", 100, period_kind::month, 3, nov26).allowed);
  REQUIRE(q.check_and_consume("c", "f", 100, period_kind::month, 2, nov26).allowed);
  auto deltas = q.take_pending_deltas();
  REQUIRE(deltas.size() == 1);
  CHECK(deltas[0].key == "c:f:2026-11");
  CHECK(deltas[0].delta == 5);
  CHECK(deltas[0].period_end == dec1);
  CHECK(q.used("c:f:2026-11") == 5);  // taken deltas still count while in flight
  CHECK(q.take_pending_deltas().empty());

  REQUIRE(q.check_and_consume("c", "f", 100, period_kind::month, 1, nov26).allowed);  // during the push
  CHECK(q.apply_remote_total("c:f:2026-11", 90));  // INCRBY reply: 85 from other sidecars + our 5
  CHECK(q.used("c:f:2026-11") == 91);              // remote total + the unsynced 1
  auto r = q.check_and_consume("c", "f", 100, period_kind::month, 10, nov26);
  CHECK_FALSE(r.allowed);
  CHECK(r.remaining == 9);
  deltas = q.take_pending_deltas();
  REQUIRE(deltas.size() == 1);
  CHECK(deltas[0].delta == 1);
}

TEST_CASE("quota: deltas that could not be pushed are pushed again later", "[entitlements][quota]") {
  quota_counters q;
  REQUIRE(q.check_and_consume("c", "f", 100, period_kind::day, 4, nov26).allowed);
  auto deltas = q.take_pending_deltas();
  q.restore_pending_deltas(deltas);  // Redis down
  CHECK(q.used("c:f:2026-11-26") == 4);
  REQUIRE(q.check_and_consume("c", "f", 100, period_kind::day, 1, nov26).allowed);
  deltas = q.take_pending_deltas();
  REQUIRE(deltas.size() == 1);
  CHECK(deltas[0].delta == 5);
  CHECK(q.used("c:f:2026-11-26") == 5);
}

TEST_CASE("quota: a remote total for an unseen key creates its counter", "[entitlements][quota]") {
  quota_counters q;
  CHECK(q.apply_remote_total("cust:acme:f:2026-11", 99));  // customer ids may contain ':'
  auto r = q.check_and_consume("cust:acme", "f", 100, period_kind::month, 1, nov26);
  CHECK(r.allowed);
  CHECK(r.used == 100);
  CHECK_FALSE(q.check_and_consume("cust:acme", "f", 100, period_kind::month, 1, nov26).allowed);
  CHECK_FALSE(q.apply_remote_total("nokey", 1));
  CHECK_FALSE(q.apply_remote_total("c:f:2026-13", 1));
  CHECK(q.take_pending_deltas().size() == 1);
  CHECK(q.expire(dec1 - 1) == 0);
  CHECK(q.expire(dec1) == 1);
}
