#include "core/pipeline/delivery_flight.hpp"

#include <utility>

namespace aforo::core {

bool delivery_flight::sent(time_point now, std::uint32_t level) {
  const bool retry = attempt_ > 0;
  in_flight_ = true;
  ++attempt_;
  sent_at_ = now;
  level_ = level;
  return retry;
}

void delivery_flight::resend_now(time_point now) {
  if (attempt_ > 0) --attempt_;
  not_before_ = now;
}

void delivery_flight::split(part first, part second) {
  if (!parts_.empty()) parts_.pop_front();
  parts_.push_front(std::move(second));
  parts_.push_front(std::move(first));
  attempt_ = 0;
}

bool delivery_flight::part_done() {
  attempt_ = 0;
  if (!parts_.empty()) parts_.pop_front();
  if (!parts_.empty()) return false;  // the next part goes out at once
  finished_ = true;
  return true;
}

void delivery_flight::hold(time_point at) {
  parts_.clear();
  attempt_ = 0;
  not_before_ = at;
}

}  // namespace aforo::core
