// UTC calendar periods with std::chrono calendar types (no clock is read here).
#include "core/entitlements/period.hpp"

#include <chrono>

namespace aforo::core::entitlements {

namespace {
using namespace std::chrono;

void put_digits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

std::int64_t to_unix(sys_days d) { return d.time_since_epoch().count() * 86400LL; }

// Reads exactly `width` digits at text[pos]; -1 if absent.
int read_digits(std::string_view text, std::size_t pos, int width) {
  if (pos + static_cast<std::size_t>(width) > text.size()) return -1;
  int v = 0;
  for (int i = 0; i < width; ++i) {
    char c = text[pos + static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool expect(std::string_view text, std::size_t pos, char c) { return pos < text.size() && text[pos] == c; }
}  // namespace

std::string_view to_string(period_kind p) {
  switch (p) {
    case period_kind::hour:
      return "hour";
    case period_kind::day:
      return "day";
    case period_kind::month:
      return "month";
  }
  return "month";
}

std::optional<period_kind> parse_period_kind(std::string_view text) {
  if (text == "hour") return period_kind::hour;
  if (text == "day") return period_kind::day;
  if (text == "month") return period_kind::month;
  return std::nullopt;
}

period_window period_of(period_kind kind, std::int64_t unix_s) {
  const sys_seconds t{seconds{unix_s}};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const auto y = static_cast<unsigned>(static_cast<int>(ymd.year()));
  const auto m = static_cast<unsigned>(ymd.month());
  const auto d = static_cast<unsigned>(ymd.day());

  period_window w;
  w.kind = kind;
  put_digits(w.key_buf, y, 4);
  w.key_buf[4] = '-';
  put_digits(w.key_buf + 5, m, 2);
  switch (kind) {
    case period_kind::month: {
      const year_month_day first = ymd.year() / ymd.month() / 1;
      w.start = to_unix(sys_days{first});
      w.end = to_unix(sys_days{first + months{1}});
      w.key_len = 7;
      break;
    }
    case period_kind::day: {
      w.start = to_unix(day);
      w.end = w.start + 86400;
      w.key_buf[7] = '-';
      put_digits(w.key_buf + 8, d, 2);
      w.key_len = 10;
      break;
    }
    case period_kind::hour: {
      const auto h = static_cast<unsigned>(floor<hours>(t - day).count());
      w.start = to_unix(day) + static_cast<std::int64_t>(h) * 3600;
      w.end = w.start + 3600;
      w.key_buf[7] = '-';
      put_digits(w.key_buf + 8, d, 2);
      w.key_buf[10] = 'T';
      put_digits(w.key_buf + 11, h, 2);
      w.key_len = 13;
      break;
    }
  }
  return w;
}

std::optional<period_window> parse_period_key(std::string_view key) {
  const int y = read_digits(key, 0, 4);
  const int m = read_digits(key, 5, 2);
  if (y < 0 || m < 0 || !expect(key, 4, '-')) return std::nullopt;
  int d = 1;
  int h = 0;
  period_kind kind = period_kind::month;
  if (key.size() == 7) {
    kind = period_kind::month;
  } else if (key.size() == 10 && expect(key, 7, '-')) {
    kind = period_kind::day;
    d = read_digits(key, 8, 2);
  } else if (key.size() == 13 && expect(key, 7, '-') && expect(key, 10, 'T')) {
    kind = period_kind::hour;
    d = read_digits(key, 8, 2);
    h = read_digits(key, 11, 2);
  } else {
    return std::nullopt;
  }
  if (d < 0 || h < 0 || h > 23) return std::nullopt;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return period_of(kind, to_unix(sys_days{ymd}) + h * 3600LL);
}

std::string_view format_iso8601(std::int64_t unix_s, char (&out)[21]) {
  const sys_seconds t{seconds{unix_s}};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> tod{t - day};
  put_digits(out, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  out[4] = '-';
  put_digits(out + 5, static_cast<unsigned>(ymd.month()), 2);
  out[7] = '-';
  put_digits(out + 8, static_cast<unsigned>(ymd.day()), 2);
  out[10] = 'T';
  put_digits(out + 11, static_cast<unsigned>(tod.hours().count()), 2);
  out[13] = ':';
  put_digits(out + 14, static_cast<unsigned>(tod.minutes().count()), 2);
  out[16] = ':';
  put_digits(out + 17, static_cast<unsigned>(tod.seconds().count()), 2);
  out[19] = 'Z';
  out[20] = '\0';
  return {out, 20};
}

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
  if (text.size() != 20 || !expect(text, 4, '-') || !expect(text, 7, '-') || !expect(text, 10, 'T') ||
      !expect(text, 13, ':') || !expect(text, 16, ':') || !expect(text, 19, 'Z')) {
    return std::nullopt;
  }
  const int y = read_digits(text, 0, 4);
  const int mo = read_digits(text, 5, 2);
  const int d = read_digits(text, 8, 2);
  const int h = read_digits(text, 11, 2);
  const int mi = read_digits(text, 14, 2);
  const int s = read_digits(text, 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return std::nullopt;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return to_unix(sys_days{ymd}) + h * 3600LL + mi * 60LL + s;
}

}  // namespace aforo::core::entitlements
