// The catalog push machine; see catalog_push.hpp.
#include "core/discovery/catalog_push.hpp"

#include <algorithm>

namespace aforo::core::discovery {

push_step catalog_push::poll(std::uint64_t revision, bool can_push) {
  if (stopped_ || in_flight_ || waiting_ || !can_push) return {};
  if (revision == 0 || revision == pushed_ || revision == rejected_) return {};
  in_flight_ = true;
  in_flight_revision_ = revision;
  ++attempt_;
  push_step s;
  s.what = push_step::kind::push;
  s.revision = revision;
  return s;
}

push_step catalog_push::on_result(const delivery_outcome& outcome, const retry_settings& retry,
                                  std::chrono::milliseconds interval, double random01,
                                  std::chrono::steady_clock::time_point now) {
  if (stopped_ || !in_flight_) return {};
  in_flight_ = false;
  push_step s;
  s.revision = in_flight_revision_;
  const auto d = decide_delivery(outcome, attempt_, retry, random01, now);
  switch (d.action) {
    case delivery_action::done:
      s.result = push_result::delivered;
      pushed_ = in_flight_revision_;
      attempt_ = 0;
      return s;
    case delivery_action::dead_letter:
    case delivery_action::split:  // a catalog cannot be halved: 413 rejects this revision
      s.result = push_result::rejected;
      rejected_ = in_flight_revision_;
      attempt_ = 0;
      return s;
    case delivery_action::retry:
      s.result = push_result::retry;
      s.wait = d.wait;
      break;
    case delivery_action::unauthorized:
      s.result = push_result::unauthorized;
      s.wait = d.wait;
      attempt_ = 0;
      break;
    case delivery_action::spool:  // retries exhausted: try again at the next interval
      s.result = push_result::failed;
      s.wait = std::max(d.wait, interval);
      attempt_ = 0;
      break;
  }
  waiting_ = true;
  s.what = push_step::kind::wait;
  s.at = now + s.wait;
  return s;
}

}  // namespace aforo::core::discovery
