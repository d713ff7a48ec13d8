// Exact decimal text <-> integer micro-units.
#include "core/entitlements/money.hpp"

namespace aforo::core::entitlements {

namespace {
constexpr int max_integer_digits = 12;  // 999'999'999'999.999999 fits an int64 of micros
constexpr int max_decimals = 6;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

micros_parse parse_micros(std::string_view text, bool allow_negative) {
  micros_parse r;
  if (text.empty()) {
    r.error = "must be a decimal number";
    return r;
  }
  bool negative = false;
  std::size_t i = 0;
  if (text[0] == '-') {
    if (!allow_negative) {
      r.error = "must not be negative";
      return r;
    }
    negative = true;
    i = 1;
  }
  std::int64_t whole = 0;
  int whole_digits = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    if (++whole_digits > max_integer_digits) {
      r.error = "is out of range (at most 12 integer digits)";
      return r;
    }
    whole = whole * 10 + (text[i] - '0');
  }
  if (whole_digits == 0) {
    r.error = "must be a decimal number";
    return r;
  }
  std::int64_t frac = 0;
  int decimals = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      if (++decimals > max_decimals) {
        r.error = "has more than 6 decimal places";
        return r;
      }
      frac = frac * 10 + (text[i] - '0');
    }
    if (decimals == 0) {
      r.error = "must be a decimal number";
      return r;
    }
  }
  if (i != text.size()) {
    r.error = "must be a decimal number";
    return r;
  }
  for (int d = decimals; d < max_decimals; ++d) frac *= 10;
  r.value = whole * micros_per_unit + frac;
  if (negative) r.value = -r.value;
  return r;
}

std::string format_micros(micros value) {
  std::string out;
  std::uint64_t v = value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
  if (value < 0) out.push_back('-');
  out += std::to_string(v / micros_per_unit);
  std::uint64_t frac = v % micros_per_unit;
  if (frac != 0) {
    char digits[7] = {};
    for (int d = 5; d >= 0; --d) {
      digits[d] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    int len = 6;
    while (len > 0 && digits[len - 1] == '0') --len;
    out.push_back('.');
    out.append(digits, static_cast<std::size_t>(len));
  }
  return out;
}

}  // namespace aforo::core::entitlements
