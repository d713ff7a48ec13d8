// Fuzzes entitlement snapshots in JSON (the control plane's format): parse_snapshot_json.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/entitlements/snapshot_json.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto r = aforo::core::entitlements::parse_snapshot_json(text);
  FUZZ_CHECK(r.ok() || !r.errors.empty());
  return 0;
}
