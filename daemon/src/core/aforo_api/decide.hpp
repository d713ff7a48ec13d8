// Aforo's quota and margin answers mapped onto this project's decision contract
// (docs/design/decision-contract.md#aforo-api).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/aforo_api/answers.hpp"
#include "core/entitlements/check_request.hpp"
#include "core/entitlements/decision.hpp"
#include "core/entitlements/decision_engine.hpp"

namespace aforo::core::aforo_api {

/// What one check knows from Aforo. Every pointer and view must outlive the decision's encoding.
struct api_inputs {
  const quota_answer* quota = nullptr;    ///< null: the quota check is off for this request
  const margin_answer* margin = nullptr;  ///< null: the margin check is off
  bool throttle_admitted = false;         ///< at L2: admit_throttled's verdict for this request
  std::string_view margin_body;           ///< margin_deny_body for the margin answer's level
  std::string_view metric;                ///< the metricName asked about
  std::string_view cache = "hit";         ///< "hit" (within its TTL) | "stale" (served past it)
};

/// The decision, in this order:
/// - margin L3_BLOCK (or allowed false below L2): block 429 margin_block, Retry-After =
///   retryAfterSeconds (1800 when 0), X-Margin-Guard: blocked, X-Margin-Guard-Level: L3, message and
///   body = Aforo's {"error":{"code":"SERVICE_RESTRICTED_MARGIN",...}};
/// - margin L2_THROTTLE and this request over throttleRate: throttle 429 margin_throttle, Retry-After
///   (1 when 0), X-Aforo-Throttle: true, X-Margin-Guard: throttled, X-Margin-Guard-Level: L2, body
///   code RATE_LIMITED_MARGIN;
/// - quota DENY: block 429 quota_exceeded, Retry-After = ceil(retryAfterMs / 1000) (at least 1) and
///   Aforo's headers;
/// - quota WARN: allowed, quota_warning, X-RateLimit-Warning (Aforo's reason, else "quota near limit")
///   and Aforo's headers; ALLOW: allowed with Aforo's headers;
/// - margin L1_ALERT (or L2 let through): the allow becomes margin_alert with the upstream header
///   X-Margin-Guard-Warning: margin-low.
/// plan = tierName, limit and remaining_quota = limit - currentUsage when Aforo gave both. In shadow
/// mode a would-deny keeps its reason, is allowed with shadow = true, and carries no deny headers.
/// Never a lease (the answer is Aforo's, re-asked every TTL). Thread-safe.
[[nodiscard]] entitlements::decision decide(const entitlements::check_request& req, const api_inputs& in,
                                            entitlements::enforcement_mode mode);

}  // namespace aforo::core::aforo_api
