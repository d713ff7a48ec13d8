// A token bucket in exact integers for the L2 throttle: `now` is passed in (milliseconds).
#pragma once

#include <cstdint>

#include "core/margin/guard_config.hpp"

namespace aforo::core::margin {

/// Holds a customer to `r` requests per interval, with a burst of one second's worth of tokens
/// (at least 1): 5/s allows 5 at once, then one every 200 ms; 30/m allows 1 at once, then one
/// every 2 s. Tokens are counted in units of 1/per_ms token, so refills are exact. Starts full.
/// Not thread-safe: one owner.
class token_bucket {
 public:
  token_bucket() = default;
  token_bucket(rate r, std::int64_t now_ms);

  /// Takes one token if there is one at now_ms (monotonic milliseconds).
  bool try_take(std::int64_t now_ms);
  /// Milliseconds until the next token is available (0 when one is available now).
  [[nodiscard]] std::int64_t wait_ms(std::int64_t now_ms) const;
  /// Refills to the burst (e.g. when the customer enters L2 again) with a possibly new rate.
  void reset(rate r, std::int64_t now_ms);

  [[nodiscard]] std::int64_t burst() const { return capacity_ / unit_; }

 private:
  [[nodiscard]] std::int64_t level_at(std::int64_t now_ms) const;

  std::int64_t unit_ = 1000;   // units per token (= per_ms)
  std::int64_t refill_ = 0;    // units per ms (= tokens)
  std::int64_t capacity_ = 0;  // units
  std::int64_t level_ = 0;     // units at last_ms_
  std::int64_t last_ms_ = 0;
};

}  // namespace aforo::core::margin
