// Aforo's decision endpoints as values (docs/design/event-fields.md#aforo-decision-endpoints): the pre-flight quota
// check (POST /api/v1/quota/check) and the margin-guard quick check (GET /internal/v1/margin-guard/quick-check),
// parsed from their JSON with or without the {success, data} wrapping.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/entitlements/decision.hpp"

namespace aforo::core::aforo_api {

/// The quota check's answer: {decision: ALLOW|WARN|DENY, reason, currentUsage, limit, retryAfterMs,
/// tierName, headers{}}.
struct quota_answer {
  enum class kind : std::uint8_t { allow, warn, deny };
  kind decision = kind::allow;
  std::string reason;
  std::optional<std::int64_t> current_usage;
  std::optional<std::int64_t> limit;
  std::int64_t retry_after_ms = 0;
  std::string tier_name;
  /// Headers Aforo asks the gateway to return to the client (X-RateLimit-*, ...), in answer order.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// The margin quick check's answer: {allowed, level: NONE|L1_ALERT|L2_THROTTLE|L3_BLOCK,
/// throttleRate (percent of requests allowed), retryAfterSeconds, message}.
struct margin_answer {
  bool allowed = true;
  entitlements::margin_level level = entitlements::margin_level::none;
  std::int64_t throttle_rate = 100;  ///< 0..100, percent of requests let through at L2
  std::int64_t retry_after_s = 0;
  std::string message;
};

/// A parsed answer or why it is unusable ("malformed JSON at offset 3: ...", "success is false: ...",
/// "decision must be ALLOW, WARN or DENY").
template <class T>
struct parsed {
  std::optional<T> value;
  std::string error;
};

/// Parses the quota check's body. A body {"success":true,"data":{...}} is unwrapped; success false is an
/// error (its error message quoted). Unknown keys are ignored; numbers may be integers or decimals
/// (rounded down); header values may be strings or numbers. Thread-safe.
[[nodiscard]] parsed<quota_answer> parse_quota_answer(std::string_view body);
/// Parses the margin quick check's body (same wrapping rules). A level not in the list is an error.
[[nodiscard]] parsed<margin_answer> parse_margin_answer(std::string_view body);

/// L2 throttling by throttleRate without randomness: each customer carries a credit (start with
/// initial_throttle_credit); a request adds the rate and is let through when the credit reaches 100
/// (which it then spends). Over n requests, rate% of them (rounded) pass, the first one included
/// for any rate > 0.
inline constexpr std::int64_t initial_throttle_credit = 99;
[[nodiscard]] bool admit_throttled(std::int64_t& credit, std::int64_t rate_percent);

/// Aforo's body for a margin deny: {"error":{"code":"SERVICE_RESTRICTED_MARGIN" (L3) or
/// "RATE_LIMITED_MARGIN" (L2),"message":...,"retryAfterSeconds":N[,"supportUrl":...]}}; supportUrl
/// only when support_url is not empty.
[[nodiscard]] std::string margin_deny_body(entitlements::margin_level level, std::string_view message,
                                           std::int64_t retry_after_s, std::string_view support_url);

}  // namespace aforo::core::aforo_api
