// Unit tests for the pure parts of `aforo-sidecar replay-dead-letter`: a dead-letter line into its
// events, the events into requests of at most 1000, and the sidecar's answer.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/pipeline/batch_split.hpp"
#include "core/pipeline/dead_letter_replay.hpp"
#include "io/dead_letter.hpp"

using namespace aforo::core;
using kind = dead_letter_line::kind;

namespace {

std::string event(const std::string& key) {
  return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-12-06T10:00:00Z",)"
         R"("idempotencyKey":")" +
         key + R"(","metadata":{"gateway":"kong","nested":{"a":[1,{"b":"}]"}]}}})";
}

std::string batch(const std::string& prefix, int n) {
  std::string s = R"({"events":[)";
  for (int i = 0; i < n; ++i) s += (i == 0 ? "" : ",") + event(prefix + "-" + std::to_string(i));
  return s + "]}";
}

/// A line as the sidecar writes it (without the trailing '\n').
std::string line(const std::string& body, std::uint32_t events, int status, const std::string& reason,
                 const std::string& response = "refused") {
  auto s = aforo::io::dead_letter_file::format(
      {aforo::io::dead_letter_entry{body, events, status, reason, "2026-12-06T10:00:00Z", response}});
  REQUIRE(!s.empty());
  REQUIRE(s.back() == '\n');
  s.pop_back();
  return s;
}

dead_letter_line parsed_line(int n, const std::string& prefix = "k") {
  auto d = parse_dead_letter_line(line(batch(prefix, n), static_cast<std::uint32_t>(n), 400, "rejected_batch"));
  REQUIRE(d.what == kind::events);
  REQUIRE(d.events.size() == static_cast<std::size_t>(n));
  return d;
}

}  // namespace

TEST_CASE("dead-letter replay: a line of every replayable reason gives its events byte for byte with their keys",
          "[pipeline][replay]") {
  const std::string reason = GENERATE("rejected_batch", "too_large", "event_failed", "success_false");
  const int status = reason == "too_large" ? 413 : reason == "rejected_batch" ? 400 : 202;
  INFO("reason " << reason);
  const auto d = parse_dead_letter_line(line(batch("r", 3), 3, status, reason, R"({"error":"metric \"x\" unknown"})"));
  REQUIRE(d.what == kind::events);
  CHECK(d.reason == reason);
  CHECK(d.status == status);
  REQUIRE(d.events.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(d.events[static_cast<std::size_t>(i)] == event("r-" + std::to_string(i)));
    CHECK(d.keys[static_cast<std::size_t>(i)] == "r-" + std::to_string(i));
  }
  CHECK(d.problem.empty());
}

TEST_CASE("dead-letter replay: member order, whitespace and unknown members of a line are tolerated",
          "[pipeline][replay]") {
  const auto d = parse_dead_letter_line(
      R"( { "batch" : { "other":{"events":[1]}, "events" : [ {"idempotencyKey":"a"} , {"x":{"idempotencyKey":"no"}} ] },)"
      R"( "reason":"event_failed", "extra":[{"batch":1}], "status":202 } )");
  REQUIRE(d.what == kind::events);
  CHECK(d.reason == "event_failed");
  CHECK(d.status == 202);
  REQUIRE(d.events.size() == 2);
  CHECK(d.events[0] == R"({"idempotencyKey":"a"})");
  CHECK(d.events[1] == R"({"x":{"idempotencyKey":"no"}})");
  CHECK(d.keys[0] == "a");
  CHECK(d.keys[1].empty());  // only the event's own top-level key counts
}

TEST_CASE("dead-letter replay: a batch written as a string is replayed when it is a batch body", "[pipeline][replay]") {
  // A body with a newline cannot be embedded as JSON on one line: the writer stores it as a string.
  const std::string body = "{\"events\":[\n" + event("s-0") + ",\n" + event("s-1") + "\n]}";
  const auto text = line(body, 2, 400, "rejected_batch");
  REQUIRE(text.find(R"("batch":"{)") != std::string::npos);
  const auto d = parse_dead_letter_line(text);
  REQUIRE(d.what == kind::events);
  REQUIRE(d.events.size() == 2);
  CHECK(d.events[0] == event("s-0"));
  CHECK(d.events[1] == event("s-1"));
  CHECK(d.keys[1] == "s-1");

  SECTION("a string that is not a batch body is malformed") {
    const auto bad = parse_dead_letter_line(line("not json at all", 1, 400, "rejected_batch"));
    CHECK(bad.what == kind::malformed);
    CHECK(bad.problem.find("string") != std::string::npos);
    CHECK(bad.events.empty());
  }
}

TEST_CASE("dead-letter replay: an undecodable line is never replayed", "[pipeline][replay]") {
  // A raw spool payload (LZ4 bytes, here as text) is written as a string with reason undecodable.
  auto d = parse_dead_letter_line(
      line(std::string("\x04\x22\x4d\x18 raw", 8), 12, 0, "undecodable", "spool record does not decompress"));
  CHECK(d.what == kind::undecodable);
  CHECK(d.events.empty());
  CHECK(d.problem.find("undecodable") != std::string::npos);
  // Even when its payload happens to look like a batch.
  d = parse_dead_letter_line(line(batch("u", 2) + "\n", 2, 0, "undecodable"));
  CHECK(d.what == kind::undecodable);
  CHECK(d.events.empty());
}

TEST_CASE("dead-letter replay: malformed lines are reported with a reason, blank lines are not", "[pipeline][replay]") {
  const std::vector<std::string> bad = {
      "not json",
      "[1,2]",
      R"("just a string")",
      "42",
      R"({"time":"2026-12-06T10:00:00Z","reason":"rejected_batch","status":400})",  // no batch
      R"({"reason":"rejected_batch","batch":{"evts":[]}})",                         // no events array
      R"({"reason":"rejected_batch","batch":{"events":[{"a":1},2]}})",              // an event not an object
      R"({"reason":"rejected_batch","batch":{"events":[{"a":1},[]]}})",
      R"({"reason":"rejected_batch","batch":{"events":[]},"batch":{"events":[]}})",  // two batches
      R"({"reason":"rejected_batch","batch":{"events":[],"events":[]}})",
      R"({"reason":"rejected_batch","batch":{"events":[{"a":1}]}} trailing)",
      R"({"reason":"rejected_batch","batch":{"events":[{"a":1})",       // cut short
      R"({"reason":"rejected_batch","batch":[{"events":[{"a":1}]}]})",  // batch not an object
  };
  for (const auto& text : bad) {
    INFO(text);
    const auto d = parse_dead_letter_line(text);
    CHECK(d.what == kind::malformed);
    CHECK(!d.problem.empty());
    CHECK(d.events.empty());
  }
  CHECK(parse_dead_letter_line("").what == kind::blank);
  CHECK(parse_dead_letter_line("  \t\r").what == kind::blank);
  // An empty events array is a valid line with nothing to replay.
  const auto empty = parse_dead_letter_line(R"({"reason":"rejected_batch","batch":{"events":[]}})");
  CHECK(empty.what == kind::events);
  CHECK(empty.events.empty());
}

TEST_CASE("dead-letter replay: a line of 2,500 events is split into requests of 1000, 1000 and 500",
          "[pipeline][replay]") {
  const auto d = parsed_line(2500);
  replay_batcher b;  // 1000 events per request
  const auto full = b.add(7, d);
  REQUIRE(full.size() == 2);
  const auto last = b.finish();
  REQUIRE(last);
  CHECK(!b.finish());
  const std::vector<const replay_request*> reqs = {&full[0], &full[1], &*last};
  const std::size_t sizes[] = {1000, 1000, 500};
  std::size_t at = 0;
  for (std::size_t r = 0; r < 3; ++r) {
    INFO("request " << r);
    const auto& req = *reqs[r];
    CHECK(req.events() == sizes[r]);
    CHECK(req.first_line == 7);
    const auto events = split_batch_body(req.body);
    REQUIRE(events);
    REQUIRE(events->size() == sizes[r]);
    for (std::size_t i = 0; i < sizes[r]; ++i, ++at) {
      CHECK((*events)[i] == d.events[at]);
      CHECK(req.origins[i].line == 7);
      CHECK(req.origins[i].index == at);
      CHECK(req.origins[i].key == "k-" + std::to_string(at));
    }
  }
  CHECK(at == 2500);
}

TEST_CASE("dead-letter replay: small lines are combined into one request, in order", "[pipeline][replay]") {
  replay_batcher b;
  CHECK(b.add(1, parsed_line(1, "a")).empty());
  CHECK(b.add(2, parse_dead_letter_line("not json")).empty());  // skipped lines add nothing
  CHECK(b.add(3, parsed_line(2, "b")).empty());
  CHECK(b.add(5, parsed_line(3, "c")).empty());
  CHECK(b.pending_events() == 6);
  const auto r = b.finish();
  REQUIRE(r);
  CHECK(r->first_line == 1);
  CHECK(r->body == R"({"events":[)" + event("a-0") + "," + event("b-0") + "," + event("b-1") + "," + event("c-0") +
                       "," + event("c-1") + "," + event("c-2") + "]}");
  REQUIRE(r->events() == 6);
  CHECK(r->origins[0].line == 1);
  CHECK(r->origins[2].line == 3);
  CHECK(r->origins[2].index == 1);
  CHECK(r->origins[5].line == 5);
  CHECK(r->origins[5].key == "c-2");

  SECTION("lines across a request boundary: the next request starts at the line it continues") {
    replay_batcher small(4);
    CHECK(small.add(1, parsed_line(3, "a")).empty());
    const auto out = small.add(2, parsed_line(3, "b"));
    REQUIRE(out.size() == 1);
    CHECK(out[0].events() == 4);
    CHECK(out[0].first_line == 1);
    const auto rest = small.finish();
    REQUIRE(rest);
    CHECK(rest->events() == 2);
    CHECK(rest->first_line == 2);
    CHECK(rest->origins[0].index == 1);
  }
}

TEST_CASE("dead-letter replay: requests stay within the byte bound, a single larger event goes alone",
          "[pipeline][replay]") {
  const auto d = parsed_line(10);
  const std::size_t one = d.events[0].size();
  replay_batcher b(1000, 13 + 3 * (one + 1));  // room for three events
  auto reqs = b.add(1, d);
  if (auto r = b.finish()) reqs.push_back(std::move(*r));
  REQUIRE(reqs.size() == 4);
  std::size_t total = 0;
  for (const auto& r : reqs) {
    CHECK(r.body.size() <= 13 + 3 * (one + 1));
    total += r.events();
  }
  CHECK(total == 10);
  CHECK(reqs[3].events() == 1);

  replay_batcher tiny(1000, 20);
  auto alone = tiny.add(1, d);
  CHECK(alone.size() == 9);
  CHECK(alone[0].events() == 1);
}

TEST_CASE("dead-letter replay: the sidecar's 202 answer and Retry-After are read", "[pipeline][replay]") {
  const auto ack = parse_replay_ack(
      R"({"accepted":8,"failed":2,"errors":[{"index":1,"message":"quantity: must be a number"},{"index":3,"message":"x"}]})");
  REQUIRE(ack);
  CHECK(ack->accepted == 8);
  CHECK(ack->failed == 2);
  REQUIRE(ack->errors.size() == 2);
  CHECK(ack->errors[0].index == 1);
  CHECK(ack->errors[0].message == "quantity: must be a number");
  CHECK(ack->errors[1].index == 3);
  CHECK(!parse_replay_ack("not json"));
  CHECK(!parse_replay_ack("[]"));
  CHECK(parse_replay_ack("{}")->accepted == 0);

  CHECK(retry_after_seconds("") == 1);
  CHECK(retry_after_seconds("3") == 3);
  CHECK(retry_after_seconds(" 2 ") == 2);
  CHECK(retry_after_seconds("0") == 0);
  CHECK(retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT") == 1);
  CHECK(retry_after_seconds("-5") == 1);
  CHECK(retry_after_seconds("3600") == 60);
}
