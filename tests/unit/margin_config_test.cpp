// Margin guard file: parsing, defaults and every validation error with its path.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "config/guards_yaml.hpp"

using namespace aforo::core::margin;
using aforo::config::parse_guards_yaml;

namespace {

const char* const example = R"(
guards:
  - id: default
    applies_to: { plans: [pro, enterprise] }
    min_margin: 25%
    level_1: { threshold: 30%, notify: ["https://hooks.example.com/aforo"] }
    level_2: { threshold: 20%, throttle_rate: 5/s }
    level_3: { threshold: 10%, retry_after: 1800s }
)";

// True when some error starts with the path and contains the fragment.
bool has_error(const guard_set_result& r, const std::string& path, const std::string& fragment) {
  return std::any_of(r.errors.begin(), r.errors.end(), [&](const std::string& e) {
    return e.rfind(path + ": ", 0) == 0 && e.find(fragment) != std::string::npos;
  });
}

std::string one_guard(const std::string& body) { return "guards:\n  - id: g\n" + body; }

}  // namespace

TEST_CASE("margin config: the contract's example parses with every field", "[margin][config]") {
  const auto r = parse_guards_yaml(example);
  REQUIRE(r.ok());
  REQUIRE(r.value->guards.size() == 1);
  const guard& g = r.value->guards[0];
  CHECK(g.id == "default");
  CHECK(g.applies_to.plans == std::vector<std::string>{"pro", "enterprise"});
  CHECK(g.applies_to.customers.empty());
  CHECK(g.min_margin_bp == 2500);
  REQUIRE(g.level_1);
  CHECK(g.level_1->threshold_bp == 3000);
  CHECK(g.level_1->notify == std::vector<std::string>{"https://hooks.example.com/aforo"});
  REQUIRE(g.level_2);
  CHECK(g.level_2->threshold_bp == 2000);
  CHECK(g.level_2->throttle_rate.tokens == 5);
  CHECK(g.level_2->throttle_rate.per_ms == 1000);
  REQUIRE(g.level_3);
  CHECK(g.level_3->threshold_bp == 1000);
  CHECK(g.level_3->retry_after_s == 1800);
  CHECK(g.mode == guard_mode::enforce);
}

TEST_CASE("margin config: defaults are all traffic, enforce and a 1800 s block", "[margin][config]") {
  const auto r = parse_guards_yaml(one_guard("    level_3: { threshold: 10% }\n"));
  REQUIRE(r.ok());
  const guard& g = r.value->guards[0];
  CHECK(g.applies_to.matches("anyone", "any-plan", ""));
  CHECK(g.mode == guard_mode::enforce);
  CHECK(g.level_3->retry_after_s == 1800);
  CHECK_FALSE(g.level_1);
  CHECK_FALSE(g.min_margin_bp);
}

TEST_CASE("margin config: modes, fractional percentages and rate units parse", "[margin][config]") {
  auto r =
      parse_guards_yaml(one_guard("    mode: alert_only\n    level_1: { threshold: 27.5% }\n"
                                  "    level_2: { threshold: 12.25, throttle_rate: 30/m }\n"
                                  "    level_3: { threshold: 0%, retry_after: 1h }\n"));
  REQUIRE(r.ok());
  const guard& g = r.value->guards[0];
  CHECK(g.mode == guard_mode::alert_only);
  CHECK(g.level_1->threshold_bp == 2750);
  CHECK(g.level_2->threshold_bp == 1225);
  CHECK(g.level_2->throttle_rate.tokens == 30);
  CHECK(g.level_2->throttle_rate.per_ms == 60000);
  CHECK(g.level_3->threshold_bp == 0);
  CHECK(g.level_3->retry_after_s == 3600);
  CHECK(parse_guards_yaml(one_guard("    mode: shadow\n    level_1: { threshold: 5% }\n")).value->guards[0].mode ==
        guard_mode::shadow);
}

TEST_CASE("margin config: an empty list means no guard, an empty file is an error", "[margin][config]") {
  auto r = parse_guards_yaml("guards: []\n");
  REQUIRE(r.ok());
  CHECK(r.value->guards.empty());
  CHECK(has_error(parse_guards_yaml(""), "guards", "empty"));
  CHECK(has_error(parse_guards_yaml("other: 1\n"), "guards", "is required"));
  CHECK(has_error(parse_guards_yaml("guards: 3\n"), "guards", "must be a list"));
}

TEST_CASE("margin config: thresholds must decrease from L1 to L3", "[margin][config]") {
  auto r = parse_guards_yaml(
      one_guard("    level_1: { threshold: 20% }\n    level_2: { threshold: 20%, throttle_rate: 5/s }\n"));
  CHECK(has_error(r, "guards[0].level_2.threshold", "lower than level_1.threshold (20%)"));
  r = parse_guards_yaml(
      one_guard("    level_2: { threshold: 10%, throttle_rate: 5/s }\n    level_3: { threshold: 15% }\n"));
  CHECK(has_error(r, "guards[0].level_3.threshold", "lower than level_2.threshold (10%)"));
  r = parse_guards_yaml(one_guard("    level_1: { threshold: 10% }\n    level_3: { threshold: 15% }\n"));
  CHECK(has_error(r, "guards[0].level_3.threshold", "lower than level_1.threshold"));
  CHECK_FALSE(r.ok());
}

TEST_CASE("margin config: percentages outside 0..100 or with 3 decimals are refused", "[margin][config]") {
  CHECK(has_error(parse_guards_yaml(one_guard("    level_1: { threshold: 101% }\n")), "guards[0].level_1.threshold",
                  "percentage"));
  CHECK(has_error(parse_guards_yaml(one_guard("    level_1: { threshold: -5% }\n")), "guards[0].level_1.threshold",
                  "percentage"));
  CHECK(has_error(parse_guards_yaml(one_guard("    level_1: { threshold: 30.125% }\n")), "guards[0].level_1.threshold",
                  "2 decimals"));
  CHECK(has_error(parse_guards_yaml(one_guard("    level_1: { threshold: lots }\n")), "guards[0].level_1.threshold",
                  "percentage"));
  CHECK(has_error(parse_guards_yaml(one_guard("    min_margin: 120%\n    level_1: { threshold: 30% }\n")),
                  "guards[0].min_margin", "percentage"));
  CHECK(has_error(parse_guards_yaml(one_guard("    level_1: { notify: [] }\n")), "guards[0].level_1.threshold",
                  "is required"));
}

TEST_CASE("margin config: notify URLs must be absolute http(s) URLs", "[margin][config]") {
  for (const char* bad : {"ftp://hooks.example.com/x", "hooks.example.com/x", "https://", "https:///path",
                          "http://user:pw@host/x", "https://bad host/x"}) {
    INFO(bad);
    const auto r =
        parse_guards_yaml(one_guard(std::string("    level_1: { threshold: 30%, notify: [\"") + bad + "\"] }\n"));
    CHECK(has_error(r, "guards[0].level_1.notify[0]", "http:// or https://"));
  }
  for (const char* good :
       {"http://127.0.0.1:9000/hook", "https://hooks.example.com", "HTTPS://h.example/x?y=1", "http://[::1]:8080/h"}) {
    INFO(good);
    CHECK(parse_guards_yaml(one_guard(std::string("    level_1: { threshold: 30%, notify: [\"") + good + "\"] }\n"))
              .ok());
  }
}

TEST_CASE("margin config: throttle rates must be positive counts per s, m or h", "[margin][config]") {
  for (const char* bad : {"0/s", "-5/s", "5", "5/d", "five/s", "5.5/s", "/s"}) {
    INFO(bad);
    const auto r =
        parse_guards_yaml(one_guard(std::string("    level_2: { threshold: 20%, throttle_rate: \"") + bad + "\" }\n"));
    CHECK(has_error(r, "guards[0].level_2.throttle_rate", "5/s"));
  }
  CHECK(has_error(parse_guards_yaml(one_guard("    level_2: { threshold: 20% }\n")), "guards[0].level_2.throttle_rate",
                  "is required"));
}

TEST_CASE("margin config: retry_after must be a positive duration", "[margin][config]") {
  for (const char* bad : {"0s", "soon", "-1s", "10d"}) {
    INFO(bad);
    CHECK(has_error(
        parse_guards_yaml(one_guard(std::string("    level_3: { threshold: 10%, retry_after: \"") + bad + "\" }\n")),
        "guards[0].level_3.retry_after", "positive duration"));
  }
}

TEST_CASE("margin config: ids are required and unique, modes are known, keys are checked", "[margin][config]") {
  auto r = parse_guards_yaml("guards:\n  - level_1: { threshold: 30% }\n");
  CHECK(has_error(r, "guards[0].id", "is required"));
  r = parse_guards_yaml(
      "guards:\n  - { id: a, level_1: { threshold: 30% } }\n  - { id: a, level_1: { threshold: 20% } }\n");
  CHECK(has_error(r, "guards[1].id", "duplicate id 'a'"));
  CHECK(has_error(parse_guards_yaml(one_guard("    mode: strict\n    level_1: { threshold: 30% }\n")), "guards[0].mode",
                  "enforce, alert_only, shadow"));
  CHECK(has_error(parse_guards_yaml(one_guard("    level1: { threshold: 30% }\n")), "guards[0].level1", "unknown key"));
  CHECK(has_error(parse_guards_yaml(one_guard("    applies_to: { tiers: [x] }\n    level_1: { threshold: 30% }\n")),
                  "guards[0].applies_to.tiers", "unknown key"));
  CHECK(has_error(parse_guards_yaml(one_guard("    level_1: { threshold: 30%, colour: red }\n")),
                  "guards[0].level_1.colour", "unknown key"));
  CHECK(has_error(parse_guards_yaml(one_guard("    applies_to: { plans: {a: 1} }\n    level_1: { threshold: 30% }\n")),
                  "guards[0].applies_to.plans", "list of strings"));
  CHECK(has_error(parse_guards_yaml(one_guard("    mode: enforce\n")), "guards[0]", "at least one of level_1"));
}

TEST_CASE("margin config: a YAML syntax error names the line", "[margin][config]") {
  const auto r = parse_guards_yaml("guards:\n  - id: [unclosed\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.errors.at(0).rfind("YAML line", 0) == 0);
}

TEST_CASE("margin config: scopes match plans, customers and features together", "[margin][config]") {
  guard_scope s;
  s.plans = {"pro"};
  s.features = {"search"};
  CHECK(s.matches("c1", "pro", "search"));
  CHECK_FALSE(s.matches("c1", "free", "search"));
  CHECK_FALSE(s.matches("c1", "pro", "export"));
  CHECK_FALSE(s.matches("c1", "pro", ""));  // an unmapped request is outside a feature-scoped guard
  s = {};
  s.customers = {"c2"};
  CHECK(s.matches("c2", "", ""));
  CHECK_FALSE(s.matches("c1", "", ""));
}

TEST_CASE("margin config: the shipped example guard file is valid", "[margin][config]") {
  const auto r = aforo::config::load_guards_file(std::string(AFORO_SOURCE_DIR) + "/config/guards.example.yaml");
  INFO((r.errors.empty() ? std::string() : r.errors.front()));
  REQUIRE(r.ok());
  CHECK(r.value->guards.size() == 2);
  CHECK(r.value->guards[0].mode == guard_mode::alert_only);
  CHECK(r.value->guards[1].level_2->throttle_rate.tokens == 5);
}
