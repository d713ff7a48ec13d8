// The lz4 fallback policy: which answers refuse the encoding, and when lz4 is tried again.
#include <catch2/catch.hpp>

#include "core/pipeline/encoding_fallback.hpp"

using aforo::core::encoding_fallback;
using aforo::core::is_encoding_refusal;
using namespace std::chrono_literals;
using change = encoding_fallback::change;

TEST_CASE("encoding fallback: 415 and a 400 naming the encoding refuse lz4, other answers do not", "[pipeline]") {
  CHECK(is_encoding_refusal(415, ""));
  CHECK(is_encoding_refusal(415, R"({"success":false,"error":{"message":"Content-Type must be application/json"}})"));
  CHECK(is_encoding_refusal(400, R"({"error":{"message":"unsupported Content-Encoding: lz4"}})"));
  CHECK(is_encoding_refusal(400, "Unsupported CONTENT-ENCODING"));
  CHECK(is_encoding_refusal(400, "cannot decode LZ4 body"));
  CHECK_FALSE(is_encoding_refusal(400, R"({"error":{"message":"events must hold 1 to 1000 items"}})"));
  CHECK_FALSE(is_encoding_refusal(400, ""));
  CHECK_FALSE(is_encoding_refusal(422, "lz4"));
  CHECK_FALSE(is_encoding_refusal(202, "lz4"));
  CHECK_FALSE(is_encoding_refusal(500, "unsupported encoding"));
  CHECK_FALSE(is_encoding_refusal(413, "encoding"));
}

TEST_CASE("encoding fallback: a refusal falls back once, then one trial after the interval", "[pipeline]") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  encoding_fallback f(10min);
  CHECK(f.in_use());
  CHECK(f.use_lz4(t0));
  CHECK(f.accepted() == change::none);

  // Several lz4 batches were in flight: the first refusal falls back, the others change nothing.
  CHECK(f.refused(t0) == change::fell_back);
  CHECK_FALSE(f.in_use());
  CHECK(f.retry_at() == t0 + 10min);
  CHECK(f.refused(t0 + 1ms) == change::none);
  CHECK(f.refused(t0 + 2ms) == change::none);
  CHECK_FALSE(f.use_lz4(t0 + 1s));
  CHECK_FALSE(f.use_lz4(t0 + 10min - 1ms));

  SECTION("the trial is refused again: another interval, not a new fallback") {
    CHECK(f.use_lz4(t0 + 10min));              // the trial
    CHECK_FALSE(f.use_lz4(t0 + 10min + 1ms));  // the others wait for its answer
    CHECK(f.refused(t0 + 10min + 5ms) == change::still_refused);
    CHECK(f.retry_at() == t0 + 20min + 5ms);
    CHECK_FALSE(f.use_lz4(t0 + 15min));
    CHECK(f.use_lz4(t0 + 21min));
    CHECK(f.refused(t0 + 21min) == change::still_refused);
    CHECK_FALSE(f.in_use());
  }
  SECTION("the trial is accepted: lz4 is back for every request") {
    CHECK(f.use_lz4(t0 + 11min));
    CHECK(f.accepted() == change::restored);
    CHECK(f.in_use());
    CHECK(f.use_lz4(t0 + 11min));
    CHECK(f.use_lz4(t0 + 11min));
    CHECK(f.accepted() == change::none);
    // Refused again later: a new fallback (lz4 had worked in between).
    CHECK(f.refused(t0 + 30min) == change::fell_back);
  }
  SECTION("the trial got no answer: the next request is the trial again") {
    CHECK(f.use_lz4(t0 + 10min));
    f.inconclusive(t0 + 10min + 3s);
    CHECK(f.use_lz4(t0 + 10min + 4s));
    CHECK(f.accepted() == change::restored);
  }
  SECTION("answers to lz4 requests sent before the fallback restore nothing") {
    CHECK(f.accepted() == change::none);
    CHECK_FALSE(f.in_use());
  }
}

TEST_CASE("encoding fallback: the interval follows the setting", "[pipeline]") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  encoding_fallback f(1s);
  CHECK(f.refused(t0) == change::fell_back);
  f.set_retry_interval(5s);  // applies from the next refusal
  CHECK(f.use_lz4(t0 + 1s));
  CHECK(f.refused(t0 + 1s) == change::still_refused);
  CHECK(f.retry_at() == t0 + 6s);
  CHECK(f.retry_interval() == 5s);
}
