// CRC-32C: the hardware path (SSE4.2, when the CPU has it) agrees with Boost.CRC on every length and
// alignment, so spool records written by either path read back with the other.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "core/pipeline/spool_record.hpp"

using aforo::core::crc32c;
using aforo::core::crc32c_portable;

TEST_CASE("crc32c: the fast path matches Boost.CRC for lengths 0..300 at every alignment", "[spool]") {
  std::mt19937 rng(42);
  std::string data(320, '\0');
  for (auto& ch : data) ch = static_cast<char>(rng());
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t len = 0; len + offset <= 308; ++len) {
      const std::string_view v(data.data() + offset, len);
      INFO("offset " << offset << " length " << len);
      REQUIRE(crc32c(v) == crc32c_portable(v));
    }
  }
  CHECK(crc32c_portable("123456789") == 0xE3069283u);
}

TEST_CASE("crc32c: a flipped bit in a large buffer changes the checksum", "[spool]") {
  std::string data(1 << 20, 'a');
  const auto before = crc32c(data);
  data[123457] ^= 0x04;
  CHECK(crc32c(data) != before);
  CHECK(crc32c(data) == crc32c_portable(data));
}
