// Fuzzes Aforo's 202 envelope for a delivered batch (parse_ingest_ack): bytes from the network.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/pipeline/ingest_ack.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t max_errors = 8;
  if (const auto ack = aforo::core::parse_ingest_ack(body, max_errors)) {
    FUZZ_CHECK(ack->errors.size() <= max_errors);
  }
  return 0;
}
