// UTC calendar periods (hour, day, month) for quotas: window start/end and a stable period key.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace aforo::core::entitlements {

enum class period_kind : std::uint8_t { hour, day, month };

/// "hour" | "day" | "month".
[[nodiscard]] std::string_view to_string(period_kind p);
/// Inverse of to_string; nullopt for anything else.
[[nodiscard]] std::optional<period_kind> parse_period_kind(std::string_view text);

/// One calendar period in unix seconds (UTC), [start, end). `end` is when a quota resets.
/// The key is "2026-11" (month), "2026-11-26" (day) or "2026-11-26T06" (hour); it is stored
/// inline so computing a window never allocates.
struct period_window {
  period_kind kind = period_kind::month;
  std::int64_t start = 0;  ///< unix seconds, inclusive
  std::int64_t end = 0;    ///< unix seconds, exclusive: the reset time
  char key_buf[16] = {};
  std::uint8_t key_len = 0;

  [[nodiscard]] std::string_view key() const { return {key_buf, key_len}; }
};

/// The period of this kind that contains unix time `unix_s` (seconds, UTC). Years 0..9999.
/// Pure (std::chrono calendar arithmetic, no clock), thread-safe.
[[nodiscard]] period_window period_of(period_kind kind, std::int64_t unix_s);

/// The window named by a key made by period_of ("2026-11", "2026-11-26", "2026-11-26T06").
[[nodiscard]] std::optional<period_window> parse_period_key(std::string_view key);

/// Writes unix seconds as ISO-8601 UTC "2026-12-01T00:00:00Z" (exactly 20 chars) into out.
/// Returns the view of the written text.
std::string_view format_iso8601(std::int64_t unix_s, char (&out)[21]);

/// Parses "YYYY-MM-DDTHH:MM:SSZ" (UTC only) into unix seconds; nullopt if malformed or invalid.
[[nodiscard]] std::optional<std::int64_t> parse_iso8601(std::string_view text);

}  // namespace aforo::core::entitlements
