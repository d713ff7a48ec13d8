// One batch out to ingest (core::delivery_flight): parts after 413, attempts, retries, holds, on
// simulated time.
#include <catch2/catch.hpp>

#include "core/pipeline/delivery_flight.hpp"

using aforo::core::delivery_flight;
using namespace std::chrono_literals;

namespace {
const delivery_flight::time_point t0{std::chrono::seconds(1000)};
}

TEST_CASE("delivery flight: a batch sent, retried with backoff, then delivered", "[pipeline][flight]") {
  delivery_flight f(100);
  CHECK(f.due(t0));
  CHECK(f.whole());
  CHECK(f.sending_events() == 100);
  CHECK_FALSE(f.sent(t0, 3));  // the first send is no retry
  CHECK(f.in_flight());
  CHECK_FALSE(f.due(t0));
  CHECK(f.attempt() == 1);
  CHECK(f.level() == 3);
  CHECK(f.sent_at() == t0);
  f.answered();
  f.retry_at(t0 + 1s);  // a 503: the same batch after its backoff
  CHECK_FALSE(f.due(t0 + 999ms));
  CHECK(f.due(t0 + 1s));
  CHECK(f.sent(t0 + 1s, 1));  // a retry
  CHECK(f.attempt() == 2);
  f.answered();
  CHECK(f.part_done());
  CHECK(f.finished());
  CHECK_FALSE(f.due(t0 + 2s));
}

TEST_CASE("delivery flight: 413 splits into halves sent in order, each with its own attempts", "[pipeline][flight]") {
  delivery_flight f(4);
  f.sent(t0, 1);
  f.answered();
  f.split({"ab", 2}, {"cd", 2});
  CHECK_FALSE(f.whole());
  CHECK(f.front().body == "ab");
  CHECK(f.sending_events() == 2);
  CHECK(f.attempt() == 0);
  CHECK_FALSE(f.sent(t0, 1));  // a part's first send is no retry
  f.answered();
  f.split({"a", 1}, {"b", 1});  // the half is still too large
  CHECK(f.front().body == "a");
  f.sent(t0, 1);
  f.answered();
  CHECK_FALSE(f.part_done());
  CHECK(f.front().body == "b");
  f.sent(t0, 1);
  f.answered();
  CHECK_FALSE(f.part_done());
  CHECK(f.front().body == "cd");
  CHECK(f.due(t0));  // the next part goes out at once
  f.sent(t0, 1);
  f.answered();
  CHECK(f.part_done());
  CHECK(f.finished());
}

TEST_CASE("delivery flight: a hold sends the whole batch again later with a fresh attempt count",
          "[pipeline][flight]") {
  delivery_flight f(4);
  f.sent(t0, 1);
  f.answered();
  f.split({"ab", 2}, {"cd", 2});
  f.sent(t0, 1);
  f.answered();
  CHECK_FALSE(f.part_done());  // "ab" delivered, "cd" left
  f.sent(t0, 1);
  f.answered();
  f.hold(t0 + 4s);   // e.g. the dead-letter file could not be written: the batch waits
  CHECK(f.whole());  // "ab" goes again with the rest: ingest deduplicates it by key
  CHECK(f.sending_events() == 4);
  CHECK(f.attempt() == 0);
  CHECK_FALSE(f.due(t0 + 3s));
  CHECK(f.due(t0 + 4s));
  CHECK_FALSE(f.finished());
  f.finish();  // or handed to the spool
  CHECK_FALSE(f.due(t0 + 5s));
}

TEST_CASE("delivery flight: an encoding refusal sends the same part at once without counting an attempt",
          "[pipeline][flight]") {
  delivery_flight f(10);
  f.sent(t0, 1);
  f.answered();
  f.retry_at(t0 + 2s);
  f.sent(t0 + 2s, 1);
  CHECK(f.attempt() == 2);
  f.answered();
  f.resend_now(t0 + 2s);
  CHECK(f.attempt() == 1);
  CHECK(f.due(t0 + 2s));
}
