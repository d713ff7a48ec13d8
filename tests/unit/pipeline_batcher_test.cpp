// Unit tests for the batcher (memory buffer, batch cutting by count and deadline) and batch bodies.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>

#include "core/pipeline/batcher.hpp"

using namespace aforo::core;
using std::chrono::milliseconds;

namespace {
const pipeline_clock::time_point t0{std::chrono::seconds(1000)};
std::string ev(int i) { return R"({"idempotencyKey":"k)" + std::to_string(i) + "\"}"; }
}  // namespace

TEST_CASE("batcher: flushes when max_events is reached", "[pipeline][batcher]") {
  batcher b({3, milliseconds(5000), 100});
  REQUIRE(b.push(ev(1), t0));
  REQUIRE(b.push(ev(2), t0));
  CHECK_FALSE(b.take_ready(t0).has_value());
  REQUIRE(b.push(ev(3), t0));
  REQUIRE(b.push(ev(4), t0));
  const auto batch = b.take_ready(t0);
  REQUIRE(batch.has_value());
  REQUIRE(batch->events.size() == 3);
  CHECK(batch->events[0] == ev(1));
  CHECK(batch->events[2] == ev(3));
  CHECK(b.size() == 1);
  CHECK_FALSE(b.take_ready(t0).has_value());
}

TEST_CASE("batcher: flushes a partial batch when the oldest event's deadline passes", "[pipeline][batcher]") {
  batcher b({100, milliseconds(5000), 1000});
  CHECK_FALSE(b.next_deadline().has_value());
  REQUIRE(b.push(ev(1), t0));
  REQUIRE(b.push(ev(2), t0 + milliseconds(3000)));
  REQUIRE(b.next_deadline().has_value());
  CHECK(*b.next_deadline() == t0 + milliseconds(5000));
  CHECK_FALSE(b.take_ready(t0 + milliseconds(4999)).has_value());
  const auto batch = b.take_ready(t0 + milliseconds(5000));
  REQUIRE(batch.has_value());
  CHECK(batch->events.size() == 2);
  CHECK(b.empty());
  CHECK_FALSE(b.next_deadline().has_value());
}

TEST_CASE("batcher: after a count flush the rest waits for its own oldest event", "[pipeline][batcher]") {
  batcher b({2, milliseconds(1000), 100});
  REQUIRE(b.push(ev(1), t0));
  REQUIRE(b.push(ev(2), t0));
  REQUIRE(b.push(ev(3), t0 + milliseconds(500)));
  CHECK(*b.next_deadline() <= t0);  // a full batch is due at once
  REQUIRE(b.take_ready(t0).has_value());
  CHECK(*b.next_deadline() == t0 + milliseconds(1500));
}

TEST_CASE("batcher: refuses events past the buffer bound and keeps the refused text", "[pipeline][batcher]") {
  batcher b({10, milliseconds(1000), 2});
  REQUIRE(b.push(ev(1), t0));
  CHECK(b.room() == 1);
  REQUIRE(b.push(ev(2), t0));
  CHECK(b.full());
  std::string third = ev(3);
  CHECK_FALSE(b.push(std::move(third), t0));
  CHECK(third == ev(3));  // NOLINT(bugprone-use-after-move): push leaves it untouched on refusal
  CHECK(b.size() == 2);
}

TEST_CASE("batcher: batch size is clamped to 1000 and take_any drains in FIFO order", "[pipeline][batcher]") {
  batcher b({5000, milliseconds(1000), 3000});
  CHECK(b.max_batch_events() == 1000);
  for (int i = 0; i < 2500; ++i) REQUIRE(b.push(ev(i), t0));
  std::vector<std::size_t> sizes;
  int next = 0;
  while (auto batch = b.take_any()) {
    sizes.push_back(batch->events.size());
    for (const auto& e : batch->events) CHECK(e == ev(next++));
  }
  CHECK(sizes == std::vector<std::size_t>{1000, 1000, 500});
}

TEST_CASE("batcher: the batch body is a valid events array of the stored texts", "[pipeline][batcher]") {
  batcher b({3, milliseconds(1000), 10});
  for (int i = 0; i < 3; ++i) REQUIRE(b.push(ev(i), t0));
  const auto batch = b.take_ready(t0);
  REQUIRE(batch.has_value());
  const std::string body = batch->body();
  CHECK(body == R"({"events":[{"idempotencyKey":"k0"},{"idempotencyKey":"k1"},{"idempotencyKey":"k2"}]})");
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE(d.IsObject());
  CHECK(d["events"].Size() == 3);
}

TEST_CASE("batch body builder: splices existing bodies into one batch", "[pipeline][batcher]") {
  batch_body_builder a;
  a.add_event(ev(1));
  a.add_event(ev(2));
  const std::string first = a.finish();
  CHECK(a.events() == 0);
  batch_body_builder merged;
  REQUIRE(merged.add_body(first, 2));
  REQUIRE(merged.add_body(R"({"events":[)" + ev(3) + "]}", 1));
  CHECK_FALSE(merged.add_body("not a body", 1));
  CHECK(merged.events() == 3);
  CHECK(merged.finish() == R"({"events":[)" + ev(1) + "," + ev(2) + "," + ev(3) + "]}");
  batch_body_builder empty;
  CHECK(empty.finish() == R"({"events":[]})");
}
