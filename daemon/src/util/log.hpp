// Logging: one line per event on stderr, "[aforo-sidecar] LEVEL message", journald-friendly.
// Thread-safe: each line is written with a single write(2).
#pragma once

#include <string_view>

#include "util/log_level.hpp"

namespace aforo::util::log {

/// Sets the lowest level that is written (default info). Safe to call at any time (SIGHUP reload).
void set_level(level l);
[[nodiscard]] level current_level();
[[nodiscard]] bool enabled(level l);

/// Writes one line. The message must not contain secrets; newlines in it are replaced by spaces.
void write(level l, std::string_view message);

inline void debug(std::string_view m) {
  if (enabled(level::debug)) write(level::debug, m);
}
inline void info(std::string_view m) { write(level::info, m); }
inline void warn(std::string_view m) { write(level::warn, m); }
inline void error(std::string_view m) { write(level::error, m); }

}  // namespace aforo::util::log
