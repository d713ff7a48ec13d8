// `aforo-sidecar migrate-kong-config FILE`: from a Kong configuration that runs Aforo's own plugin
// (v2.2, also named aforo-metering) to this project's sidecar.yaml, plugin block and environment.
#pragma once

#include <string>
#include <vector>

namespace aforo::config {

struct migration_options {
  std::string source_name;  ///< shown in the output's comments
  std::string sidecar_url = "http://127.0.0.1:8750";
  /// Print the API key's value in the environment output (the one place it may appear); off: a
  /// placeholder naming the key's last 4 characters.
  bool reveal_secrets = false;
};

struct migration_result {
  std::string sidecar_yaml;         ///< loads with load_config_text (keys this project knows only)
  std::string plugin_yaml;          ///< a `plugins:` list with the new aforo-metering block(s)
  std::string env;                  ///< KEY=value lines (comments on their own lines), for an EnvironmentFile
  std::vector<std::string> notes;   ///< fields not carried over, conflicts, things to check by hand
  std::vector<std::string> errors;  ///< unreadable input, no aforo-metering plugin found
  [[nodiscard]] bool ok() const { return errors.empty(); }
};

/// Converts a declarative kong.yml (YAML or JSON: top-level `plugins`, and those under services,
/// routes and consumers) or an Admin API answer (`GET /plugins`: {"data":[...]}, a list, or one
/// plugin object). Every aforo-metering plugin found gets a new block (keeping its service / route /
/// consumer scope as a comment); the sidecar settings (aforo_endpoint, tenant_id, the margin guard
/// and pre-flight quota settings) come from the first one, and a later one that disagrees is a note.
/// Numbers: *_ms fields are milliseconds, *_ttl fields seconds. Pure (no I/O).
[[nodiscard]] migration_result migrate_kong_config(const std::string& text, const migration_options& opts);

}  // namespace aforo::config
