// The margin webhook's retry machine (core/margin/webhook_retry.hpp): what to send when and when
// to give up, driven by hand with simulated time.
#include <catch2/catch.hpp>

#include "core/margin/webhook_retry.hpp"

using namespace aforo::core::margin;
using namespace std::chrono_literals;
using kind = webhook_step::kind;

namespace {
const std::chrono::steady_clock::time_point t0{1000s};
}

TEST_CASE("webhook retry: statuses map to delivered, retryable or refused", "[margin][webhook]") {
  for (int s : {200, 202, 204}) CHECK(judge_webhook_status(s) == webhook_outcome::delivered);
  for (int s : {408, 429, 500, 502, 503, 504}) CHECK(judge_webhook_status(s) == webhook_outcome::retryable);
  for (int s : {100, 301, 400, 401, 403, 404, 413, 422}) CHECK(judge_webhook_status(s) == webhook_outcome::refused);
}

TEST_CASE("webhook retry: a 2xx on the first attempt is sent", "[margin][webhook]") {
  webhook_retry m;
  CHECK(m.start().what == kind::send);
  CHECK(m.on_result(webhook_outcome::delivered, t0).what == kind::sent);
  CHECK(m.attempts() == 1);
  CHECK(m.on_timer().what == kind::none);  // finished: nothing more
}

TEST_CASE("webhook retry: retryable failures wait 1 s, 2 s, 4 s and give up after 4 attempts", "[margin][webhook]") {
  webhook_retry m;
  REQUIRE(m.start().what == kind::send);
  auto now = t0;
  for (auto expected : {1s, 2s, 4s}) {
    const auto w = m.on_result(webhook_outcome::retryable, now);
    REQUIRE(w.what == kind::wait);
    CHECK(w.wait == expected);
    CHECK(w.at == now + expected);
    now = w.at;
    CHECK(m.on_timer().what == kind::send);
  }
  CHECK(m.attempts() == 4);
  CHECK(m.on_result(webhook_outcome::retryable, now).what == kind::failed);
  CHECK(m.attempts() == 4);
}

TEST_CASE("webhook retry: a success after retries is sent", "[margin][webhook]") {
  webhook_retry m;
  (void)m.start();
  REQUIRE(m.on_result(webhook_outcome::retryable, t0).what == kind::wait);
  REQUIRE(m.on_timer().what == kind::send);
  CHECK(m.on_result(webhook_outcome::delivered, t0 + 1s).what == kind::sent);
  CHECK(m.attempts() == 2);
}

TEST_CASE("webhook retry: a refused attempt fails at once", "[margin][webhook]") {
  webhook_retry m;
  (void)m.start();
  REQUIRE(m.on_result(webhook_outcome::retryable, t0).what == kind::wait);
  REQUIRE(m.on_timer().what == kind::send);
  CHECK(m.on_result(webhook_outcome::refused, t0 + 1s).what == kind::failed);
  CHECK(m.attempts() == 2);
}

TEST_CASE("webhook retry: events out of turn and events after stop do nothing", "[margin][webhook]") {
  webhook_retry m;
  CHECK(m.on_timer().what == kind::none);                                 // no wait armed
  CHECK(m.on_result(webhook_outcome::delivered, t0).what == kind::none);  // nothing in flight
  CHECK(m.start().what == kind::send);
  CHECK(m.start().what == kind::none);  // started once
  REQUIRE(m.on_result(webhook_outcome::retryable, t0).what == kind::wait);
  m.stop();
  CHECK(m.on_timer().what == kind::none);
  CHECK(m.attempts() == 1);
}
