// Quota reservations of POST /v1/check: checks that wait for units from Redis, and the calls that
// reserve, report and return them (core::entitlements::quota_reservations decides; this file drives).
#include <string>
#include <utility>

#include "app/decisions/decision_service.hpp"
#include "app/decisions/decision_service_detail.hpp"
#include "util/log.hpp"

namespace aforo::app {

using namespace decision_detail;

void decision_service::prepare_reservations(clock::time_point now) {
  if (!reservations_) return;
  reservations_->set_now_ms(steady_ms(now));
  reservations_->set_connected(sharing_->store_connected());
}

void decision_service::decide_waiter(waiter w) {
  const auto req = w.req->view();
  const auto d = engine_.decide_for(req, w.snap->rules, w.cust, ledger(), unix_now(), w.cache, margin_);
  note_decision(req, d);
  if (d.quota_pending) {
    w.req->leased = 0;  // counted by the pass that first found it pending
    w.req->lease_unused = 0;
    return park(std::move(w));
  }
  finish(d, w.started, w.respond);
  if (reservations_ && !waking_ && reservations_->calls_due()) flush_reservations(false);
}

void decision_service::park(waiter w) {
  if (!w.waited) metrics_->quota_waits.inc();
  w.waited = true;
  waiting_[reservations_->pending_key()].push_back(std::move(w));
  if (!waking_) flush_reservations(false);
}

void decision_service::wake(const std::string& key) {
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  auto list = std::move(it->second);
  waiting_.erase(it);
  prepare_reservations(clock::now());
  waking_ = true;  // one call for all of them, after they all asked
  for (auto& w : list) decide_waiter(std::move(w));
  waking_ = false;
}

void decision_service::flush_reservations(bool report) {
  if (!reservations_) return;
  prepare_reservations(clock::now());
  if (const auto down = reservations_->down_admitted(); down != down_counted_) {
    metrics_->quota_down.inc(down - down_counted_);
    down_counted_ = down;
  }
  if (reservations_->take_down_warning()) {
    util::log::warn("quota: redis unavailable; admitting up to " +
                    std::to_string(ctx_.config.cache.quota_redis_down_allowance) + " units or " +
                    std::to_string(ctx_.config.cache.quota_redis_down_percent) +
                    "% of the limit (the larger) per key beyond the chunks held (cache.quota_redis_down_allowance, "
                    "quota_redis_down_percent) until it returns");
  }
  if (!report && !reservations_->calls_due()) return;
  auto calls = reservations_->take_calls(unix_now(), report);
  if (calls.empty()) return;
  sharing_->reserve(std::move(calls), [this](const ce::reserve_call& c, std::optional<ce::reserve_reply> r) {
    reservations_->set_now_ms(steady_ms(clock::now()));
    if (r)
      reservations_->on_reply(c, *r);
    else
      reservations_->on_failure(c);
    wake(c.key);
    flush_reservations(false);
  });
}

}  // namespace aforo::app
