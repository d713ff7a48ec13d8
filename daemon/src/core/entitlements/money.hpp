// Exact decimal amounts (revenue, unit cost) as integer micro-units, parsed from text without floating point.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aforo::core::entitlements {

/// An amount in micro-units: 1.0 == 1'000'000. Exact for up to 6 decimals.
using micros = std::int64_t;
inline constexpr micros micros_per_unit = 1'000'000;

/// Result of parse_micros: `error` is null on success, else a static message ("must be ...").
struct micros_parse {
  micros value = 0;
  const char* error = nullptr;
};

/// Parses decimal text such as "2000", "2000.00", "0.004" or "-1.5" exactly into micro-units.
/// Rejects exponents, a leading '+', a bare '.', more than 6 decimals, more than 12 integer digits
/// and (unless allow_negative) a minus sign. Pure, thread-safe.
[[nodiscard]] micros_parse parse_micros(std::string_view text, bool allow_negative = false);

/// Formats micro-units as the shortest exact decimal ("2000", "0.004", "-1.5").
[[nodiscard]] std::string format_micros(micros value);

}  // namespace aforo::core::entitlements
