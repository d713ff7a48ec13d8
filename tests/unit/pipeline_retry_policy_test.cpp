// Unit tests for the delivery retry policy (docs/design/ingest-contract.md#answers) and the Aforo 202 envelope
// parser.
#include <catch2/catch.hpp>

#include "core/pipeline/ingest_ack.hpp"
#include "core/pipeline/retry_policy.hpp"

using namespace aforo::core;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
const std::chrono::steady_clock::time_point now{seconds(500)};

retry_settings no_jitter() {
  retry_settings s;
  s.jitter_percent = 0;
  return s;
}
}  // namespace

TEST_CASE("retry policy: 2xx is done", "[pipeline][retry]") {
  for (int status : {200, 202, 204}) {
    CHECK(decide_delivery(delivery_outcome::http(status), 1, no_jitter(), 0.5, now).action == delivery_action::done);
  }
}

TEST_CASE("retry policy: transient failures retry at 1 s, 2 s, 4 s and then spool", "[pipeline][retry]") {
  const auto s = no_jitter();
  for (const auto& outcome : {delivery_outcome::network(), delivery_outcome::timed_out(), delivery_outcome::http(500),
                              delivery_outcome::http(503), delivery_outcome::http(408), delivery_outcome::http(429)}) {
    const auto d1 = decide_delivery(outcome, 1, s, 0.0, now);
    CHECK(d1.action == delivery_action::retry);
    CHECK(d1.wait == seconds(1));
    CHECK(d1.at == now + seconds(1));
    CHECK(decide_delivery(outcome, 2, s, 0.0, now).wait == seconds(2));
    const auto d3 = decide_delivery(outcome, 3, s, 0.0, now);
    CHECK(d3.action == delivery_action::retry);
    CHECK(d3.wait == seconds(4));
    const auto d4 = decide_delivery(outcome, 4, s, 0.0, now);
    CHECK(d4.action == delivery_action::spool);
    CHECK(d4.wait == seconds(4));
  }
}

TEST_CASE("retry policy: jitter stretches a wait by at most jitter_percent", "[pipeline][retry]") {
  retry_settings s;
  s.jitter_percent = 10;
  CHECK(decide_delivery(delivery_outcome::http(502), 1, s, 0.0, now).wait == milliseconds(1000));
  CHECK(decide_delivery(delivery_outcome::http(502), 1, s, 0.5, now).wait == milliseconds(1050));
  CHECK(decide_delivery(delivery_outcome::http(502), 2, s, 0.999, now).wait == milliseconds(2200));
}

TEST_CASE("retry policy: Retry-After is honoured when longer than the backoff", "[pipeline][retry]") {
  const auto s = no_jitter();
  const auto longer = decide_delivery(delivery_outcome::http(429, seconds(7)), 1, s, 0.0, now);
  CHECK(longer.action == delivery_action::retry);
  CHECK(longer.wait == seconds(7));
  const auto shorter = decide_delivery(delivery_outcome::http(503, seconds(1)), 3, s, 0.0, now);
  CHECK(shorter.wait == seconds(4));
  const auto exhausted = decide_delivery(delivery_outcome::http(429, seconds(30)), 4, s, 0.0, now);
  CHECK(exhausted.action == delivery_action::spool);
  CHECK(exhausted.wait == seconds(30));
}

TEST_CASE("retry policy: 401 and 403 keep the events and re-probe slowly", "[pipeline][retry]") {
  auto s = no_jitter();
  s.unauthorized_probe = seconds(60);
  for (int status : {401, 403}) {
    const auto d = decide_delivery(delivery_outcome::http(status), 1, s, 0.0, now);
    CHECK(d.action == delivery_action::unauthorized);
    CHECK(d.at == now + seconds(60));
  }
}

TEST_CASE("retry policy: 400, 422 and other 4xx are poison, 413 splits the request", "[pipeline][retry]") {
  for (int status : {400, 404, 409, 415, 422}) {
    CHECK(decide_delivery(delivery_outcome::http(status), 1, no_jitter(), 0.0, now).action ==
          delivery_action::dead_letter);
  }
  // At any attempt: a request too large is halved, never dead-lettered whole (docs/design/ingest-contract.md#split).
  for (std::uint32_t attempt : {1u, 4u, 9u}) {
    CHECK(decide_delivery(delivery_outcome::http(413), attempt, no_jitter(), 0.0, now).action ==
          delivery_action::split);
  }
  CHECK_FALSE(is_poison_status(413));
  CHECK(is_poison_status(400));
  CHECK_FALSE(is_poison_status(429));
  CHECK_FALSE(is_poison_status(401));
  CHECK_FALSE(is_poison_status(500));
}

TEST_CASE("retry policy: configured backoff lists and max_retries are followed", "[pipeline][retry]") {
  retry_settings s;
  s.jitter_percent = 0;
  s.max_retries = 5;
  s.backoff = {milliseconds(10), milliseconds(20)};
  CHECK(decide_delivery(delivery_outcome::network(), 1, s, 0.0, now).wait == milliseconds(10));
  CHECK(decide_delivery(delivery_outcome::network(), 5, s, 0.0, now).wait == milliseconds(20));
  CHECK(decide_delivery(delivery_outcome::network(), 5, s, 0.0, now).action == delivery_action::retry);
  CHECK(decide_delivery(delivery_outcome::network(), 6, s, 0.0, now).action == delivery_action::spool);
  s.max_retries = 0;
  CHECK(decide_delivery(delivery_outcome::network(), 1, s, 0.0, now).action == delivery_action::spool);
}

TEST_CASE("ingest ack: the Aforo 202 envelope is read into counts", "[pipeline][retry]") {
  const auto ack =
      parse_ingest_ack(R"({"success":true,"data":{"accepted":97,"duplicates":1,"failed":2,)"
                       R"("errors":[{"index":3,"message":"bad metric"},{"index":9,"message":"x"}]},"meta":{}})");
  REQUIRE(ack.has_value());
  CHECK(ack->accepted == 97);
  CHECK(ack->duplicates == 1);
  CHECK(ack->failed == 2);
  REQUIRE(ack->errors.size() == 2);
  CHECK(ack->errors[1].index == 9);
  CHECK(ack->errors[0].message == "bad metric");
}

TEST_CASE("ingest ack: missing fields read as zero and garbage as nothing", "[pipeline][retry]") {
  const auto partial = parse_ingest_ack(R"({"success":true,"data":{"accepted":5}})");
  REQUIRE(partial.has_value());
  CHECK(partial->accepted == 5);
  CHECK(partial->failed == 0);
  CHECK(partial->errors.empty());
  const auto no_data = parse_ingest_ack(R"({"success":false})");
  REQUIRE(no_data.has_value());
  CHECK_FALSE(no_data->success);
  const auto only_errors = parse_ingest_ack(R"({"data":{"errors":[{"index":"x"},7,{"message":"m"}]}})");
  REQUIRE(only_errors.has_value());
  CHECK(only_errors->failed == 3);
  CHECK(only_errors->errors.size() == 2);
  CHECK_FALSE(parse_ingest_ack("").has_value());
  CHECK_FALSE(parse_ingest_ack("accepted").has_value());
  CHECK_FALSE(parse_ingest_ack("[1,2]").has_value());
}
