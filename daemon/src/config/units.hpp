// Parsing of values written with units: durations (250ms, 5s, 10m, 1h, 1d), sizes (512B, 64KiB, 1GiB,
// 10MB), percentages (80%) and rates (5/s, 300/m). A bare number where a unit is required is an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aforo::config {

/// On failure `error` says what is wrong in words meant for the user; the value is then unset.
template <class T>
struct parsed {
  std::optional<T> value;
  std::string error;
};

parsed<std::chrono::milliseconds> parse_duration(std::string_view text);
parsed<std::uint64_t> parse_size(std::string_view text);
/// "80%" -> 80; fractional percentages are refused. Range 0..100.
parsed<std::uint32_t> parse_percent(std::string_view text);
/// A plain non-negative integer, no unit.
parsed<std::uint64_t> parse_count(std::string_view text);
/// "5/s" -> events per second as a (numerator, per-milliseconds) pair folded to micro-events per second.
parsed<double> parse_rate_per_second(std::string_view text);

/// Formats back with the largest unit that divides exactly (1000ms -> "1s"; 1536KiB -> "1536KiB").
std::string format_duration(std::chrono::milliseconds d);
std::string format_size(std::uint64_t bytes);

}  // namespace aforo::config
