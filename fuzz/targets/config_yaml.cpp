// Fuzzes sidecar.yaml (load_config_text), then the config tools that run on a loaded config
// (flatten for --print-config, diff and merge_live for SIGHUP).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/loader.hpp"
#include "fuzz_check.hpp"

namespace config = aforo::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const auto r = config::load_config_text(yaml);
  for (const auto& e : r.errors) FUZZ_CHECK(!e.empty());
  if (!r.ok()) return 0;
  const auto flat = config::flatten(r.config);
  FUZZ_CHECK(!flat.empty());
  const config::sidecar_config defaults;
  (void)config::diff(defaults, r.config);
  const auto merged = config::merge_live(defaults, r.config);
  FUZZ_CHECK(config::diff(merged, merged).empty());
  return 0;
}
