// Shared fixtures of the /v1/check decision unit tests: the example snapshot, requests, a fixed
// "now" and a scriptable margin hook.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "config/snapshot_yaml.hpp"
#include "core/entitlements/decision_engine.hpp"

namespace decision_fixtures {

using namespace aforo::core::entitlements;

inline const snapshot& example() {
  static const snapshot s = [] {
    auto r = aforo::config::load_snapshot_file(std::string(AFORO_SOURCE_DIR) + "/config/snapshot.example.yaml");
    REQUIRE(r.ok());
    return std::move(*r.value);
  }();
  return s;
}

inline const std::int64_t now = *parse_iso8601("2026-11-26T06:00:00Z");

inline check_request req(std::string_view customer, std::string_view path, std::int64_t quantity = 1) {
  check_request r;
  r.customer_id = customer;
  r.service = "search";
  r.route = "search-v1";
  r.method = "GET";
  r.path = path;
  r.quantity = quantity;
  return r;
}

struct fixture {
  quota_counters quota{80};
  decision_engine engine{engine_options{}};

  decision run(const check_request& r, margin_hook* margin = nullptr) {
    auto d = engine.decide(r, &example(), quota, now, "hit", margin);
    REQUIRE(d.has_value());
    return *d;
  }
};

inline std::string header(const decision& d, std::string_view name) {
  auto v = d.headers.get(name);
  return v ? std::string(*v) : std::string("(absent)");
}

inline void check_denied(const decision& d, verdict kind, int status, reason why) {
  CHECK(d.kind == kind);
  CHECK_FALSE(d.allowed);
  CHECK(d.status == status);
  CHECK(d.why == why);
  CHECK_FALSE(d.shadow);
}

struct fake_margin : margin_hook {
  margin_verdict answer;
  int calls = 0;
  std::string last_feature;
  margin_verdict evaluate(const margin_query& q) override {
    ++calls;
    last_feature = std::string(q.feature);
    return answer;
  }
};

}  // namespace decision_fixtures
