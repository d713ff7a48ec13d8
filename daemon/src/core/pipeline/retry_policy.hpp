// What to do after one delivery attempt of one batch to Aforo ingest (docs/design/ingest-contract.md#answers): a pure
// decision.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace aforo::core {

/// What happened to one ingest request.
struct delivery_outcome {
  enum class kind { http_status, network_error, timeout };
  kind what = kind::http_status;
  int status = 0;                                   ///< HTTP status when what == http_status
  std::optional<std::chrono::seconds> retry_after;  ///< parsed Retry-After, when sent

  static delivery_outcome http(int status, std::optional<std::chrono::seconds> retry_after = std::nullopt) {
    return {kind::http_status, status, retry_after};
  }
  static delivery_outcome network() { return {kind::network_error, 0, std::nullopt}; }
  static delivery_outcome timed_out() { return {kind::timeout, 0, std::nullopt}; }
};

/// retry.* of the config.
struct retry_settings {
  std::uint32_t max_retries = 3;
  std::vector<std::chrono::milliseconds> backoff{std::chrono::seconds(1), std::chrono::seconds(2),
                                                 std::chrono::seconds(4)};
  std::uint32_t jitter_percent = 10;  ///< a wait is stretched by up to this share
  std::chrono::milliseconds unauthorized_probe{std::chrono::seconds(60)};
};

/// The next action for the batch.
enum class delivery_action {
  done,          ///< 2xx: delivered; ack it
  retry,         ///< send the same batch again at `at`
  spool,         ///< retries exhausted: keep the batch in the disk spool; try the spool again at `at`
  dead_letter,   ///< poison (400/422 and other 4xx): write to the dead-letter file, never resend
  split,         ///< 413: send the request's events again in two halves (a lone event is poison)
  unauthorized,  ///< 401/403: keep the events (spool), log the key error, re-probe at `at`
};

struct retry_decision {
  delivery_action action = delivery_action::done;
  std::chrono::steady_clock::time_point at{};  ///< when to act again (retry, spool, unauthorized)
  std::chrono::milliseconds wait{0};           ///< at - now
};

/// Decides after attempt number `attempt` (1 = the first send) ended with `outcome`.
/// Retries on network error, timeout, 5xx, 408, 429 and unexpected 1xx/3xx while
/// attempt <= max_retries; the wait is backoff[attempt-1] (the last entry repeats) stretched by
/// `jitter_percent * random01`, and a larger Retry-After wins (core::backoff_delay with the schedule
/// `backoff`). `random01` is in [0, 1).
/// Pure; thread-safe.
[[nodiscard]] retry_decision decide_delivery(const delivery_outcome& outcome, std::uint32_t attempt,
                                             const retry_settings& settings, double random01,
                                             std::chrono::steady_clock::time_point now);

/// Whether `status` makes a batch poison (dead-lettered, never resent); 413 is not: it splits.
[[nodiscard]] bool is_poison_status(int status) noexcept;

}  // namespace aforo::core
