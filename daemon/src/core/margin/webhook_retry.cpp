// The margin webhook's retry machine; see webhook_retry.hpp.
#include "core/margin/webhook_retry.hpp"

namespace aforo::core::margin {

webhook_outcome judge_webhook_status(int status) noexcept {
  if (status >= 200 && status < 300) return webhook_outcome::delivered;
  if (status == 408 || status == 429 || status >= 500) return webhook_outcome::retryable;
  return webhook_outcome::refused;
}

webhook_step webhook_retry::send() {
  ++attempts_;
  in_flight_ = true;
  return {webhook_step::kind::send, std::chrono::milliseconds(0), {}};
}

webhook_step webhook_retry::start() {
  if (stopped_ || done_ || in_flight_ || waiting_ || attempts_ > 0) return {};
  return send();
}

webhook_step webhook_retry::on_result(webhook_outcome outcome, std::chrono::steady_clock::time_point now) {
  if (stopped_ || !in_flight_) return {};
  in_flight_ = false;
  if (outcome == webhook_outcome::delivered) {
    done_ = true;
    return {webhook_step::kind::sent, std::chrono::milliseconds(0), now};
  }
  if (outcome == webhook_outcome::refused || attempts_ >= max_attempts) {
    done_ = true;
    return {webhook_step::kind::failed, std::chrono::milliseconds(0), now};
  }
  waiting_ = true;
  const auto wait = backoff_.next();
  return {webhook_step::kind::wait, wait, now + wait};
}

webhook_step webhook_retry::on_timer() {
  if (stopped_ || !waiting_) return {};
  waiting_ = false;
  return send();
}

}  // namespace aforo::core::margin
