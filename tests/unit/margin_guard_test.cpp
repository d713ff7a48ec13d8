// The margin guard as the decision engine's hook: levels in both directions, throttle, block,
// modes, reloads and the level-change reports (log line, webhook body).
#include <catch2/catch.hpp>

#include "core/margin/level_report.hpp"
#include "core/margin/margin_guard.hpp"

using namespace aforo::core::margin;
namespace ce = aforo::core::entitlements;

namespace {
constexpr micros units(std::int64_t n) { return n * ce::micros_per_unit; }
const std::int64_t nov26 = *ce::parse_iso8601("2026-11-26T06:00:00Z");
const std::int64_t dec1 = *ce::parse_iso8601("2026-12-01T00:00:00Z");

guard make_guard(guard_mode mode = guard_mode::enforce) {
  guard g;
  g.id = "default";
  g.mode = mode;
  g.min_margin_bp = 2500;
  g.level_1 = level_1_config{3000, {"https://hooks.example.com/aforo"}};
  g.level_2 = level_2_config{2000, {5, 1000}};
  g.level_3 = level_3_config{1000, 1800};
  return g;
}

ce::customer make_customer(micros revenue) {
  ce::customer c;
  c.id = "cust_x";
  c.plan = "pro";
  c.revenue = ce::revenue_terms{revenue, ce::period_kind::month};
  return c;
}

struct fixture {
  margin_guard mg;
  ce::customer cust = make_customer(units(1000));

  explicit fixture(guard_mode mode = guard_mode::enforce) {
    guard_set s;
    s.guards.push_back(make_guard(mode));
    mg.set_guards(std::move(s));
  }
  ce::margin_verdict check(std::int64_t now, std::int64_t now_ms = 0) {
    return mg.evaluate_at({cust.id, cust, "search", nullptr, 1, now}, now_ms);
  }
  void spend(micros amount, std::int64_t now) { mg.ledger().add_micros(cust.id, ce::period_kind::month, amount, now); }
};
}  // namespace

TEST_CASE("margin guard: a healthy customer is allowed with no level and no report", "[margin][guard]") {
  fixture f;
  f.spend(units(600), nov26);  // 40% margin
  const auto v = f.check(nov26);
  CHECK(v.level == margin_level::none);
  CHECK_FALSE(v.deny);
  CHECK(f.mg.take_changes().empty());
}

TEST_CASE("margin guard: crossing 30%, 20% and 10% alerts, throttles, then blocks", "[margin][guard]") {
  fixture f;
  f.spend(units(750), nov26);  // 25%
  auto v = f.check(nov26);
  CHECK(v.level == margin_level::l1);
  CHECK_FALSE(v.deny);
  auto changes = f.mg.take_changes();
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].from == margin_level::none);
  CHECK(changes[0].to == margin_level::l1);
  CHECK(changes[0].margin_bp == 2500);
  CHECK(changes[0].threshold_bp == 3000);
  CHECK(changes[0].period == "2026-11");
  CHECK(changes[0].notify.size() == 1);
  f.check(nov26);
  CHECK(f.mg.take_changes().empty());  // reported once per change, not per request

  f.spend(units(100), nov26);  // 15%
  int allowed = 0;
  for (int i = 0; i < 8; ++i) {
    v = f.check(nov26, 0);
    CHECK(v.level == margin_level::l2);
    if (v.deny) {
      CHECK(v.retry_after == 1);
    } else {
      ++allowed;
    }
  }
  CHECK(allowed == 5);                       // the burst of throttle_rate 5/s
  CHECK(f.check(nov26, 200).deny == false);  // one token 200 ms later
  REQUIRE(f.mg.take_changes().size() == 1);

  f.spend(units(100), nov26);  // 5%
  v = f.check(nov26);
  CHECK(v.level == margin_level::l3);
  CHECK(v.deny);
  CHECK(v.retry_after == 1800);
  changes = f.mg.take_changes();
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].from == margin_level::l2);
  CHECK(changes[0].to == margin_level::l3);
  CHECK(f.mg.customers_per_level()[3] == 1);
}

TEST_CASE("margin guard: the block's Retry-After never reaches past the period end", "[margin][guard]") {
  fixture f;
  const std::int64_t late = dec1 - 600;  // 10 minutes before the month ends
  f.spend(units(950), late);
  const auto v = f.check(late);
  CHECK(v.deny);
  CHECK(v.retry_after == 600);
}

TEST_CASE("margin guard: a new period lifts a block and is reported", "[margin][guard]") {
  fixture f;
  f.spend(units(950), nov26);
  CHECK(f.check(nov26).deny);
  (void)f.mg.take_changes();
  const auto v = f.check(dec1);
  CHECK(v.level == margin_level::none);
  CHECK_FALSE(v.deny);
  const auto changes = f.mg.take_changes();
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].from == margin_level::l3);
  CHECK(changes[0].to == margin_level::none);
  CHECK(changes[0].threshold_bp == 1000);  // the level left
  CHECK(changes[0].period == "2026-12");
  CHECK(f.mg.customers_per_level()[3] == 0);
}

TEST_CASE("margin guard: a revenue change in a new snapshot moves the level both ways", "[margin][guard]") {
  fixture f;
  f.spend(units(950), nov26);
  CHECK(f.check(nov26).level == margin_level::l3);
  f.cust.revenue->amount = units(5000);  // renegotiated: 81% margin
  CHECK(f.check(nov26).level == margin_level::none);
  f.cust.revenue->amount = units(1200);  // 20.83%: L1
  CHECK(f.check(nov26).level == margin_level::l1);
  const auto changes = f.mg.take_changes();
  REQUIRE(changes.size() == 3);
  CHECK(changes[1].to == margin_level::none);
  CHECK(changes[2].to == margin_level::l1);
  CHECK(changes[2].margin_bp == 2083);
}

TEST_CASE("margin guard: missing revenue means the guard does not apply", "[margin][guard]") {
  fixture f;
  f.cust.revenue.reset();
  f.spend(units(1'000'000), nov26);
  CHECK(f.check(nov26).level == margin_level::none);
  CHECK(f.mg.take_changes().empty());
}

TEST_CASE("margin guard: zero revenue with any cost is below every level", "[margin][guard]") {
  fixture f;
  f.cust.revenue->amount = 0;
  CHECK(f.check(nov26).level == margin_level::none);  // nothing spent yet
  f.spend(1, nov26);
  const auto v = f.check(nov26);
  CHECK(v.level == margin_level::l3);
  CHECK(v.deny);
  const auto changes = f.mg.take_changes();
  REQUIRE(changes.size() == 1);
  CHECK_FALSE(changes[0].margin_bp.has_value());
  CHECK(describe(changes[0]) == "margin guard: cust_x L3 (revenue 0, cogs 0.000001) [guard default]");
}

TEST_CASE("margin guard: alert_only alerts at every level and never denies", "[margin][guard]") {
  fixture f(guard_mode::alert_only);
  f.spend(units(990), nov26);
  for (int i = 0; i < 20; ++i) {
    const auto v = f.check(nov26);
    CHECK(v.level == margin_level::l3);
    CHECK_FALSE(v.deny);
  }
  const auto changes = f.mg.take_changes();
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].notify.size() == 1);  // webhooks still go out
}

TEST_CASE("margin guard: shadow reports levels but denies nothing and sends no webhook", "[margin][guard]") {
  fixture f(guard_mode::shadow);
  f.spend(units(850), nov26);
  for (int i = 0; i < 20; ++i) CHECK_FALSE(f.check(nov26).deny);
  const auto changes = f.mg.take_changes();
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].to == margin_level::l2);
  CHECK(changes[0].notify.empty());
  CHECK(describe(changes[0]) == "margin guard: cust_x L2 (margin 15% < 20%) [guard default, shadow]");
}

TEST_CASE("margin guard: the first guard whose scope matches applies", "[margin][guard]") {
  margin_guard mg;
  guard_set s;
  guard vip = make_guard();
  vip.id = "vip";
  vip.applies_to.customers = {"cust_vip"};
  vip.level_1.reset();
  vip.level_2.reset();
  vip.level_3 = level_3_config{0, 60};  // only a loss blocks
  s.guards.push_back(vip);
  s.guards.push_back(make_guard());
  guard free = make_guard();
  free.id = "free-only";
  free.applies_to.plans = {"free"};
  s.guards.push_back(free);
  mg.set_guards(std::move(s));

  ce::customer v = make_customer(units(1000));
  v.id = "cust_vip";
  ce::customer x = make_customer(units(1000));
  mg.ledger().add_micros("cust_vip", ce::period_kind::month, units(950), nov26);
  mg.ledger().add_micros("cust_x", ce::period_kind::month, units(950), nov26);
  CHECK(mg.evaluate_at({v.id, v, "", nullptr, 1, nov26}, 0).level == margin_level::none);
  CHECK(mg.evaluate_at({x.id, x, "", nullptr, 1, nov26}, 0).level == margin_level::l3);
  ce::customer enterprise = make_customer(units(1000));
  enterprise.plan = "enterprise";
  guard_set only_free;
  only_free.guards.push_back(free);
  mg.set_guards(only_free);
  CHECK(mg.evaluate_at({x.id, enterprise, "", nullptr, 1, nov26}, 0).level == margin_level::none);
}

TEST_CASE("margin guard: a reload keeps levels of guards that stay and applies new thresholds", "[margin][guard]") {
  fixture f;
  f.spend(units(750), nov26);  // 25%: L1
  CHECK(f.check(nov26).level == margin_level::l1);
  REQUIRE(f.mg.take_changes().size() == 1);

  guard_set same;
  same.guards.push_back(make_guard());
  f.mg.set_guards(same);
  CHECK(f.check(nov26).level == margin_level::l1);
  CHECK(f.mg.take_changes().empty());  // no second webhook for the same level

  guard stricter = make_guard();
  stricter.level_2->threshold_bp = 2600;
  guard_set next;
  next.guards.push_back(stricter);
  f.mg.set_guards(next);
  CHECK(f.check(nov26).level == margin_level::l2);
  REQUIRE(f.mg.take_changes().size() == 1);
  f.mg.set_guards({});
  CHECK(f.check(nov26).level == margin_level::none);
}

TEST_CASE("margin guard: usage costs feed COGS in the customer's revenue period", "[margin][guard]") {
  margin_guard mg;
  std::vector<ce::feature_rule> rules(1);
  rules[0].metric = "search_calls";
  rules[0].unit_cost = 4000;
  ce::customer c = make_customer(units(1000));
  c.revenue->period = ce::period_kind::day;
  usage_event ev;
  ev.customer_id = "cust_x";
  ev.metric_name = "search_calls";
  ev.quantity_micros = 10 * ce::micros_per_unit;
  ev.reported_cost = 500'000;
  mg.record_usage(rules, &c, ev, nov26);
  CHECK(mg.ledger().cogs("cust_x", ce::period_kind::day, nov26) == 540'000);
  mg.record_usage(rules, nullptr, ev, nov26);  // unknown customer: month
  CHECK(mg.ledger().cogs("cust_x", ce::period_kind::month, nov26) == 540'000);
}

TEST_CASE("margin guard: the webhook body carries exact amounts and the signed text", "[margin][guard]") {
  level_change c;
  c.guard_id = "default";
  c.customer_id = "cust_x";
  c.from = margin_level::none;
  c.to = margin_level::l1;
  c.margin_bp = 2850;
  c.threshold_bp = 3000;
  c.min_margin_bp = 2500;
  c.revenue = units(2000);
  c.cogs = 1'430'000'001;
  c.period = "2026-11";
  CHECK(webhook_body(c, 1764201600) ==
        R"({"customer_id":"cust_x","level":"L1","previous_level":"NONE","margin_percent":28.5,"threshold_percent":30,)"
        R"("min_margin_percent":25,"revenue":2000,"cogs":1430.000001,"period":"2026-11","guard":"default",)"
        R"("mode":"enforce","timestamp":1764201600})");
  CHECK(signature_input(17, "{}") == "17.{}");
  CHECK(describe(c) == "margin guard: cust_x L1 (margin 28.5% < 30%) [guard default]");
  c.margin_bp.reset();
  CHECK(webhook_body(c, 1).find(R"("margin_percent":null)") != std::string::npos);
}
