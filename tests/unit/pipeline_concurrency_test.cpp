// Unit tests of concurrent delivery's pure parts: the adaptive concurrency limit under
// simulated time and ingest behaviour, and the cumulative acknowledgement window.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "core/pipeline/ack_window.hpp"
#include "core/pipeline/concurrency_limit.hpp"

using namespace aforo::core;
using namespace std::chrono_literals;
using clock_t_ = concurrency_limit::clock;

namespace {

/// Drives the limit against a simulated ingest `rtt` away that answers 429 past `capacity` requests
/// in flight, sending as many as the limit allows, for `duration`. Returns the limits seen each round trip.
std::vector<std::uint32_t> simulate(concurrency_limit& c, std::chrono::milliseconds rtt, std::uint32_t capacity,
                                    std::chrono::milliseconds duration) {
  std::vector<std::uint32_t> seen;
  auto now = clock_t_::time_point{} + 1h;
  const auto end = now + duration;
  while (now < end) {
    // One round: send up to the limit; the ingest refuses those past its capacity.
    std::uint32_t in_flight = 0;
    while (c.may_send(in_flight, now)) ++in_flight;
    const auto sent = now;
    now += rtt;
    for (std::uint32_t i = 0; i < in_flight; ++i) {
      c.record(i < capacity ? concurrency_limit::outcome::ok : concurrency_limit::outcome::overloaded, sent, i + 1,
               now);
    }
    if (in_flight == 0) now += 10ms;  // held back by a Retry-After
    seen.push_back(c.limit());
  }
  return seen;
}

}  // namespace

TEST_CASE("concurrency limit: grows by one per round trip while ingest keeps up, up to max",
          "[pipeline][concurrency]") {
  concurrency_limit c({1, 16, true});
  const auto seen = simulate(c, 50ms, 1000, 2s);
  CHECK(seen.front() == 1);  // the first round trip only opens the first window
  CHECK(seen[1] == 2);
  CHECK(c.limit() == 16);
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] - seen[i - 1] <= 1);  // additive
}

TEST_CASE("concurrency limit: an ingest that refuses past N concurrent requests holds it at or below N within 10 s",
          "[pipeline][concurrency]") {
  for (std::uint32_t capacity : {1u, 3u, 5u, 8u}) {
    INFO("capacity " << capacity);
    concurrency_limit c({1, 32, true});
    const auto seen = simulate(c, 50ms, capacity, 10s);
    // Growing by one per round trip it overshoots the capacity by at most 2 (the decision of a window
    // comes a round trip after its sends), then settles: the last second's average is at or below it.
    // (Once every probe_after round trips it tries one more, which the ingest refuses: the median is
    // what it settled on.)
    std::vector<std::uint32_t> last_second(seen.end() - 1000 / 50, seen.end());
    std::sort(last_second.begin(), last_second.end());
    CHECK(last_second[last_second.size() / 2] <= capacity);
    CHECK(last_second[last_second.size() / 2] >= (capacity + 1) / 2);  // and does not collapse
    CHECK(*std::max_element(seen.begin(), seen.end()) <= capacity + 2);
    CHECK(c.ceiling() <= capacity + 1);
  }
}

TEST_CASE("concurrency limit: round trips far above the lowest seen halve it", "[pipeline][concurrency]") {
  concurrency_limit c({8, 16, true});
  auto now = clock_t_::time_point{} + 1h;
  c.record(concurrency_limit::outcome::ok, now - 50ms, 1, now);
  now += 60ms;
  c.record(concurrency_limit::outcome::ok, now - 50ms, 1, now);
  const auto before = c.limit();
  now += 60ms;
  c.record(concurrency_limit::outcome::ok, now - 400ms, 1, now);  // closes a clean window (+1), then 8x the lowest
  CHECK(c.limit() == before + 1);
  now += 60ms;
  c.record(concurrency_limit::outcome::ok, now - 50ms, 1, now);  // closes the window that saw it
  CHECK(c.limit() == (before + 1) / 2);
  CHECK(c.min_rtt() == 50ms);
}

TEST_CASE("concurrency limit: once the ingest takes more again, probing finds the new capacity",
          "[pipeline][concurrency]") {
  concurrency_limit c({1, 32, true});
  simulate(c, 50ms, 4, 5s);
  CHECK(c.limit() <= 5);
  simulate(c, 50ms, 12, 20s);  // capacity raised: one more every probe_after clean round trips
  CHECK(c.limit() >= 10);
  CHECK(c.limit() <= 14);
}

TEST_CASE("concurrency limit: Retry-After holds every new request back, fixed mode stays at max",
          "[pipeline][concurrency]") {
  concurrency_limit c({4, 16, true});
  auto now = clock_t_::time_point{} + 1h;
  CHECK(c.may_send(0, now));
  c.record(concurrency_limit::outcome::overloaded, now - 10ms, 1, now, 3s);
  CHECK_FALSE(c.may_send(0, now + 2s));
  REQUIRE(c.held_until(now + 2s));
  CHECK(*c.held_until(now + 2s) == now + 3s);
  CHECK(c.may_send(0, now + 3s));
  CHECK_FALSE(c.held_until(now + 3s));

  concurrency_limit fixed({1, 6, false});
  CHECK(fixed.limit() == 6);
  fixed.record(concurrency_limit::outcome::overloaded, now - 10ms, 1, now);
  CHECK(fixed.limit() == 6);
  CHECK(fixed.may_send(5, now));
  CHECK_FALSE(fixed.may_send(6, now));
}

TEST_CASE("ack window: acks only through records delivered whole and in order", "[pipeline][concurrency]") {
  ack_window w;
  for (std::uint64_t seq = 1; seq <= 4; ++seq) w.sent(seq, 10);
  w.delivered(3, 10);  // out of order
  CHECK_FALSE(w.take_ackable());
  w.delivered(1, 10);
  CHECK(w.take_ackable() == 1u);
  CHECK_FALSE(w.take_ackable());
  w.delivered(2, 10);
  CHECK(w.take_ackable() == 3u);  // 2 and the earlier 3
  CHECK(w.open_records() == 1);
  w.delivered(99, 10);  // unknown: ignored
  CHECK_FALSE(w.take_ackable());
}

TEST_CASE("ack window: a record sent in slices is acked once every slice is delivered", "[pipeline][concurrency]") {
  ack_window w;
  w.sent(7, 250);  // slices of 100, 100, 50, in flight at once
  w.sent(7, 250);
  w.sent(7, 250);
  w.sent(8, 20);
  w.delivered(7, 100);
  w.delivered(8, 20);
  w.delivered(7, 50);
  CHECK_FALSE(w.take_ackable());
  w.delivered(7, 100);
  CHECK(w.take_ackable() == 8u);
  CHECK(w.open_records() == 0);
}

TEST_CASE("concurrency limit: an outage (network errors) halves it but keeps the ceiling, so it grows back after",
          "[pipeline][concurrency]") {
  concurrency_limit c({1, 16, true});
  simulate(c, 50ms, 1000, 2s);
  REQUIRE(c.limit() == 16);
  auto now = clock_t_::time_point{} + 2h;
  for (int i = 0; i < 20; ++i) {  // ingest down for a second: every request fails
    c.record(concurrency_limit::outcome::failed, now - 50ms, 1, now);
    now += 60ms;
  }
  CHECK(c.limit() == 1);
  CHECK(c.ceiling() == 16);  // a refusal by capacity (429 at level N) would have set it to N - 1
  c.record(concurrency_limit::outcome::overloaded, now - 50ms, 5, now);
  now += 60ms;
  c.record(concurrency_limit::outcome::ok, now - 50ms, 1, now);
  CHECK(c.ceiling() == 4);
}

TEST_CASE(
    "concurrency limit: 503s to a lone request (an outage) leave the ceiling, so recovery grows by one per round trip",
    "[pipeline][concurrency]") {
  concurrency_limit c({1, 16, true});
  auto now = clock_t_::time_point{} + 1h - 2s;  // simulate() goes on from 1h
  for (int i = 0; i < 25; ++i) {                // ingest answers 503 to everything, one request at a time
    c.record(concurrency_limit::outcome::overloaded, now - 50ms, 1, now);
    now += 60ms;
  }
  CHECK(c.limit() == 1);
  CHECK(c.ceiling() == 16);
  const auto seen = simulate(c, 50ms, 1000, 1s);  // back: 20 round trips
  CHECK(c.limit() >= 15);
  CHECK(seen.back() >= 15);
}

TEST_CASE("concurrency limit: on loopback, round trips of a few ms over a 1 ms minimum are not congestion",
          "[pipeline][concurrency]") {
  concurrency_limit c({1, 16, true});
  auto now = clock_t_::time_point{} + 1h;
  c.record(concurrency_limit::outcome::ok, now - 1ms, 1, now);
  for (int i = 0; i < 40; ++i) {
    now += 2ms;
    c.record(concurrency_limit::outcome::ok, now - 8ms, 1, now);  // 8x the lowest, under 2 x 10 ms
  }
  CHECK(c.limit() == 16);
}
