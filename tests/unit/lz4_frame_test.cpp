// Unit tests for the LZ4 frame codec.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "io/lz4_frame.hpp"

using namespace aforo::io;

namespace {
std::string sample_body(int events) {
  std::string s = R"({"events":[)";
  for (int i = 0; i < events; ++i) {
    if (i) s += ",";
    s += R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-11-26T10:00:00Z",)"
         R"("idempotencyKey":"kong:)" +
         std::to_string(i) + "\"}";
  }
  return s + "]}";
}
}  // namespace

TEST_CASE("lz4 frame: bodies round-trip and repetitive JSON shrinks", "[lz4]") {
  for (int n : {0, 1, 100, 5000}) {
    const std::string in = n == 0 ? std::string() : sample_body(n);
    std::string packed, unpacked;
    REQUIRE(lz4_compress_frame(in, packed).ok);
    CHECK(packed.substr(0, 4) == std::string("\x04\x22\x4D\x18", 4));  // LZ4 frame magic
    const auto r = lz4_decompress_frame(packed, unpacked);
    INFO(r.error);
    REQUIRE(r.ok);
    CHECK(unpacked == in);
    if (n >= 100) CHECK(packed.size() * 4 < in.size());
  }
}

TEST_CASE("lz4 frame: random bytes round-trip", "[lz4]") {
  std::mt19937 rng(7);
  std::string in(300000, '\0');
  for (auto& c : in) c = static_cast<char>(rng());
  std::string packed, unpacked;
  REQUIRE(lz4_compress_frame(in, packed).ok);
  REQUIRE(lz4_decompress_frame(packed, unpacked).ok);
  CHECK(unpacked == in);
}

TEST_CASE("lz4 frame: garbage, truncation and corruption are errors, not crashes", "[lz4]") {
  std::string out;
  CHECK_FALSE(lz4_decompress_frame("", out).ok);
  CHECK_FALSE(lz4_decompress_frame("not an lz4 frame at all", out).ok);
  const std::string in = sample_body(200);
  std::string packed;
  REQUIRE(lz4_compress_frame(in, packed).ok);
  for (std::size_t cut : {std::size_t{3}, std::size_t{10}, packed.size() / 2, packed.size() - 1}) {
    const auto r = lz4_decompress_frame(std::string_view(packed).substr(0, cut), out);
    INFO("cut at " << cut);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.error.empty());
  }
  std::string flipped = packed;
  flipped[flipped.size() / 2] ^= 0x5A;
  CHECK_FALSE(lz4_decompress_frame(flipped, out).ok);
  CHECK_FALSE(lz4_decompress_frame(packed + "trailing", out).ok);
}

TEST_CASE("lz4 frame: output over the limit is refused", "[lz4]") {
  const std::string in(1 << 20, 'a');
  std::string packed, out;
  REQUIRE(lz4_compress_frame(in, packed).ok);
  const auto r = lz4_decompress_frame(packed, out, 1000);
  CHECK_FALSE(r.ok);
  CHECK(lz4_decompress_frame(packed, out, 1 << 20).ok);
  CHECK(out.size() == in.size());
}
