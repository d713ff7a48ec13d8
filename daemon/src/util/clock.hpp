// The daemon's one clock: every reading of the time in app/ (and in the io/ clients that stamp what
// they send) goes through here, so a test can set the time. Core never reads a clock: it takes the
// time as a parameter from these functions' callers.
#pragma once

#include <chrono>
#include <cstdint>

namespace aforo::util {

/// Where the time comes from: the system's clocks by default.
struct clock_source {
  std::chrono::system_clock::time_point (*wall)() = &std::chrono::system_clock::now;
  std::chrono::steady_clock::time_point (*steady)() = &std::chrono::steady_clock::now;
};

/// Replaces the process's clock and returns the one it replaces (tests; set it before threads
/// start reading it). Thread-safe: readers see either the old or the new source.
clock_source set_clock(clock_source source) noexcept;

/// Wall-clock time (timestamps, Unix seconds on the wire). Thread-safe.
[[nodiscard]] std::chrono::system_clock::time_point wall_now() noexcept;
/// Monotonic time (ages, deadlines, rates). Same epoch as std::chrono::steady_clock, so its time
/// points mix with Asio's steady_timer. Thread-safe.
[[nodiscard]] std::chrono::steady_clock::time_point steady_now() noexcept;

/// Unix time in whole seconds.
[[nodiscard]] inline std::int64_t unix_now() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(wall_now().time_since_epoch()).count();
}
/// Unix time in milliseconds.
[[nodiscard]] inline std::int64_t unix_now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall_now().time_since_epoch()).count();
}
/// Monotonic time in milliseconds since the steady clock's epoch.
[[nodiscard]] inline std::int64_t steady_now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady_now().time_since_epoch()).count();
}

/// A Clock (in the std::chrono sense) reading steady_now(): for code written against a clock type
/// (`using clock = util::steady_clock;`).
struct steady_clock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr bool is_steady = true;
  static time_point now() noexcept { return steady_now(); }
};

}  // namespace aforo::util
