// Fuzzes entitlement snapshot files (`file:` sources, YAML or JSON by first character): parse_snapshot_text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/snapshot_yaml.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto r = aforo::config::parse_snapshot_text(text);
  FUZZ_CHECK(r.ok() || !r.errors.empty());
  return 0;
}
