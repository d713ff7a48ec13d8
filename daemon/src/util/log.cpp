// Log line formatting and output; see log.hpp.
#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace aforo::util::log {
namespace {

std::atomic<level> g_level{level::info};

// Under systemd (JOURNAL_STREAM set) the line starts with a syslog priority "<N>" that journald
// turns into the entry's priority, and the timestamp is left to the journal.
bool journald() {
  static const bool on = std::getenv("JOURNAL_STREAM") != nullptr;
  return on;
}

const char* name(level l) {
  switch (l) {
    case level::debug:
      return "DEBUG";
    case level::info:
      return "INFO";
    case level::warn:
      return "WARN";
    case level::error:
      return "ERROR";
  }
  return "INFO";
}

int syslog_priority(level l) {
  switch (l) {
    case level::debug:
      return 7;
    case level::info:
      return 6;
    case level::warn:
      return 4;
    case level::error:
      return 3;
  }
  return 6;
}

}  // namespace

void set_level(level l) { g_level.store(l, std::memory_order_relaxed); }
level current_level() { return g_level.load(std::memory_order_relaxed); }
bool enabled(level l) { return static_cast<int>(l) >= static_cast<int>(current_level()); }

void write(level l, std::string_view message) {
  if (!enabled(l)) return;
  std::string line;
  line.reserve(message.size() + 64);
  if (journald()) {
    line += '<';
    line += static_cast<char>('0' + syslog_priority(l));
    line += '>';
  } else {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[64];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    line += stamp;
  }
  // The daemon's own name, so its lines are told apart from the Kong plugin's "[aforo-metering]" lines
  // (docs/design/log-lines.md#daemon).
  line += "[aforo-sidecar] ";
  line += name(l);
  line += ' ';
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace aforo::util::log
