// The margin guard file (docs/design/margin-guard.md#guard-file) from YAML: here because only the config layer links
// yaml-cpp.
#pragma once

#include <string>
#include <string_view>

#include "core/margin/guard_config.hpp"

namespace aforo::config {

/// YAML text -> validated guards; a syntax error is one error "YAML line L column C: ...".
/// Thread-safe.
[[nodiscard]] core::margin::guard_set_result parse_guards_yaml(std::string_view yaml);

/// Reads and parses the guard file; a read failure is one error naming the path. Blocking file
/// I/O: call at startup or from the reload timer, never per request.
[[nodiscard]] core::margin::guard_set_result load_guards_file(const std::string& path);

}  // namespace aforo::config
