// One level-change webhook per cluster: the rule deciding which sidecar sends it (notice_due), the
// notice's key, lifetime and claim arguments, and two real guards whose COGS views lag each other
// sending each change once. The claim script itself runs against a real Redis in margin_itest.
#include <catch2/catch.hpp>

#include <map>

#include "core/margin/level_notice.hpp"
#include "core/margin/margin_guard.hpp"

using namespace aforo::core::margin;
namespace ce = aforo::core::entitlements;

namespace {

constexpr auto none = margin_level::none;
constexpr auto l1 = margin_level::l1;
constexpr auto l2 = margin_level::l2;
constexpr auto l3 = margin_level::l3;

constexpr micros units(std::int64_t n) { return n * ce::micros_per_unit; }
const std::int64_t nov26 = *ce::parse_iso8601("2026-11-26T06:00:00Z");
const std::int64_t dec1 = *ce::parse_iso8601("2026-12-01T00:00:00Z");

guard_set one_guard(std::int32_t l3_threshold_bp = 1000) {
  guard g;
  g.id = "default";
  g.level_1 = level_1_config{3000, {"https://hooks.example.com/a", "https://hooks.example.com/b"}};
  g.level_2 = level_2_config{2000, {5, 1000}};
  g.level_3 = level_3_config{l3_threshold_bp, 1800};
  guard_set s;
  s.guards.push_back(std::move(g));
  return s;
}

// One sidecar: its own guard (levels) and its own view of the customer's COGS.
struct sidecar {
  margin_guard mg;
  ce::customer cust;
  micros seen = 0;  // the COGS this sidecar knows of

  sidecar() {
    mg.set_guards(one_guard());
    cust.id = "cust_x";
    cust.plan = "pro";
    cust.revenue = ce::revenue_terms{units(1000), ce::period_kind::month};
  }
  // Catches up to the cluster's COGS `total` and checks once: the level changes it sees.
  std::vector<level_change> check(micros total) {
    mg.ledger().add_micros(cust.id, ce::period_kind::month, total - seen, nov26);
    seen = total;
    (void)mg.evaluate_at({cust.id, cust, "search", nullptr, 1, nov26}, 0);
    return mg.take_changes();
  }
};

// The notices in Redis, and the webhooks the cluster sent, applying notice_due as the script does.
struct cluster {
  std::map<std::string, margin_level> notices;
  std::vector<std::string> sent;  // "L2 from A"

  void handle(const std::vector<level_change>& changes, const std::string& who) {
    const ce::redis_keys keys("t");
    for (const auto& c : changes) {
      const std::string key = keys.margin_notice(c.customer_id, c.guard_id, c.period);
      const auto it = notices.find(key);
      const std::optional<margin_level> told = it == notices.end() ? std::nullopt : std::optional(it->second);
      if (!notice_due(told, c.from, c.to)) continue;
      notices[key] = c.to;
      sent.push_back(std::string(ce::to_string(c.to)) + " from " + who);
    }
  }
};

}  // namespace

TEST_CASE("level notice: the first change of a period is always told", "[margin][notice]") {
  for (auto from : {none, l1, l2, l3}) {
    for (auto to : {none, l1, l2, l3}) {
      INFO(int(from) << " -> " << int(to));
      CHECK(notice_due(std::nullopt, from, to) == (from != to));
    }
  }
}

TEST_CASE("level notice: a worsening change already told, or overtaken by a deeper one, is not told again",
          "[margin][notice]") {
  CHECK_FALSE(notice_due(l1, none, l1));  // the same crossing seen by a second sidecar
  CHECK_FALSE(notice_due(l2, none, l1));  // a lagging sidecar's older, milder crossing
  CHECK_FALSE(notice_due(l3, l1, l2));
  CHECK_FALSE(notice_due(l3, none, l3));
  CHECK(notice_due(l1, none, l2));  // deeper than what was told
  CHECK(notice_due(l1, l1, l3));
  CHECK(notice_due(none, none, l1));  // told it recovered, now back down
}

TEST_CASE("level notice: a recovery is told once and a level entered again after leaving it is told again",
          "[margin][notice]") {
  CHECK(notice_due(l3, l3, l2));          // a guard edit or more revenue lifts the block
  CHECK_FALSE(notice_due(l2, l3, l2));    // the second sidecar's view of that recovery
  CHECK_FALSE(notice_due(none, l2, l1));  // a lagging recovery after the cluster told NONE
  CHECK(notice_due(l2, l2, none));
  CHECK(notice_due(l2, l3, none));
  // L1, NONE, L1 within one period: three webhooks.
  std::optional<margin_level> told;
  int webhooks = 0;
  for (auto [from, to] : {std::pair{none, l1}, std::pair{l1, none}, std::pair{none, l1}}) {
    if (notice_due(told, from, to)) {
      ++webhooks;
      told = to;
    }
  }
  CHECK(webhooks == 3);
  CHECK_FALSE(notice_due(l1, l1, l1));  // no change
  CHECK_FALSE(notice_due(std::nullopt, l2, l2));
}

TEST_CASE("level notice: two sidecars whose COGS views lag each other send each level once", "[margin][notice]") {
  sidecar a;
  sidecar b;
  cluster redis;
  // The cluster's COGS climbs through L1 (25%), L2 (15%) and L3 (5%); B sees each total one step late.
  micros total = 0;
  micros b_view = 0;
  for (micros step : {units(750), units(100), units(100)}) {
    total += step;
    redis.handle(a.check(total), "A");
    redis.handle(b.check(b_view), "B");
    b_view = total;
  }
  redis.handle(b.check(total), "B");
  CHECK(redis.sent == std::vector<std::string>{"L1 from A", "L2 from A", "L3 from A"});

  // B first, then A skipping straight from NONE to L3: still one webhook.
  sidecar c;
  sidecar d;
  cluster other;
  other.handle(c.check(units(750)), "C");
  other.handle(c.check(units(950)), "C");
  other.handle(d.check(units(950)), "D");  // NONE -> L3 seen at once
  CHECK(other.sent == std::vector<std::string>{"L1 from C", "L3 from C"});

  // A guard edit lifts L3 to L2 on both (told once), and restored it pushes both back to L3: told again.
  a.mg.set_guards(one_guard(500));
  b.mg.set_guards(one_guard(500));
  redis.handle(b.check(total), "B");
  redis.handle(a.check(total), "A");
  a.mg.set_guards(one_guard());
  b.mg.set_guards(one_guard());
  redis.handle(a.check(total), "A");
  redis.handle(b.check(total), "B");
  CHECK(redis.sent == std::vector<std::string>{"L1 from A", "L2 from A", "L3 from A", "L2 from B", "L3 from A"});
}

TEST_CASE("level notice: the claim names the customer, guard and period, and lives until after the period",
          "[margin][notice][keys]") {
  margin_guard mg;
  mg.set_guards(one_guard());
  ce::customer cust;
  cust.id = "cust_x";
  cust.revenue = ce::revenue_terms{units(1000), ce::period_kind::month};
  mg.ledger().add_micros("cust_x", ce::period_kind::month, units(950), nov26);
  (void)mg.evaluate_at({cust.id, cust, "search", nullptr, 1, nov26}, 0);
  auto changes = mg.take_changes();
  REQUIRE(changes.size() == 1);
  const level_change& c = changes[0];
  CHECK(c.period == "2026-11");
  CHECK(c.period_end == dec1);

  CHECK(notice_ttl_ms(c, nov26) == (dec1 - nov26 + 3600) * 1000);
  const auto args = notice_claim_args(c, ce::redis_keys("acme"), "inst1", nov26);
  CHECK(args == std::vector<std::string>{"1", "aforo:acme:mn:cust_x:default:2026-11", "3", "0", "inst1",
                                         std::to_string((dec1 - nov26 + 3600) * 1000)});

  // No revenue period known (or already over): an hour from now.
  level_change bare = c;
  bare.period.clear();
  bare.period_end = 0;
  CHECK(notice_ttl_ms(bare, nov26) == 3600 * 1000);
  bare.period_end = nov26 - 10;
  CHECK(notice_ttl_ms(bare, nov26) == 3600 * 1000);
  CHECK(notice_claim_script().find("SET") != std::string_view::npos);
}
