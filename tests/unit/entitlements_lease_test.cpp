// Decision leases (decision_engine): when an allow carries one, how large, its scope, and the
// leased requests the plugin reports.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/entitlements/feature_mapper.hpp"
#include "core/entitlements/quota_reservations.hpp"
#include "entitlements_fixtures.hpp"

using namespace decision_fixtures;

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

TEST_CASE("decision: leased requests reported by the plugin are added to the quota",
          "[entitlements][decision][lease]") {
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
  CHECK(f.run(req("cust_trial", "/v1/search/x")).lease == 0);  // feature_not_entitled
  CHECK(f.run(req("cust_paused", "/v1/basic")).lease == 0);    // subscription_inactive
  CHECK(f.run(req("cust_nobody", "/v1/basic")).lease == 0);    // unknown_customer
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
    return std::string(s.scope == kind::route  ? "route"
                       : s.scope == kind::path ? "path"
                                               : "prefix ") +
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

TEST_CASE("decision: a limited feature is never leased by path, an unlimited one may be",
          "[entitlements][decision][lease]") {
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
  const decision unlimited =
      f.engine.decide_for(req("cust_acme", "/v1/search/basic/1"), rules, acme, f.quota, now, "hit");
  CHECK(unlimited.feature == "basic_search");
  CHECK(unlimited.lease == 50);
  CHECK(unlimited.lease_scope == "prefix");
  CHECK(f.run(req("cust_acme", "/v1/other")).lease_scope == "path");  // unmapped: no quota to bound
}

// ---- with quota reservations as the ledger (cache.quota_mode reserve) ----------------------------

namespace {
const std::string acme_key = "cust_acme:advanced_search:2026-11";

// Answers every due call as a store with `free` units left would (one sidecar: its own consumption counts).
void answer(quota_reservations& q, std::int64_t& free) {
  for (const auto& c : q.take_calls(now)) {
    const std::int64_t grant = std::max<std::int64_t>(0, std::min(c.want, free));
    free -= grant;
    q.on_reply(c, reserve_reply{grant, c.consumed, 10000 - free});
  }
}
}  // namespace

TEST_CASE("decision: with reservations a check pends until its units are reserved, then decides",
          "[entitlements][decision][lease][reservations]") {
  quota_reservations q;
  decision_engine engine{engine_options{enforcement_mode::enforce, unknown_customer_policy::block, 50, 1000}};
  auto r = req("cust_acme", "/v1/search/items/1");
  r.leased = 3;
  auto d = engine.decide(r, &example(), q, now, "hit");
  REQUIRE(d);
  CHECK(d->quota_pending);
  CHECK(d->headers.size() == 0);
  std::int64_t free = 10000;
  answer(q, free);
  r.leased = 0;  // counted by the first pass
  d = engine.decide(r, &example(), q, now, "hit");
  REQUIRE(d);
  CHECK_FALSE(d->quota_pending);
  CHECK(d->allowed);
  CHECK(d->remaining_quota == 10000 - 3 - 1);
  CHECK(d->headers.get("X-RateLimit-Remaining") == std::optional<std::string_view>("9996"));
}

TEST_CASE("decision: with reservations a lease of a limited feature is drawn from the units held",
          "[entitlements][decision][lease][reservations]") {
  quota_reservations q;
  decision_engine plain{engine_options{enforcement_mode::enforce, unknown_customer_policy::block, 0, 1000}};
  decision_engine engine{engine_options{enforcement_mode::enforce, unknown_customer_policy::block, 5000, 1000}};
  std::int64_t free = 10000;
  std::int64_t t_ms = 0;
  // Steady traffic without leases so that the chunk grows past one unit.
  for (int i = 0; i < 400; ++i) {
    q.set_now_ms(t_ms += 5);
    auto d = plain.decide(req("cust_acme", "/v1/search/items/1"), &example(), q, now, "hit");
    if (d->quota_pending) {
      answer(q, free);
      d = plain.decide(req("cust_acme", "/v1/search/items/1"), &example(), q, now, "hit");
    }
    REQUIRE(d->allowed);
    answer(q, free);
  }
  const std::int64_t held = q.held(acme_key);
  q.set_now_ms(t_ms += 5);
  // A client that does not report its leases' unused units (no lease_unused) gets none.
  auto ignoring = engine.decide(req("cust_acme", "/v1/search/items/1"), &example(), q, now, "hit");
  REQUIRE(ignoring->allowed);
  CHECK(ignoring->lease == 0);
  q.set_now_ms(t_ms += 5);
  auto r = req("cust_acme", "/v1/search/items/1");
  r.reports_unused = true;  // the plugin: "lease_unused":0
  const std::int64_t held_before = q.held(acme_key);
  const auto d = engine.decide(r, &example(), q, now, "hit");
  REQUIRE(d->allowed);
  CHECK(held_before <= held);
  CHECK(d->lease > 0);
  CHECK(d->lease <= held / 2);  // never more than the chunk can spare
  CHECK(d->lease <= 10000 / lease_quota_divisor);
  CHECK(q.held(acme_key) <= held - 1 - d->lease);
}
