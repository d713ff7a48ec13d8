// Unit parsing; see units.hpp.
#include "config/units.hpp"

#include <charconv>
#include <cmath>

namespace aforo::config {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "12.5ms" into 12.5 and "ms". Returns false when there is no leading number.
bool split_number(std::string_view s, double& number, std::string_view& unit) {
  std::size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  if (i == 0) return false;
  const auto num = s.substr(0, i);
  if (num.find('.') != num.rfind('.') || num.front() == '.' || num.back() == '.') return false;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), number);
  if (ec != std::errc{} || p != num.data() + num.size()) return false;
  unit = trim(s.substr(i));
  return true;
}

}  // namespace

parsed<std::chrono::milliseconds> parse_duration(std::string_view text) {
  const auto s = trim(text);
  double n = 0;
  std::string_view unit;
  if (!split_number(s, n, unit))
    return {std::nullopt,
            "'" + std::string(text) + "' is not a duration; write it with a unit: ms, s, m, h, d (e.g. 250ms, 5s)"};
  double ms = 0;
  if (unit == "ms")
    ms = n;
  else if (unit == "s")
    ms = n * 1000;
  else if (unit == "m")
    ms = n * 60'000;
  else if (unit == "h")
    ms = n * 3'600'000;
  else if (unit == "d")
    ms = n * 86'400'000;
  else if (unit.empty())
    return {std::nullopt, "'" + std::string(text) + "' has no unit; write it with one: ms, s, m, h, d (e.g. " +
                              std::string(s) + "s)"};
  else
    return {std::nullopt, "'" + std::string(text) + "' has an unknown duration unit '" + std::string(unit) +
                              "'; use ms, s, m, h or d"};
  if (ms != std::floor(ms)) return {std::nullopt, "'" + std::string(text) + "' is finer than a millisecond"};
  if (ms > 1e13) return {std::nullopt, "'" + std::string(text) + "' is too long"};
  return {std::chrono::milliseconds(static_cast<long long>(ms)), {}};
}

parsed<std::uint64_t> parse_size(std::string_view text) {
  const auto s = trim(text);
  double n = 0;
  std::string_view unit;
  if (!split_number(s, n, unit))
    return {std::nullopt,
            "'" + std::string(text) + "' is not a size; write it with a unit: B, KiB, MiB, GiB (e.g. 64MiB)"};
  double mult = 0;
  if (unit == "B")
    mult = 1;
  else if (unit == "KiB")
    mult = 1024.0;
  else if (unit == "MiB")
    mult = 1024.0 * 1024;
  else if (unit == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "TiB")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "KB" || unit == "kB")
    mult = 1e3;
  else if (unit == "MB")
    mult = 1e6;
  else if (unit == "GB")
    mult = 1e9;
  else if (unit == "TB")
    mult = 1e12;
  else if (unit.empty())
    return {std::nullopt, "'" + std::string(text) + "' has no unit; write it with one: B, KiB, MiB, GiB (e.g. " +
                              std::string(s) + "MiB)"};
  else
    return {std::nullopt, "'" + std::string(text) + "' has an unknown size unit '" + std::string(unit) +
                              "'; use B, KiB, MiB, GiB, KB, MB or GB"};
  const double bytes = n * mult;
  if (bytes != std::floor(bytes)) return {std::nullopt, "'" + std::string(text) + "' is not a whole number of bytes"};
  if (bytes > 1.8e19) return {std::nullopt, "'" + std::string(text) + "' is too large"};
  return {static_cast<std::uint64_t>(bytes), {}};
}

parsed<std::uint32_t> parse_percent(std::string_view text) {
  const auto s = trim(text);
  double n = 0;
  std::string_view unit;
  if (!split_number(s, n, unit) || unit != "%")
    return {std::nullopt, "'" + std::string(text) + "' is not a percentage; write it like 80%"};
  if (n != std::floor(n) || n > 100)
    return {std::nullopt, "'" + std::string(text) + "' must be a whole percentage from 0% to 100%"};
  return {static_cast<std::uint32_t>(n), {}};
}

parsed<std::uint64_t> parse_count(std::string_view text) {
  const auto s = trim(text);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size())
    return {std::nullopt, "'" + std::string(text) + "' is not a whole number"};
  return {v, {}};
}

parsed<double> parse_rate_per_second(std::string_view text) {
  const auto s = trim(text);
  double n = 0;
  std::string_view unit;
  if (!split_number(s, n, unit))
    return {std::nullopt, "'" + std::string(text) + "' is not a rate; write it like 5/s, 300/m or 1000/h"};
  if (unit == "/s") return {n, {}};
  if (unit == "/m") return {n / 60.0, {}};
  if (unit == "/h") return {n / 3600.0, {}};
  return {std::nullopt, "'" + std::string(text) + "' is not a rate; write it like 5/s, 300/m or 1000/h"};
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_size(std::uint64_t bytes) {
  constexpr std::uint64_t k = 1024;
  if (bytes != 0 && bytes % (k * k * k * k) == 0) return std::to_string(bytes / (k * k * k * k)) + "TiB";
  if (bytes != 0 && bytes % (k * k * k) == 0) return std::to_string(bytes / (k * k * k)) + "GiB";
  if (bytes != 0 && bytes % (k * k) == 0) return std::to_string(bytes / (k * k)) + "MiB";
  if (bytes != 0 && bytes % k == 0) return std::to_string(bytes / k) + "KiB";
  return std::to_string(bytes) + "B";
}

}  // namespace aforo::config
