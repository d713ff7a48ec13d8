// The one backoff; see backoff.hpp.
#include "core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace aforo::core {

using std::chrono::milliseconds;

milliseconds backoff_delay(const backoff_policy& p, std::uint32_t failure, double random01,
                           std::optional<milliseconds> retry_after) {
  const std::uint32_t n = failure == 0 ? 1 : failure;
  milliseconds base;
  if (!p.steps.empty()) {
    base = p.steps[std::min<std::size_t>(n - 1, p.steps.size() - 1)];
  } else {
    const milliseconds initial = std::max(p.initial, milliseconds(1));
    const milliseconds cap = std::max(p.cap, initial);
    base = initial;
    for (std::uint32_t i = 1; i < n && base < cap; ++i) base *= 2;  // stops at the cap: no overflow
    base = std::min(base, cap);
  }
  if (p.jitter_percent > 0) {
    const double r = std::clamp(random01, 0.0, 1.0);
    const double stretch = static_cast<double>(base.count()) * p.jitter_percent / 100.0 * r;
    base += milliseconds(static_cast<milliseconds::rep>(std::llround(stretch)));
  }
  if (retry_after) base = std::max(base, *retry_after);
  return base;
}

}  // namespace aforo::core
