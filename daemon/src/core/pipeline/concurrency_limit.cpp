// Adaptive concurrency (AIMD on round trips and refusals, with a ceiling); see concurrency_limit.hpp.
#include "core/pipeline/concurrency_limit.hpp"

#include <algorithm>
#include <cmath>

namespace aforo::core {

concurrency_limit::concurrency_limit(options o) : opts_(o) {
  opts_.max = std::max<std::uint32_t>(opts_.max, 1);
  limit_ = opts_.adaptive ? std::clamp<std::uint32_t>(opts_.initial, 1, opts_.max) : opts_.max;
  ceiling_ = opts_.max;
}

bool concurrency_limit::may_send(std::uint32_t in_flight, clock::time_point now) const {
  return now >= hold_until_ && in_flight < limit_;
}

std::optional<concurrency_limit::clock::time_point> concurrency_limit::held_until(clock::time_point now) const {
  if (now < hold_until_) return hold_until_;
  return std::nullopt;
}

void concurrency_limit::close_window(clock::time_point now) {
  if (congested_in_window_) {
    limit_ = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::floor(limit_ * opts_.decrease_factor)));
    last_decrease_ = now;
    clean_windows_ = 0;
  } else if (ok_in_window_) {
    if (limit_ < ceiling_) {
      ++limit_;
    } else if (++clean_windows_ >= opts_.probe_after && ceiling_ < opts_.max) {
      ++ceiling_;
      ++limit_;
      clean_windows_ = 0;
    }
  }
  ok_in_window_ = congested_in_window_ = false;
}

void concurrency_limit::record(outcome o, clock::time_point sent_at, std::uint32_t level, clock::time_point now,
                               std::optional<std::chrono::seconds> retry_after) {
  if (retry_after) hold_until_ = std::max(hold_until_, now + *retry_after);
  const auto rtt = std::chrono::duration_cast<std::chrono::milliseconds>(now - sent_at);
  if (o == outcome::ok && (!min_rtt_ || rtt < *min_rtt_)) min_rtt_ = rtt;
  if (!opts_.adaptive) return;
  if (now >= window_end_) {
    close_window(now);
    window_end_ = now + std::max(min_rtt_.value_or(rtt), std::chrono::milliseconds(1));
  }
  const bool stale = sent_at < last_decrease_;  // sent under a limit already cut
  if (o == outcome::overloaded && !stale) {
    congested_in_window_ = true;
    // Refused with others in flight: that many is too many. Refused alone says nothing of concurrency.
    if (level > 1) ceiling_ = std::min(ceiling_, level - 1);
  } else if (o == outcome::failed && !stale) {
    congested_in_window_ = true;  // down or erroring: back off, but it says nothing of its capacity
  } else if (o == outcome::ok && !stale && min_rtt_ &&
             static_cast<double>(rtt.count()) >
                 opts_.rtt_tolerance * static_cast<double>(std::max(*min_rtt_, opts_.rtt_floor).count())) {
    congested_in_window_ = true;
  } else if (o == outcome::ok) {
    ok_in_window_ = true;
  }
}

}  // namespace aforo::core
