// The margin guard file of docs/design/margin-guard.md#guard-file as a model: guards with scope, L1-L3 thresholds,
// actions and mode, plus the semantic validation that names the path of every problem.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::core::margin {

/// enforce: L2 throttles, L3 blocks. alert_only: never throttles or blocks; every level is an
/// alert (upstream X-Margin-Guard-Warning, webhook). shadow: a dry run; levels are computed,
/// logged, counted in /metrics and reported in /v1/check's margin_level, nothing is denied and no
/// webhook is sent.
enum class guard_mode : std::uint8_t { enforce, alert_only, shadow };

/// "enforce" | "alert_only" | "shadow".
[[nodiscard]] std::string_view to_string(guard_mode m);
[[nodiscard]] std::optional<guard_mode> parse_guard_mode(std::string_view text);

/// Which traffic a guard applies to. Each non-empty list must contain the request's value
/// (customers: the customer id, plans: its plan, features: the mapped feature); empty lists
/// match anything. A guard with features only applies to requests that map to a feature.
struct guard_scope {
  std::vector<std::string> plans;
  std::vector<std::string> customers;
  std::vector<std::string> features;

  [[nodiscard]] bool matches(std::string_view customer_id, std::string_view plan, std::string_view feature) const;
};

/// A throttle rate as an exact fraction: `tokens` per `per_ms` milliseconds ("5/s" = 5 per 1000).
struct rate {
  std::int64_t tokens = 0;
  std::int64_t per_ms = 1000;
};

/// Thresholds are margin percentages in basis points (hundredths of a percent): 30% = 3000.
struct level_1_config {
  std::int32_t threshold_bp = 0;
  std::vector<std::string> notify;  ///< webhook URLs (http or https)
};
struct level_2_config {
  std::int32_t threshold_bp = 0;
  rate throttle_rate;
};
struct level_3_config {
  std::int32_t threshold_bp = 0;
  std::int64_t retry_after_s = 1800;
};

/// One guard. At least one level is configured; present thresholds decrease L1 > L2 > L3.
struct guard {
  std::string id;
  guard_scope applies_to;
  std::optional<std::int32_t> min_margin_bp;  ///< the target margin; informational (log, webhook)
  std::optional<level_1_config> level_1;
  std::optional<level_2_config> level_2;
  std::optional<level_3_config> level_3;
  guard_mode mode = guard_mode::enforce;
};

/// The whole file. For a request, the first guard (file order) whose scope matches applies.
struct guard_set {
  std::vector<guard> guards;
};

/// A build outcome: the guards, or every error found ("guards[0].level_2.threshold: ...").
struct guard_set_result {
  std::optional<guard_set> value;
  std::vector<std::string> errors;

  [[nodiscard]] bool ok() const { return value.has_value(); }
};

/// Semantic checks of a built model: ids present and unique, percentages 0..100, at least one
/// level, thresholds decreasing, notify URLs absolute http(s) with a host, rates and retry_after
/// positive. Returns the errors, each "guards[i].path: message". Pure, thread-safe.
[[nodiscard]] std::vector<std::string> validate_guards(const guard_set& set);

/// "30%", "27.5%", "30" (a plain number is a percentage) -> basis points (3000, 2750, 3000).
/// At most 2 decimals; range 0..100. nullopt when malformed or out of range.
[[nodiscard]] std::optional<std::int32_t> parse_percent_bp(std::string_view text);

/// "5/s", "300/m", "300/min", "1000/h" -> an exact rate; nullopt when malformed or not positive.
[[nodiscard]] std::optional<rate> parse_rate(std::string_view text);

/// "1800s", "30m", "1h", "250ms" rounded up to whole seconds, or a plain count of seconds;
/// nullopt when malformed.
[[nodiscard]] std::optional<std::int64_t> parse_seconds(std::string_view text);

/// Formats basis points as a percentage without trailing zeros: 3000 -> "30", 2850 -> "28.5",
/// -125 -> "-1.25".
[[nodiscard]] std::string format_bp(std::int64_t bp);

/// Whether a URL is an absolute http:// or https:// URL with a host and no whitespace (the sender
/// parses it fully with Boost.URL).
[[nodiscard]] bool is_webhook_url(std::string_view url);

}  // namespace aforo::core::margin
