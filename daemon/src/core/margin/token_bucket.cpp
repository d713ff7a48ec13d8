// Exact token bucket; see token_bucket.hpp.
#include "core/margin/token_bucket.hpp"

#include <algorithm>

namespace aforo::core::margin {

token_bucket::token_bucket(rate r, std::int64_t now_ms) { reset(r, now_ms); }

void token_bucket::reset(rate r, std::int64_t now_ms) {
  unit_ = std::max<std::int64_t>(r.per_ms, 1);
  refill_ = std::max<std::int64_t>(r.tokens, 0);
  // One second's worth of tokens, at least one: tokens x 1000 / per_ms.
  const std::int64_t burst = std::max<std::int64_t>(refill_ * 1000 / unit_, 1);
  capacity_ = burst * unit_;
  level_ = capacity_;
  last_ms_ = now_ms;
}

std::int64_t token_bucket::level_at(std::int64_t now_ms) const {
  const std::int64_t elapsed = std::max<std::int64_t>(now_ms - last_ms_, 0);
  if (refill_ == 0) return level_;
  // Saturate before multiplying: a long idle time just fills the bucket.
  if (elapsed >= (capacity_ - level_) / refill_ + 1) return capacity_;
  return std::min(capacity_, level_ + elapsed * refill_);
}

bool token_bucket::try_take(std::int64_t now_ms) {
  level_ = level_at(now_ms);
  last_ms_ = std::max(last_ms_, now_ms);
  if (level_ < unit_) return false;
  level_ -= unit_;
  return true;
}

std::int64_t token_bucket::wait_ms(std::int64_t now_ms) const {
  const std::int64_t level = level_at(now_ms);
  if (level >= unit_) return 0;
  if (refill_ == 0) return INT64_MAX;
  return (unit_ - level + refill_ - 1) / refill_;
}

}  // namespace aforo::core::margin
