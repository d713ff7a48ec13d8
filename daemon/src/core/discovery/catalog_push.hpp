// When the API catalog is pushed to the control plane and what an answer means
// (docs/design/discovery.md#persistence): a pure machine over revisions, answers and the time; the
// discovery service performs its steps with a timer and the HTTP client.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/pipeline/retry_policy.hpp"

namespace aforo::core::discovery {

/// What the answer to one push meant (for the driver's metrics and log lines).
enum class push_result {
  none,          ///< no answer handled (a poll, a timer, an answer out of turn)
  delivered,     ///< 2xx: the revision is the control plane's
  rejected,      ///< a 4xx other than 401/403/408/429 (or a 413: a catalog cannot be halved): not retried
  retry,         ///< transient: the same push again after the wait
  failed,        ///< retries exhausted: again after max(backoff, discovery.interval)
  unauthorized,  ///< 401/403: again after retry.unauthorized_probe
};

/// The next thing the discovery service does.
struct push_step {
  enum class kind {
    none,  ///< nothing now
    push,  ///< POST the catalog at `revision`
    wait,  ///< arm the timer for `wait` (until `at`), then call on_timer
  };
  kind what = kind::none;
  push_result result = push_result::none;
  std::uint64_t revision = 0;  ///< push: the revision to send; on_result: the revision answered
  std::chrono::milliseconds wait{0};
  std::chrono::steady_clock::time_point at{};
};

/// One push in flight; a newer revision replaces a pending one; retries per retry.* (decide_delivery),
/// then every discovery.interval. Not thread-safe: one owner.
class catalog_push {
 public:
  /// The revision the control plane had (the persisted state) before start.
  void restore(std::uint64_t pushed_revision) noexcept { pushed_ = pushed_revision; }

  /// Whether to push the catalog at `revision` now: `can_push` (a control URL is configured), a
  /// revision neither pushed nor rejected, nothing in flight and no wait armed.
  push_step poll(std::uint64_t revision, bool can_push);
  /// The push in flight was answered with `outcome` at `now`. A wait step follows a failure; after
  /// a delivered or rejected revision the driver polls again (a newer revision may be waiting).
  push_step on_result(const delivery_outcome& outcome, const retry_settings& retry, std::chrono::milliseconds interval,
                      double random01, std::chrono::steady_clock::time_point now);
  /// The wait ended; the driver polls next.
  void on_timer() noexcept { waiting_ = false; }
  /// Shutdown: poll never pushes again.
  void stop() noexcept { stopped_ = true; }

  [[nodiscard]] std::uint64_t pushed_revision() const noexcept { return pushed_; }
  [[nodiscard]] std::uint64_t rejected_revision() const noexcept { return rejected_; }
  /// Attempts of the current revision's push (0 after a final answer).
  [[nodiscard]] std::uint32_t attempt() const noexcept { return attempt_; }

 private:
  std::uint64_t pushed_ = 0;
  std::uint64_t rejected_ = 0;
  std::uint64_t in_flight_revision_ = 0;
  std::uint32_t attempt_ = 0;
  bool in_flight_ = false;
  bool waiting_ = false;
  bool stopped_ = false;
};

}  // namespace aforo::core::discovery
