// The one backoff of the daemon: how long to wait after the n-th failure in a row. Delivery retries,
// margin webhook retries, the handshake re-probe and the Redis reconnect all take their waits here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace aforo::core {

/// The waits after failures 1, 2, 3, ...: `steps` when given (the last entry repeats), otherwise
/// `initial` doubling per failure up to `cap`. A wait is then stretched by up to `jitter_percent`
/// (times a random number in [0, 1) the caller supplies), and a longer Retry-After wins.
struct backoff_policy {
  std::chrono::milliseconds initial{1000};       ///< after the first failure (at least 1 ms)
  std::chrono::milliseconds cap{60000};          ///< the doubling stops here (not applied to steps)
  std::vector<std::chrono::milliseconds> steps;  ///< an explicit schedule (retry.backoff); empty = doubling
  std::uint32_t jitter_percent = 0;              ///< 10 = up to 10 % longer

  /// initial, 2 x initial, ... up to cap.
  static backoff_policy exponential(std::chrono::milliseconds initial, std::chrono::milliseconds cap) {
    backoff_policy p;
    p.initial = initial;
    p.cap = cap;
    return p;
  }
  /// The given waits, the last one repeating.
  static backoff_policy schedule(std::vector<std::chrono::milliseconds> steps, std::uint32_t jitter_percent = 0) {
    backoff_policy p;
    p.steps = std::move(steps);
    p.jitter_percent = jitter_percent;
    return p;
  }
};

/// The wait after failure number `failure` (1 = the first; 0 is taken as 1). `random01` in [0, 1)
/// scales the jitter (clamped); `retry_after` (the server's Retry-After) wins when longer. Pure.
[[nodiscard]] std::chrono::milliseconds backoff_delay(const backoff_policy& policy, std::uint32_t failure,
                                                      double random01 = 0.0,
                                                      std::optional<std::chrono::milliseconds> retry_after = {});

/// Counts failures in a row: next() is the wait after one more failure, reset() on a success.
/// Not thread-safe: one owner.
class backoff {
 public:
  explicit backoff(backoff_policy policy = {}) : policy_(std::move(policy)) {}

  /// One more failure: the wait before the next try.
  [[nodiscard]] std::chrono::milliseconds next(double random01 = 0.0,
                                               std::optional<std::chrono::milliseconds> retry_after = {}) {
    ++failures_;
    return backoff_delay(policy_, failures_, random01, retry_after);
  }
  /// A success: the next failure waits the first wait again.
  void reset() noexcept { failures_ = 0; }

  /// Failures since the last success.
  [[nodiscard]] std::uint32_t failures() const noexcept { return failures_; }
  [[nodiscard]] const backoff_policy& policy() const noexcept { return policy_; }

 private:
  backoff_policy policy_;
  std::uint32_t failures_ = 0;
};

}  // namespace aforo::core
