// The Redis connection's state machine as pure logic: connected / unavailable, reconnect delays
// doubling from an initial value to a cap (core/backoff.hpp), and which transitions deserve a log line.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/backoff.hpp"

namespace aforo::core::entitlements {

enum class redis_link_state : std::uint8_t { connecting, connected, unavailable };

/// "connected" | "unavailable" (also for the first connect attempt) — the handshake's `redis` field.
[[nodiscard]] constexpr const char* to_string(redis_link_state s) {
  return s == redis_link_state::connected ? "connected" : "unavailable";
}

/// What the driver does after a connection attempt or an established connection failed.
struct redis_link_action {
  std::chrono::milliseconds retry_in{0};  ///< reconnect after this delay
  bool log = false;                       ///< a state change: write one log line
};

/// Starts in `connecting`. Delays go initial, 2x, 4x, ... up to max, reset by a success.
/// Not thread-safe: one owner (the io thread).
class redis_link {
 public:
  redis_link(std::chrono::milliseconds initial = std::chrono::milliseconds(100),
             std::chrono::milliseconds max = std::chrono::seconds(5))
      : backoff_(backoff_policy::exponential(initial, max)) {}

  /// The connection is usable. True when this is a state change (log "redis connected").
  bool on_connected() {
    const bool changed = state_ != redis_link_state::connected;
    state_ = redis_link_state::connected;
    backoff_.reset();
    return changed;
  }

  /// A connect attempt or a live connection failed.
  redis_link_action on_failure() {
    redis_link_action a;
    a.log = state_ != redis_link_state::unavailable;
    state_ = redis_link_state::unavailable;
    a.retry_in = backoff_.next();
    return a;
  }

  [[nodiscard]] redis_link_state state() const { return state_; }

 private:
  backoff backoff_;
  redis_link_state state_ = redis_link_state::connecting;
};

}  // namespace aforo::core::entitlements
