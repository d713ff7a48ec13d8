// Loading sidecar.yaml: every problem is collected with its key path (so --check-config can print them
// all at once), unknown keys are rejected, and values with units are parsed strictly.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/schema.hpp"

namespace aforo::config {

struct load_result {
  sidecar_config config;            ///< defaults overridden by every key that parsed
  std::vector<std::string> errors;  ///< "key.path: what is wrong"; empty when the file is valid
  [[nodiscard]] bool ok() const { return errors.empty(); }
};

/// Parses YAML text. An empty document is a valid config (every key has a default).
load_result load_config_text(std::string_view yaml);
/// Reads and parses a file; an unreadable file is one error naming the path.
load_result load_config_file(const std::string& path);

/// Cross-key checks (ranges, URLs, listen addresses); appends to errors.
void validate(const sidecar_config& c, std::vector<std::string>& errors);

/// Valid but discouraged settings (e.g. a password inline in cache.redis): "key: why", for
/// --check-config and a WARN at startup.
std::vector<std::string> warnings(const sidecar_config& c);

/// Every key with its value formatted as it would be written in YAML (units included).
std::map<std::string, std::string> flatten(const sidecar_config& c);

struct key_change {
  std::string key;
  reload when;
};
/// `next` with every restart-only key set back to its value in `running` (what SIGHUP applies).
sidecar_config merge_live(const sidecar_config& running, const sidecar_config& next);

/// The keys whose values differ between two configs, with whether each can be applied live.
std::vector<key_change> diff(const sidecar_config& before, const sidecar_config& after);

}  // namespace aforo::config
