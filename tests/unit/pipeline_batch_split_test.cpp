// Unit tests for splitting a batch body into its events' texts, and for which events an ingest
// envelope refuses.
#include <catch2/catch.hpp>

#include <string>

#include "core/pipeline/batch_split.hpp"
#include "core/pipeline/ingest_ack.hpp"

using namespace aforo::core;

TEST_CASE("batch split: the events' texts come back byte for byte, nested values included", "[pipeline][split]") {
  const std::string e0 = R"({"idempotencyKey":"a","metadata":{"x":[1,{"y":"}]"}]}})";
  const std::string e1 = R"({"idempotencyKey":"b \"quoted\" {["})";
  const std::string e2 = R"({})";
  const std::string body = R"({"events":[)" + e0 + "," + e1 + "," + e2 + "]}";
  const auto events = split_batch_body(body);
  REQUIRE(events);
  REQUIRE(events->size() == 3);
  CHECK((*events)[0] == e0);
  CHECK((*events)[1] == e1);
  CHECK((*events)[2] == e2);
  CHECK(join_events(*events, 1, 3) == R"({"events":[)" + e1 + "," + e2 + "]}");
  CHECK(join_events(*events, 0, 3) == body);
}

TEST_CASE("batch split: whitespace, other members and the member order are tolerated", "[pipeline][split]") {
  const auto events = split_batch_body(R"( { "meta" : {"events":[1]}, "events" : [ {"a":1} , {"b":[2]} ] } )");
  REQUIRE(events);
  REQUIRE(events->size() == 2);
  CHECK((*events)[0] == R"({"a":1})");
  CHECK((*events)[1] == R"({"b":[2]})");
  CHECK(split_batch_body(R"({"events":[]})")->empty());
}

TEST_CASE("batch split: bodies of another shape give nothing", "[pipeline][split]") {
  CHECK_FALSE(split_batch_body(""));
  CHECK_FALSE(split_batch_body("not json"));
  CHECK_FALSE(split_batch_body(R"({"events":[{"a":1})"));      // cut short
  CHECK_FALSE(split_batch_body(R"({"events":{"a":1}})"));      // not an array
  CHECK_FALSE(split_batch_body(R"({"events":[1,2]})"));        // not objects
  CHECK_FALSE(split_batch_body(R"({"events":[[{"a":1}]]})"));  // arrays as events
  CHECK_FALSE(split_batch_body(R"({"other":[]})"));            // no events
  CHECK_FALSE(split_batch_body(R"([{"events":[]}])"));         // not an object
  CHECK_FALSE(split_batch_body(R"({"events":[],"events":[]})"));
  CHECK_FALSE(split_batch_body(std::string(100000, '[')));  // deep: no recursion, an error
}

TEST_CASE("refused events: listed errors in range, once each, in index order", "[pipeline][ack]") {
  ingest_ack ack;
  ack.failed = 3;
  ack.errors = {{4, "bad metric"}, {1, "too old"}, {4, "again"}, {99, "out of range"}};
  const auto r = refused_in(ack, 5);
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0].index == 1);
  CHECK(r.events[0].message == "too old");
  CHECK(r.events[1].index == 4);
  CHECK(r.events[1].message == "bad metric");
  CHECK(r.unidentified == 1);  // failed counts 3; two could be placed
}

TEST_CASE("refused events: success:false refuses every event it does not list", "[pipeline][ack]") {
  ingest_ack ack;
  ack.success = false;
  ack.errors = {{2, "bad"}};
  const auto r = refused_in(ack, 4);
  REQUIRE(r.events.size() == 4);
  CHECK(r.events[2].listed);
  CHECK(r.events[2].message == "bad");
  CHECK_FALSE(r.events[0].listed);
  CHECK(r.unidentified == 0);
  ingest_ack ok;
  ok.accepted = 4;
  CHECK(refused_in(ok, 4).events.empty());
}
