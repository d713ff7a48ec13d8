// COGS shared between sidecars: the ledger's read marks, and two ledgers synced through the quota
// sync bookkeeping converging on the cluster-wide COGS with nothing lost or counted twice.
#include <catch2/catch.hpp>

#include <map>

#include "core/entitlements/redis_quota_sync.hpp"
#include "core/margin/cogs_ledger.hpp"

using namespace aforo::core::margin;
namespace ce = aforo::core::entitlements;

namespace {
const std::int64_t nov26 = *ce::parse_iso8601("2026-11-26T06:00:00Z");
const std::int64_t dec1 = *ce::parse_iso8601("2026-12-01T00:00:00Z");
constexpr auto month = ce::period_kind::month;
micros units(std::int64_t n) { return n * ce::micros_per_unit; }

// The sync script's rule on one hash per key (set-if-greater per instance, reply = the sum).
struct fake_redis {
  std::map<std::string, std::map<std::string, std::int64_t>> hashes;
  std::vector<std::int64_t> push(const std::vector<ce::quota_push>& batch, const std::string& instance) {
    std::vector<std::int64_t> totals;
    for (const auto& p : batch) {
      auto& h = hashes[p.key];
      if (p.contribution > 0) h[instance] = std::max(h[instance], p.contribution);
      std::int64_t sum = 0;
      for (const auto& [f, v] : h) sum += v;
      totals.push_back(sum);
    }
    return totals;
  }
};

// One sidecar's ledger and its sync, driven like redis_entitlements_sharing does at each tick.
struct sidecar {
  std::string instance;
  cogs_ledger ledger;
  ce::quota_sync sync;
  explicit sidecar(std::string id) : instance(std::move(id)) {
    ledger.follow_reads(true);
    sync.follow_for(600);
  }
  void tick(fake_redis& redis, std::int64_t now) {
    for (const auto& r : ledger.take_reads()) sync.follow(r.key, r.period_end, now);
    for (auto& b : sync.collect(ledger.counters(), now)) {
      REQUIRE(sync.applied(b, redis.push(b, instance), ledger.counters()));
    }
  }
};
}  // namespace

TEST_CASE("cogs sharing: reads are noted only when following is on, each once per take", "[margin][cogs_sharing]") {
  cogs_ledger ledger;
  (void)ledger.cogs("c", month, nov26);
  CHECK(ledger.take_reads().empty());  // off by default: no list kept without sharing
  ledger.follow_reads(true);
  (void)ledger.cogs("c", month, nov26);
  (void)ledger.cogs("c", month, nov26);
  (void)ledger.cogs("d", ce::period_kind::day, nov26);
  auto reads = ledger.take_reads();
  REQUIRE(reads.size() == 2);
  std::map<std::string, std::int64_t> by_key;
  for (const auto& r : reads) by_key[r.key] = r.period_end;
  CHECK(by_key.at("c:$cogs:2026-11") == dec1);
  CHECK(by_key.count("d:$cogs:2026-11-26") == 1);
  CHECK(ledger.take_reads().empty());
  (void)ledger.cogs("c", month, nov26);
  CHECK(ledger.take_reads().size() == 1);
  // Marks of ended periods go with expire (once taken).
  (void)ledger.cogs("c", month, nov26);
  ledger.expire(dec1);
  CHECK(ledger.take_reads().size() == 1);
  ledger.expire(dec1);
  (void)ledger.cogs("c", month, dec1);
  auto next = ledger.take_reads();
  REQUIRE(next.size() == 1);
  CHECK(next[0].key == "c:$cogs:2026-12");
}

TEST_CASE("cogs sharing: two sidecars see the combined COGS within one sync, through an outage and a restart",
          "[margin][cogs_sharing]") {
  fake_redis redis;
  sidecar a("a"), b("b");
  const std::string key = "cust:$cogs:2026-11";
  std::int64_t now = nov26;

  a.ledger.add_micros("cust", month, units(40), now);
  b.ledger.add_micros("cust", month, units(45), now);
  a.tick(redis, now);
  b.tick(redis, now);
  CHECK(a.ledger.cogs("cust", month, now) == units(40));  // pushed first
  CHECK(b.ledger.cogs("cust", month, now) == units(85));
  a.tick(redis, ++now);
  CHECK(a.ledger.cogs("cust", month, now) == units(85));  // one sync later

  // A third sidecar records no cost for the customer but guards it: it follows what it reads.
  sidecar c("c");
  CHECK(c.ledger.cogs("cust", month, now) == 0);
  c.tick(redis, now);
  CHECK(c.ledger.cogs("cust", month, now) == units(85));

  // Redis down: a keeps counting locally (no tick reaches Redis), then Redis returns empty.
  a.ledger.add_micros("cust", month, units(10), now);
  CHECK(a.ledger.cogs("cust", month, now) == units(95));
  redis.hashes.clear();
  for (auto* s : {&a, &b, &c}) s->sync.resend_all();
  a.tick(redis, ++now);
  c.tick(redis, now);
  b.tick(redis, now);
  a.tick(redis, ++now);
  c.tick(redis, now);
  for (auto* s : {&a, &b, &c}) CHECK(s->ledger.cogs("cust", month, now) == units(95));
  std::int64_t total = 0;
  for (const auto& [f, v] : redis.hashes.at(key)) total += v;
  CHECK(total == units(95));
  CHECK(redis.hashes.at(key).count("c") == 0);  // a reader contributes nothing
}
