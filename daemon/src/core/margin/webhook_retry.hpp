// When to send a margin level-change webhook again and when to give up (docs/design/margin-guard.md#webhook):
// a pure machine that takes the answer of each attempt and the time and returns the next step; the
// sender (io/clients/margin_webhook_sender) performs the steps with a timer and an HTTP client.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/backoff.hpp"

namespace aforo::core::margin {

/// What one attempt's answer means for the webhook.
enum class webhook_outcome {
  delivered,  ///< 2xx
  retryable,  ///< no answer (network error, timeout), 408, 429 or 5xx
  refused,    ///< any other status, or a request that cannot be made (bad URL): fails at once
};

/// The verdict on an HTTP status.
[[nodiscard]] webhook_outcome judge_webhook_status(int status) noexcept;

/// The next thing the sender does.
struct webhook_step {
  enum class kind {
    send,    ///< POST now (re-stamped and re-signed)
    wait,    ///< arm a timer for `wait` (until `at`), then call on_timer
    sent,    ///< delivered: count it
    failed,  ///< gave up: count and log it
    none,    ///< stopped: do nothing
  };
  kind what = kind::none;
  std::chrono::milliseconds wait{0};
  std::chrono::steady_clock::time_point at{};
};

/// One webhook (one change to one URL): up to max_attempts attempts, 1 s, 2 s, 4 s apart
/// (core::backoff). Not thread-safe: one owner.
class webhook_retry {
 public:
  static constexpr std::uint32_t max_attempts = 4;

  webhook_retry() : backoff_(backoff_policy::exponential(std::chrono::seconds(1), std::chrono::seconds(4))) {}

  /// The first attempt: send.
  webhook_step start();
  /// The attempt in flight ended with `outcome` at `now`.
  webhook_step on_result(webhook_outcome outcome, std::chrono::steady_clock::time_point now);
  /// The wait ended: send again.
  webhook_step on_timer();
  /// Shutdown: every later event returns none.
  void stop() noexcept { stopped_ = true; }

  /// Attempts made (sends returned so far).
  [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }

 private:
  webhook_step send();

  backoff backoff_;
  std::uint32_t attempts_ = 0;
  bool waiting_ = false;
  bool in_flight_ = false;
  bool done_ = false;
  bool stopped_ = false;
};

}  // namespace aforo::core::margin
