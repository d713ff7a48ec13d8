// Endpoint path templating; see path_template.hpp.
#include "core/discovery/path_template.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace aforo::core::discovery {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool all_of(std::string_view s, bool (*pred)(char)) { return !s.empty() && std::all_of(s.begin(), s.end(), pred); }

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash_pos = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_pos ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

bool is_iso_date(std::string_view s) {
  return s.size() == 10 && s[4] == '-' && s[7] == '-' && all_of(s.substr(0, 4), is_digit) &&
         all_of(s.substr(5, 2), is_digit) && all_of(s.substr(8, 2), is_digit);
}

// v1, v2beta1, v1alpha1, v10: "v" + digits, optionally a lower-case word and digits.
bool is_version_word(std::string_view s) {
  if (s.size() < 2 || (s[0] != 'v' && s[0] != 'V') || !is_digit(s[1])) return false;
  std::size_t i = 1;
  while (i < s.size() && is_digit(s[i])) ++i;
  while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') ++i;
  while (i < s.size() && is_digit(s[i])) ++i;
  return i == s.size();
}

bool is_email(std::string_view s) {
  auto at = s.find('@');
  std::size_t after = at == std::string_view::npos ? std::string_view::npos : at + 1;
  if (at == std::string_view::npos) {
    at = s.find("%40");
    if (at == std::string_view::npos) return false;
    after = at + 3;
  }
  return at > 0 && s.find('.', after) != std::string_view::npos && s.find('.', after) + 1 < s.size();
}

bool is_token(std::string_view s) {
  if (s.size() < 8 || is_version_word(s)) return false;
  std::size_t letters = 0;
  std::size_t digits = 0;
  std::size_t upper = 0;
  for (char c : s) {
    if (is_alpha(c)) {
      ++letters;
      upper += c >= 'A' && c <= 'Z';
    } else if (is_digit(c)) {
      ++digits;
    } else if (c != '_' && c != '-') {
      return false;
    }
  }
  if (letters >= 1 && digits >= 2) return true;
  // Random mixed-case tokens with a digit (Stripe's cus_NffrFeUfNV2Hib): upper and lower case mixed.
  return s.size() >= 10 && digits >= 1 && upper >= 2 && letters - upper >= 2;
}

bool is_variable_stem(std::string_view s) {
  if (s.empty()) return false;
  if (s.size() > 64) return true;
  if (all_of(s, is_digit)) return true;
  if (is_iso_date(s)) return false;
  if (is_uuid(s)) return true;
  if (s.size() >= 16 && all_of(s, is_hex)) return true;
  if (is_email(s)) return true;
  return is_token(s);
}

// "stem.ext" with a short alphabetic extension, else nullopt.
std::optional<std::size_t> extension_dot(std::string_view s) {
  const auto dot = s.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  const auto ext = s.substr(dot + 1);
  if (ext.empty() || ext.size() > 5 || !all_of(ext, is_alpha)) return std::nullopt;
  return dot;
}

bool is_placeholder(std::string_view seg) { return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}'; }

template <class F>
void for_each_segment(std::string_view path, F f) {
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    const auto end = std::min(path.find('/', i), path.size());
    f(path.substr(i, end - i));
    i = end;
  }
}

std::string_view strip_query(std::string_view p) { return p.substr(0, std::min(p.find('?'), p.find('#'))); }

// The literal start of a Kong regex path (without the `~`): up to the first metacharacter.
std::string_view regex_literal_prefix(std::string_view regex) {
  if (!regex.empty() && regex.front() == '^') regex.remove_prefix(1);
  const auto meta = regex.find_first_of("\\.^$|?*+()[]{}");
  return regex.substr(0, meta);
}

}  // namespace

bool is_variable_segment(std::string_view segment) {
  if (is_variable_stem(segment)) return true;
  if (auto dot = extension_dot(segment)) return is_variable_stem(segment.substr(0, *dot));
  return false;
}

std::string template_path(std::string_view request_path) {
  const auto path = strip_query(request_path);
  std::string out;
  out.reserve(path.size());
  for_each_segment(path, [&](std::string_view seg) {
    out += '/';
    if (is_variable_stem(seg)) {
      out += id_placeholder;
    } else if (auto dot = extension_dot(seg); dot && is_variable_stem(seg.substr(0, *dot))) {
      out += id_placeholder;
      out += seg.substr(*dot);
    } else {
      out += seg;
    }
  });
  if (out.empty()) out = "/";
  return out;
}

bool is_catch_all_route_path(std::string_view route_path) {
  if (!route_path.empty() && route_path.front() == '~') {
    const auto lit = regex_literal_prefix(route_path.substr(1));
    return lit.empty() || lit == "/";
  }
  return route_path.empty() || route_path == "/";
}

std::optional<std::string> route_template(std::span<const std::string> route_paths, std::string_view request_path) {
  const auto path = strip_query(request_path);
  const std::string* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& p : route_paths) {
    if (is_catch_all_route_path(p)) continue;
    const std::string_view lit =
        p.front() == '~' ? regex_literal_prefix(std::string_view(p).substr(1)) : std::string_view(p);
    if (path.substr(0, lit.size()) != lit) continue;
    if (best == nullptr || lit.size() > best_len) {
      best = &p;
      best_len = lit.size();
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

bool template_covers(std::string_view pattern, std::string_view candidate) {
  std::vector<std::string_view> a;
  std::vector<std::string_view> b;
  for_each_segment(pattern, [&](std::string_view s) { a.push_back(s); });
  for_each_segment(candidate, [&](std::string_view s) { b.push_back(s); });
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i] && !is_placeholder(a[i])) return false;
  return true;
}

}  // namespace aforo::core::discovery
