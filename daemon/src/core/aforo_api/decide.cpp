// Mapping Aforo's answers onto a decision; see decide.hpp.
#include "core/aforo_api/decide.hpp"

#include <algorithm>

namespace aforo::core::aforo_api {

namespace ce = entitlements;

namespace {
constexpr std::int64_t default_throttle_retry = 1;
constexpr std::int64_t default_block_retry = 1800;

// Returns false in shadow mode: the decision stays allowed and the caller adds no deny headers.
bool deny(ce::decision& d, ce::enforcement_mode mode, ce::verdict kind, ce::reason why, std::int64_t retry_after) {
  d.why = why;
  if (mode == ce::enforcement_mode::shadow) {
    d.shadow = true;
    return false;
  }
  d.kind = kind;
  d.allowed = false;
  d.status = 429;
  d.retry_after = retry_after;
  d.headers.add("Retry-After", retry_after);
  return true;
}

void forward_headers(ce::decision& d, const quota_answer& q) {
  for (const auto& [name, value] : q.headers) {
    if (d.headers.get(name)) continue;
    d.headers.add(name, value);
  }
}
}  // namespace

ce::decision decide(const ce::check_request& req, const api_inputs& in, ce::enforcement_mode mode) {
  ce::decision d;
  d.cache = in.cache;
  d.metric = in.metric;
  if (req.feature) d.feature = *req.feature;
  if (in.quota != nullptr) {
    const quota_answer& q = *in.quota;
    if (!q.tier_name.empty()) d.plan = std::string_view(q.tier_name);
    if (q.limit) {
      d.limit = *q.limit;
      if (q.current_usage) d.remaining_quota = std::max<std::int64_t>(*q.limit - *q.current_usage, 0);
    }
  }

  bool margin_alert = false;
  if (in.margin != nullptr) {
    const margin_answer& m = *in.margin;
    d.margin = m.level;
    const bool block = m.level == ce::margin_level::l3 || (!m.allowed && m.level != ce::margin_level::l2);
    if (block) {
      d.margin = ce::margin_level::l3;
      if (deny(d, mode, ce::verdict::block, ce::reason::margin_block,
               m.retry_after_s > 0 ? m.retry_after_s : default_block_retry)) {
        d.headers.add("X-Margin-Guard", "blocked");
        d.headers.add("X-Margin-Guard-Level", "L3");
        d.message = m.message;
        d.body = in.margin_body;
      }
      return d;
    }
    if (m.level == ce::margin_level::l2 && !in.throttle_admitted) {
      if (deny(d, mode, ce::verdict::throttle, ce::reason::margin_throttle,
               m.retry_after_s > 0 ? m.retry_after_s : default_throttle_retry)) {
        d.headers.add("X-Aforo-Throttle", "true");
        d.headers.add("X-Margin-Guard", "throttled");
        d.headers.add("X-Margin-Guard-Level", "L2");
        d.message = m.message;
        d.body = in.margin_body;
      }
      return d;
    }
    margin_alert = m.level != ce::margin_level::none;
  }

  if (in.quota != nullptr) {
    const quota_answer& q = *in.quota;
    if (q.decision == quota_answer::kind::deny) {
      const std::int64_t retry = std::max<std::int64_t>((q.retry_after_ms + 999) / 1000, 1);
      if (deny(d, mode, ce::verdict::block, ce::reason::quota_exceeded, retry)) {
        forward_headers(d, q);
        if (!q.reason.empty()) d.message = q.reason;
      }
      return d;
    }
    forward_headers(d, q);
    if (q.decision == quota_answer::kind::warn) {
      d.why = ce::reason::quota_warning;
      if (!d.headers.get("X-RateLimit-Warning"))
        d.headers.add("X-RateLimit-Warning", q.reason.empty() ? std::string_view("quota near limit") : q.reason);
    }
  }
  if (margin_alert) {
    d.why = ce::reason::margin_alert;
    d.upstream_headers.add("X-Margin-Guard-Warning", "margin-low");
  }
  return d;
}

}  // namespace aforo::core::aforo_api
