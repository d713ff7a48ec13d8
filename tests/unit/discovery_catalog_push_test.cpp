// The catalog push machine (core/discovery/catalog_push.hpp): when a revision is pushed and what an
// answer means, driven by hand with simulated time.
#include <catch2/catch.hpp>

#include "core/discovery/catalog_push.hpp"

using namespace aforo::core;
using namespace aforo::core::discovery;
using namespace std::chrono_literals;
using kind = push_step::kind;

namespace {
const std::chrono::steady_clock::time_point t0{100s};
constexpr std::chrono::milliseconds interval = 300s;

retry_settings no_jitter() {
  retry_settings s;
  s.jitter_percent = 0;
  return s;
}
}  // namespace

TEST_CASE("catalog push: a new revision is pushed once and a delivered one is not pushed again", "[discovery][push]") {
  catalog_push m;
  CHECK(m.poll(0, true).what == kind::none);   // nothing observed yet
  CHECK(m.poll(3, false).what == kind::none);  // no control URL
  const auto p = m.poll(3, true);
  REQUIRE(p.what == kind::push);
  CHECK(p.revision == 3);
  CHECK(m.poll(4, true).what == kind::none);  // one push in flight
  const auto r = m.on_result(delivery_outcome::http(200), no_jitter(), interval, 0.0, t0);
  CHECK(r.what == kind::none);
  CHECK(r.result == push_result::delivered);
  CHECK(r.revision == 3);
  CHECK(m.pushed_revision() == 3);
  CHECK(m.poll(3, true).what == kind::none);
  CHECK(m.poll(4, true).revision == 4);  // the newer revision replaces the pending one
}

TEST_CASE("catalog push: a restored revision is not pushed again after a restart", "[discovery][push]") {
  catalog_push m;
  m.restore(7);
  CHECK(m.poll(7, true).what == kind::none);
  CHECK(m.poll(8, true).what == kind::push);
}

TEST_CASE("catalog push: transient failures wait 1 s, 2 s, 4 s, then the interval", "[discovery][push]") {
  catalog_push m;
  auto now = t0;
  std::vector<std::chrono::milliseconds> waits;
  std::vector<push_result> results;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(m.poll(5, true).what == kind::push);
    const auto s = m.on_result(delivery_outcome::http(503), no_jitter(), interval, 0.0, now);
    REQUIRE(s.what == kind::wait);
    CHECK(s.at == now + s.wait);
    CHECK(m.poll(5, true).what == kind::none);  // waiting
    waits.push_back(s.wait);
    results.push_back(s.result);
    now = s.at;
    m.on_timer();
  }
  CHECK(waits == std::vector<std::chrono::milliseconds>{1s, 2s, 4s, interval, 1s});
  CHECK(results == std::vector<push_result>{push_result::retry, push_result::retry, push_result::retry,
                                            push_result::failed, push_result::retry});
}

TEST_CASE("catalog push: Retry-After holds the push longer than the backoff", "[discovery][push]") {
  catalog_push m;
  (void)m.poll(1, true);
  CHECK(m.on_result(delivery_outcome::http(429, 30s), no_jitter(), interval, 0.0, t0).wait == 30s);
}

TEST_CASE("catalog push: 401/403 wait retry.unauthorized_probe", "[discovery][push]") {
  catalog_push m;
  auto rs = no_jitter();
  rs.unauthorized_probe = 45s;
  (void)m.poll(2, true);
  const auto s = m.on_result(delivery_outcome::http(401), rs, interval, 0.0, t0);
  CHECK(s.what == kind::wait);
  CHECK(s.result == push_result::unauthorized);
  CHECK(s.wait == 45s);
  CHECK(m.attempt() == 0);
}

TEST_CASE("catalog push: a rejected revision is not retried, a newer one is pushed", "[discovery][push]") {
  for (int status : {400, 413, 422}) {
    catalog_push m;
    (void)m.poll(6, true);
    const auto s = m.on_result(delivery_outcome::http(status), no_jitter(), interval, 0.0, t0);
    CHECK(s.what == kind::none);
    CHECK(s.result == push_result::rejected);
    CHECK(m.rejected_revision() == 6);
    CHECK(m.poll(6, true).what == kind::none);
    CHECK(m.poll(7, true).what == kind::push);
  }
}

TEST_CASE("catalog push: answers out of turn and polls after stop do nothing", "[discovery][push]") {
  catalog_push m;
  CHECK(m.on_result(delivery_outcome::http(200), no_jitter(), interval, 0.0, t0).result == push_result::none);
  m.stop();
  CHECK(m.poll(9, true).what == kind::none);
}
