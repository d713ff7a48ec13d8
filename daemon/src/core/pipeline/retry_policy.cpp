// Retry policy: maps an ingest outcome and attempt number to done / retry / spool / dead-letter; the
// waits come from core/backoff.hpp.
#include "core/pipeline/retry_policy.hpp"

#include "core/backoff.hpp"

namespace aforo::core {
namespace {

using std::chrono::milliseconds;

milliseconds backoff_for(std::uint32_t attempt, const retry_settings& st, double random01,
                         std::optional<std::chrono::seconds> retry_after) {
  auto steps = st.backoff.empty() ? std::vector<milliseconds>{milliseconds(1000)} : st.backoff;
  return backoff_delay(backoff_policy::schedule(std::move(steps), st.jitter_percent), attempt, random01,
                       retry_after ? std::optional<milliseconds>(*retry_after) : std::nullopt);
}

retry_decision after(delivery_action a, milliseconds wait, std::chrono::steady_clock::time_point now) {
  return {a, now + wait, wait};
}

}  // namespace

bool is_poison_status(int status) noexcept {
  return status >= 400 && status < 500 && status != 401 && status != 403 && status != 408 && status != 413 &&
         status != 429;
}

retry_decision decide_delivery(const delivery_outcome& outcome, std::uint32_t attempt, const retry_settings& settings,
                               double random01, std::chrono::steady_clock::time_point now) {
  if (outcome.what == delivery_outcome::kind::http_status) {
    const int s = outcome.status;
    if (s >= 200 && s < 300) return after(delivery_action::done, milliseconds(0), now);
    if (s == 401 || s == 403) return after(delivery_action::unauthorized, settings.unauthorized_probe, now);
    if (s == 413) return after(delivery_action::split, milliseconds(0), now);
    if (is_poison_status(s)) return after(delivery_action::dead_letter, milliseconds(0), now);
  }
  // Everything else is transient: network error, timeout, 5xx, 408, 429, unexpected 1xx/3xx.
  const milliseconds wait = backoff_for(attempt, settings, random01, outcome.retry_after);
  if (attempt <= settings.max_retries) return after(delivery_action::retry, wait, now);
  return after(delivery_action::spool, wait, now);
}

}  // namespace aforo::core
