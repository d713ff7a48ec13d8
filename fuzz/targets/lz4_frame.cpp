// Fuzzes `Content-Encoding: lz4` bodies: lz4_decompress_frame with a small output cap (bomb guard),
// and a compress/decompress round trip of whatever decoded.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "io/lz4_frame.hpp"

namespace io = aforo::io;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t max_out = 1u << 20;
  std::string out = "stale";
  const auto r = io::lz4_decompress_frame(in, out, max_out);
  if (!r.ok) {
    FUZZ_CHECK(!r.error.empty());
    return 0;
  }
  FUZZ_CHECK(out.size() <= max_out);
  std::string packed;
  FUZZ_CHECK(io::lz4_compress_frame(out, packed).ok);
  std::string back;
  FUZZ_CHECK(io::lz4_decompress_frame(packed, back, max_out).ok);
  FUZZ_CHECK(back == out);
  return 0;
}
