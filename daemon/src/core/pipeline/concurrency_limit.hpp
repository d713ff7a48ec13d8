// Adaptive concurrency for delivery to ingest: how many requests may be in flight at once,
// learned from round-trip times and refusals, as Vector's ARC and TCP congestion control do. Pure: time
// and outcomes are passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace aforo::core {

/// AIMD with a remembered ceiling. Each round trip (a window as long as the lowest round trip seen)
/// ends in one decision from the results that arrived in it: any refusal (timeout, 429, 503), failure
/// (network error, other 5xx) or a round trip over `rtt_tolerance` × the lowest → the limit is
/// multiplied by `decrease_factor`;
/// otherwise it grows by one, up to the ceiling. A refusal of a request sent while N > 1 were in flight
/// sets the ceiling to N − 1 (refused while alone: ingest is down or overloaded whatever the concurrency); after
/// `probe_after` clean windows at the ceiling it is raised by one (so a recovered ingest is found again). Results of
/// requests sent before the last decrease are ignored for decreases (they reflect the old limit). A Retry-After holds
/// every new request back until it passes. Not thread-safe: one owner.
class concurrency_limit {
 public:
  using clock = std::chrono::steady_clock;

  struct options {
    std::uint32_t initial = 1;
    std::uint32_t max = 16;  ///< batch.max_concurrency
    bool adaptive = true;    ///< false: always `max`
    double rtt_tolerance = 2.0;
    /// Round trips are compared with at least this: on loopback or a LAN a large batch's processing
    /// time dwarfs the network's, and is no sign of congestion.
    std::chrono::milliseconds rtt_floor{10};
    double decrease_factor = 0.5;
    std::uint32_t probe_after = 20;  ///< clean windows at the ceiling before trying one more
  };

  /// 2xx/4xx | timeout, 429, 503: a capacity signal (sets the ceiling) | network errors, other 5xx:
  /// ingest down or broken (decreases, but leaves the ceiling: once it is back, the limit grows again).
  enum class outcome { ok, overloaded, failed };

  explicit concurrency_limit(options o);

  /// May another request start now, with `in_flight` already out?
  [[nodiscard]] bool may_send(std::uint32_t in_flight, clock::time_point now) const;
  /// When held-back sends may go again (Retry-After), if a hold is in force.
  [[nodiscard]] std::optional<clock::time_point> held_until(clock::time_point now) const;

  /// A request sent at `sent_at` as the `level`-th in flight ended at `now` with `o`; `retry_after`
  /// when the answer carried one.
  void record(outcome o, clock::time_point sent_at, std::uint32_t level, clock::time_point now,
              std::optional<std::chrono::seconds> retry_after = std::nullopt);

  [[nodiscard]] std::uint32_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::uint32_t ceiling() const noexcept { return ceiling_; }
  [[nodiscard]] std::optional<std::chrono::milliseconds> min_rtt() const noexcept { return min_rtt_; }

 private:
  void close_window(clock::time_point now);

  options opts_;
  std::uint32_t limit_;
  std::uint32_t ceiling_;
  std::optional<std::chrono::milliseconds> min_rtt_;
  clock::time_point window_end_{};
  clock::time_point last_decrease_{};
  bool ok_in_window_ = false;
  bool congested_in_window_ = false;
  std::uint32_t clean_windows_ = 0;
  clock::time_point hold_until_{};
};

}  // namespace aforo::core
