// Entitlement snapshot parsing from YAML (here because only the config layer links yaml-cpp), and
// loading a `file:PATH` snapshot source in either YAML or JSON.
#pragma once

#include <string>
#include <string_view>

#include "core/entitlements/doc_node.hpp"
#include "core/entitlements/snapshot.hpp"

namespace aforo::config {

/// Parses YAML into the neutral tree (scalars keep their text). On a syntax error returns false
/// and sets error ("YAML line L column C: ..."). Thread-safe.
bool yaml_to_doc(std::string_view yaml, core::entitlements::doc_node& out, std::string& error);

/// YAML text -> validated snapshot; the same model and error paths as the JSON parser.
[[nodiscard]] core::entitlements::snapshot_result parse_snapshot_yaml(std::string_view yaml);

/// Parses snapshot text whose first non-blank character decides the format: '{' JSON, else YAML.
[[nodiscard]] core::entitlements::snapshot_result parse_snapshot_text(std::string_view text);

/// Reads and parses a snapshot file (YAML or JSON). A read failure is reported as one error
/// naming the path. Blocking file I/O: call from startup or a background reload, not per request.
[[nodiscard]] core::entitlements::snapshot_result load_snapshot_file(const std::string& path);

}  // namespace aforo::config
