// Quota sharing bookkeeping: contributions pushed, totals applied, failures resent, no double count.
#include <catch2/catch.hpp>

#include <map>
#include <numeric>

#include "core/entitlements/redis_quota_sync.hpp"

using namespace aforo::core::entitlements;

namespace {
const std::int64_t nov26 = *parse_iso8601("2026-11-26T06:00:00Z");
const std::int64_t dec1 = *parse_iso8601("2026-12-01T00:00:00Z");
const std::string key = "c:f:2026-11";

void consume(quota_counters& q, int n, std::int64_t limit = 1000) {
  for (int i = 0; i < n; ++i) q.check_and_consume("c", "f", limit, period_kind::month, 1, nov26);
}

// A toy Redis holding one hash per key, applying the script's rule (set-if-greater, sum).
struct fake_redis {
  std::map<std::string, std::map<std::string, std::int64_t>> hashes;
  std::vector<std::int64_t> push(const std::vector<quota_push>& batch, const std::string& instance) {
    std::vector<std::int64_t> totals;
    for (const auto& p : batch) {
      auto& h = hashes[p.key];
      h[instance] = std::max(h[instance], p.contribution);
      std::int64_t sum = 0;
      for (const auto& [f, v] : h) sum += v;
      totals.push_back(sum);
    }
    return totals;
  }
  std::int64_t total(const std::string& k) {
    std::int64_t sum = 0;
    for (const auto& [f, v] : hashes[k]) sum += v;
    return sum;
  }
};
}  // namespace

TEST_CASE("quota sync: pushes the contribution and applies the shared total", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s;
  consume(q, 3);
  auto batches = s.collect(q);
  REQUIRE(batches.size() == 1);
  REQUIRE(batches[0].size() == 1);
  CHECK(batches[0][0].key == key);
  CHECK(batches[0][0].contribution == 3);
  CHECK(batches[0][0].expire_at == dec1 + 3600);
  const std::int64_t total = 10;  // another sidecar contributed 7
  CHECK(s.applied(batches[0], std::span(&total, 1), q));
  CHECK(q.used(key) == 10);
  CHECK(s.unconfirmed() == 0);
  CHECK(s.collect(q).empty());  // nothing new, nothing to resend
}

TEST_CASE("quota sync: contributions accumulate across syncs (absolute, not deltas)", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s;
  fake_redis redis;
  consume(q, 2);
  auto b1 = s.collect(q);
  s.applied(b1[0], redis.push(b1[0], "a"), q);
  consume(q, 5);
  auto b2 = s.collect(q);
  REQUIRE(b2.size() == 1);
  CHECK(b2[0][0].contribution == 7);
  s.applied(b2[0], redis.push(b2[0], "a"), q);
  CHECK(redis.total(key) == 7);
  CHECK(q.used(key) == 7);
}

TEST_CASE("quota sync: a push whose outcome is unknown is resent and counted once", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s;
  fake_redis redis;
  consume(q, 4);
  auto b1 = s.collect(q);
  SECTION("Redis applied it before the connection dropped") { (void)redis.push(b1[0], "a"); }
  SECTION("Redis never saw it") {}
  s.failed(b1[0]);
  CHECK(s.unconfirmed() == 1);
  CHECK(q.used(key) == 4);  // still counted locally meanwhile
  auto b2 = s.collect(q);
  REQUIRE(b2.size() == 1);
  CHECK(b2[0][0].contribution == 4);
  s.applied(b2[0], redis.push(b2[0], "a"), q);
  CHECK(redis.total(key) == 4);
  CHECK(q.used(key) == 4);
}

TEST_CASE("quota sync: usage while Redis is down is reconciled when it returns", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s;
  fake_redis redis;
  consume(q, 3);
  auto b1 = s.collect(q);
  s.applied(b1[0], redis.push(b1[0], "a"), q);
  // Down: the caller does not collect; usage stays pending in the counters.
  consume(q, 6);
  CHECK(q.used(key) == 9);
  auto b2 = s.collect(q);
  s.applied(b2[0], redis.push(b2[0], "a"), q);
  CHECK(redis.total(key) == 9);
}

TEST_CASE("quota sync: Redis restarted empty gets every sidecar's whole contribution back", "[redis][quota_sync]") {
  quota_counters qa, qb;
  quota_sync sa, sb;
  fake_redis redis;
  consume(qa, 30);
  consume(qb, 20);
  auto a1 = sa.collect(qa);
  sa.applied(a1[0], redis.push(a1[0], "a"), qa);
  auto b1 = sb.collect(qb);
  sb.applied(b1[0], redis.push(b1[0], "b"), qb);
  CHECK(redis.total(key) == 50);
  redis.hashes.clear();  // restarted with no data
  consume(qa, 1);
  consume(qb, 1);
  auto a2 = sa.collect(qa);
  sa.applied(a2[0], redis.push(a2[0], "a"), qa);
  auto b2 = sb.collect(qb);
  sb.applied(b2[0], redis.push(b2[0], "b"), qb);
  CHECK(redis.total(key) == 52);
  CHECK(qa.used(key) == 31);  // a pushed first: it learns of b's usage at its next push
  CHECK(qb.used(key) == 52);
}

TEST_CASE("quota sync: usage taken while a push is in flight is not hidden by its reply", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s;
  consume(q, 2);
  auto b1 = s.collect(q);
  consume(q, 3);
  CHECK(s.collect(q).empty());  // the key is in flight: not sent twice at once
  const std::int64_t total = 2;
  s.applied(b1[0], std::span(&total, 1), q);
  CHECK(q.used(key) == 5);
  auto b2 = s.collect(q);
  REQUIRE(b2.size() == 1);
  CHECK(b2[0][0].contribution == 5);
}

TEST_CASE("quota sync: a reply of the wrong length applies nothing and the push is resent", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s;
  consume(q, 2);
  auto b1 = s.collect(q);
  CHECK_FALSE(s.applied(b1[0], {}, q));
  CHECK(q.used(key) == 2);
  CHECK(s.collect(q).size() == 1);
}

TEST_CASE("quota sync: batches are bounded and arguments follow the script's layout", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s(2);
  for (const char* c : {"c1", "c2", "c3"}) q.check_and_consume(c, "f", 10, period_kind::month, 1, nov26);
  auto batches = s.collect(q);
  REQUIRE(batches.size() == 2);
  CHECK(batches[0].size() + batches[1].size() == 3);
  const redis_keys keys("t");
  auto args = quota_sync::script_args(batches[0], keys, "inst");
  REQUIRE(args.size() == 1 + 2 + 1 + 4);
  CHECK(args[0] == "2");
  CHECK(args[1] == keys.quota(batches[0][0].key));
  CHECK(args[3] == "inst");
  CHECK(args[4] == "1");
  CHECK(args[5] == std::to_string(dec1 + 3600));
  CHECK(quota_sync_script().find("HVALS") != std::string_view::npos);
}

TEST_CASE("quota sync: bookkeeping of ended periods is dropped", "[redis][quota_sync]") {
  quota_counters q;
  quota_sync s;
  consume(q, 1);
  auto b = s.collect(q);
  const std::int64_t total = 1;
  s.applied(b[0], std::span(&total, 1), q);
  CHECK(s.expire(dec1) == 0);
  CHECK(s.expire(dec1 + 3600) == 1);
  CHECK(s.contribution(key) == 0);
}

TEST_CASE("quota sync: the total is the sum of the contributions", "[redis][quota_sync]") {
  const std::vector<std::int64_t> parts{3, 4, 5};
  CHECK(quota_total(parts) == 12);
}

TEST_CASE("quota sync: after a reconnection every contribution is sent again and no view drops while Redis is rebuilt",
          "[redis][quota_sync]") {
  quota_counters qa, qb;
  quota_sync sa, sb;
  fake_redis redis;
  consume(qa, 30);
  consume(qb, 20);
  auto b1 = sb.collect(qb);
  sb.applied(b1[0], redis.push(b1[0], "b"), qb);
  auto a1 = sa.collect(qa);
  sa.applied(a1[0], redis.push(a1[0], "a"), qa);
  CHECK(qa.used(key) == 50);
  redis.hashes.clear();  // restarted with no data; only a has new usage meanwhile
  consume(qa, 5);
  SECTION("without resend_all b's part would be lost") { CHECK(sb.collect(qb).empty()); }
  SECTION("resend_all on reconnection puts b's part back, counted once") {
    CHECK(sa.resend_all() == 1);
    CHECK(sb.resend_all() == 1);
    CHECK(sb.unconfirmed() == 1);
    auto a2 = sa.collect(qa);
    REQUIRE(a2.size() == 1);
    CHECK(a2[0][0].contribution == 35);
    sa.applied(a2[0], redis.push(a2[0], "a"), qa);
    CHECK(redis.total(key) == 35);  // b's part is not back yet...
    CHECK(qa.used(key) == 55);      // ...but a's view does not drop: 50 known + its own 5
    auto b2 = sb.collect(qb);
    REQUIRE(b2.size() == 1);
    CHECK(b2[0][0].contribution == 20);
    sb.applied(b2[0], redis.push(b2[0], "b"), qb);
    CHECK(redis.total(key) == 55);
    CHECK(qb.used(key) == 55);
    CHECK(sb.unconfirmed() == 0);
    consume(qa, 1);  // a's next push brings it the rebuilt total
    auto a3 = sa.collect(qa);
    sa.applied(a3[0], redis.push(a3[0], "a"), qa);
    CHECK(qa.used(key) == 56);
    // Redis kept its data this time (a reconnection without restart): resending changes nothing.
    sb.resend_all();
    auto b3 = sb.collect(qb);
    sb.applied(b3[0], redis.push(b3[0], "b"), qb);
    CHECK(redis.total(key) == 56);
    CHECK(sb.collect(qb).empty());
  }
}

TEST_CASE("quota sync: a followed key is pushed at every collect, so its view tracks the other sidecars",
          "[redis][quota_sync]") {
  quota_counters qa, qb;
  quota_sync sa, sb;
  sa.follow_for(600);
  sb.follow_for(600);
  fake_redis redis;
  consume(qa, 2);
  auto a1 = sa.collect(qa, nov26);
  sa.applied(a1[0], redis.push(a1[0], "a"), qa);
  consume(qb, 3);
  auto b1 = sb.collect(qb, nov26);
  sb.applied(b1[0], redis.push(b1[0], "b"), qb);
  CHECK(qa.used(key) == 2);  // pushed first: b's part not seen yet
  CHECK(qb.used(key) == 5);
  // No new usage on a: the key is still pushed (same contribution) and a learns the total.
  auto a2 = sa.collect(qa, nov26 + 1);
  REQUIRE(a2.size() == 1);
  CHECK(a2[0][0].contribution == 2);
  sa.applied(a2[0], redis.push(a2[0], "a"), qa);
  CHECK(qa.used(key) == 5);
  CHECK(redis.total(key) == 5);  // nothing counted twice
  // Past the window without activity: pushed only when the contribution changes again.
  CHECK(sa.collect(qa, nov26 + 601).empty());
  consume(qa, 1);
  auto a3 = sa.collect(qa, nov26 + 700);
  REQUIRE(a3.size() == 1);
  sa.applied(a3[0], redis.push(a3[0], "a"), qa);
  CHECK(qa.used(key) == 6);
  CHECK(sa.collect(qa, nov26 + 701).size() == 1);  // that delta opened a new window
}

TEST_CASE("quota sync: a key only read is followed with contribution 0 and its shared total applied",
          "[redis][quota_sync]") {
  quota_counters qa, qc;
  quota_sync sa, sc;
  sc.follow_for(60);
  fake_redis redis;
  consume(qa, 4);
  auto a1 = sa.collect(qa);
  sa.applied(a1[0], redis.push(a1[0], "a"), qa);
  sa.follow(key, dec1, nov26);  // following off: no effect
  CHECK(sa.collect(qa, nov26).empty());

  CHECK(qc.used(key) == 0);
  sc.follow(key, dec1, nov26);
  auto c1 = sc.collect(qc, nov26);
  REQUIRE(c1.size() == 1);
  CHECK(c1[0][0].contribution == 0);
  CHECK(c1[0][0].expire_at == dec1 + 3600);
  CHECK(sc.applied(c1[0], redis.push(c1[0], "c"), qc));
  CHECK(qc.used(key) == 4);  // the counter is created with the shared total
  CHECK(redis.total(key) == 4);
  CHECK(sc.unconfirmed() == 0);
  // Not read again: dropped once the window ends (nothing of c's to put back).
  CHECK(sc.expire(nov26 + 30) == 0);
  CHECK(sc.expire(nov26 + 61) == 1);
  CHECK(sc.collect(qc, nov26 + 62).empty());
}

TEST_CASE("quota sync: script arguments name the counter set's keys", "[redis][quota_sync]") {
  const redis_keys keys("t");
  const std::vector<quota_push> batch{{"c:$cogs:2026-11", 7, dec1 + 3600}};
  auto cogs = quota_sync::script_args(batch, keys, "inst", redis_keys::cogs_set);
  REQUIRE(cogs.size() == 5);
  CHECK(cogs[1] == "aforo:t:m:c:$cogs:2026-11");
  CHECK(quota_sync::script_args(batch, keys, "inst")[1] == keys.quota("c:$cogs:2026-11"));
}
