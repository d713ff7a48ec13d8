// The one backoff (core/backoff.hpp): doubling to a cap, explicit schedules, jitter from a random
// number the caller passes, Retry-After, reset on success.
#include <catch2/catch.hpp>

#include "core/backoff.hpp"

using namespace aforo::core;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

TEST_CASE("backoff: doubling from the initial wait stops at the cap", "[backoff]") {
  const auto p = backoff_policy::exponential(1s, 60s);
  std::vector<ms> seen;
  for (std::uint32_t n = 1; n <= 9; ++n) seen.push_back(backoff_delay(p, n));
  CHECK(seen == std::vector<ms>{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s});
  CHECK(backoff_delay(p, 0) == 1s);                // 0 is taken as the first failure
  CHECK(backoff_delay(p, 4'000'000'000U) == 60s);  // a long outage neither overflows nor loops long
}

TEST_CASE("backoff: a cap below the initial wait and a zero initial wait are corrected", "[backoff]") {
  CHECK(backoff_delay(backoff_policy::exponential(500ms, 100ms), 3) == 500ms);
  CHECK(backoff_delay(backoff_policy::exponential(0ms, 10ms), 1) == 1ms);
  CHECK(backoff_delay(backoff_policy::exponential(0ms, 10ms), 5) == 10ms);
}

TEST_CASE("backoff: an explicit schedule is used as given and its last wait repeats", "[backoff]") {
  const auto p = backoff_policy::schedule({1s, 2s, 4s});
  CHECK(backoff_delay(p, 1) == 1s);
  CHECK(backoff_delay(p, 2) == 2s);
  CHECK(backoff_delay(p, 3) == 4s);
  CHECK(backoff_delay(p, 4) == 4s);
  CHECK(backoff_delay(backoff_policy::schedule({90s}), 1) == 90s);  // the cap is for doubling only
}

TEST_CASE("backoff: jitter stretches a wait by the caller's random share of jitter_percent", "[backoff]") {
  const auto p = backoff_policy::schedule({1s, 2s}, 10);
  CHECK(backoff_delay(p, 1, 0.0) == 1000ms);
  CHECK(backoff_delay(p, 1, 0.5) == 1050ms);
  CHECK(backoff_delay(p, 2, 0.999) == 2200ms);
  CHECK(backoff_delay(p, 1, 7.0) == 1100ms);                                // clamped to 1
  CHECK(backoff_delay(p, 1, -1.0) == 1000ms);                               // clamped to 0
  CHECK(backoff_delay(backoff_policy::exponential(1s, 4s), 2, 0.9) == 2s);  // no jitter configured
}

TEST_CASE("backoff: a longer Retry-After wins, a shorter one does not", "[backoff]") {
  const auto p = backoff_policy::schedule({1s, 2s, 4s});
  CHECK(backoff_delay(p, 1, 0.0, ms(7000)) == 7s);
  CHECK(backoff_delay(p, 3, 0.0, ms(1000)) == 4s);
}

TEST_CASE("backoff: the counter grows per failure and a success resets it", "[backoff]") {
  backoff b(backoff_policy::exponential(100ms, 5s));
  CHECK(b.next() == 100ms);
  CHECK(b.next() == 200ms);
  CHECK(b.next() == 400ms);
  CHECK(b.failures() == 3);
  b.reset();
  CHECK(b.failures() == 0);
  CHECK(b.next() == 100ms);
}
