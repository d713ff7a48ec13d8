// The last-known-good snapshot file format: round trip, and every kind of damage refused.
#include <catch2/catch.hpp>

#include "core/entitlements/persisted_snapshot.hpp"

using namespace aforo::core::entitlements;

namespace {
persisted_snapshot sample() {
  persisted_snapshot s;
  s.text = "version: \"42\"\ncustomers: {}\n";
  s.fetched_at_ms = 1767225600123;
  s.source = "control_plane";
  return s;
}
}  // namespace

TEST_CASE("persisted snapshot: round trip keeps the text, the fetch time and the source", "[entitlements]") {
  const auto file = encode_persisted_snapshot(sample());
  CHECK(file.rfind("aforo-snapshot 1 1767225600123 control_plane 28 ", 0) == 0);
  std::string error;
  auto back = decode_persisted_snapshot(file, error);
  REQUIRE(back);
  CHECK(error.empty());
  CHECK(back->text == sample().text);
  CHECK(back->fetched_at_ms == 1767225600123);
  CHECK(back->source == "control_plane");
}

TEST_CASE("persisted snapshot: an empty text round-trips too", "[entitlements]") {
  persisted_snapshot s;
  s.source = "file";
  std::string error;
  auto back = decode_persisted_snapshot(encode_persisted_snapshot(s), error);
  REQUIRE(back);
  CHECK(back->text.empty());
}

TEST_CASE("persisted snapshot: truncation, padding, a changed byte and bad headers are refused", "[entitlements]") {
  const auto file = encode_persisted_snapshot(sample());
  std::string error;
  CHECK_FALSE(decode_persisted_snapshot(file.substr(0, file.size() - 1), error));
  CHECK(error.find("truncated") != std::string::npos);
  CHECK_FALSE(decode_persisted_snapshot(file + "x", error));
  std::string flipped = file;
  flipped.back() ^= 1;
  CHECK_FALSE(decode_persisted_snapshot(flipped, error));
  CHECK(error == "checksum mismatch");
  CHECK_FALSE(decode_persisted_snapshot("", error));
  CHECK_FALSE(decode_persisted_snapshot("version: 1\n", error));
  CHECK_FALSE(decode_persisted_snapshot("aforo-snapshot 2 1 file 0 00000000\n", error));
  CHECK(error.find("version 2") != std::string::npos);
  CHECK_FALSE(decode_persisted_snapshot("aforo-snapshot 1 -5 file 0 00000000\n", error));
  CHECK_FALSE(decode_persisted_snapshot("aforo-snapshot 1 1 file 0 0000000g\n", error));
  CHECK_FALSE(decode_persisted_snapshot(std::string(300, 'a') + "\n", error));
}
