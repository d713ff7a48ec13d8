// Guard model helpers and semantic validation; see guard_config.hpp.
#include "core/margin/guard_config.hpp"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "core/entitlements/money.hpp"

namespace aforo::core::margin {

namespace {

bool contains(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

std::string at(std::size_t i, std::string_view rest) {
  std::string p = "guards[" + std::to_string(i) + "]";
  if (!rest.empty()) {
    p += '.';
    p += rest;
  }
  return p;
}

}  // namespace

std::string_view to_string(guard_mode m) {
  switch (m) {
    case guard_mode::enforce:
      return "enforce";
    case guard_mode::alert_only:
      return "alert_only";
    case guard_mode::shadow:
      return "shadow";
  }
  return "enforce";
}

std::optional<guard_mode> parse_guard_mode(std::string_view text) {
  if (text == "enforce") return guard_mode::enforce;
  if (text == "alert_only") return guard_mode::alert_only;
  if (text == "shadow") return guard_mode::shadow;
  return std::nullopt;
}

bool guard_scope::matches(std::string_view customer_id, std::string_view plan, std::string_view feature) const {
  if (!customers.empty() && !contains(customers, customer_id)) return false;
  if (!plans.empty() && !contains(plans, plan)) return false;
  if (!features.empty() && (feature.empty() || !contains(features, feature))) return false;
  return true;
}

std::optional<std::int32_t> parse_percent_bp(std::string_view text) {
  if (!text.empty() && text.back() == '%') text.remove_suffix(1);
  // The exact decimal parser of money amounts: 6 decimals in micro-units, no float.
  const auto m = entitlements::parse_micros(text);
  if (m.error != nullptr) return std::nullopt;
  constexpr entitlements::micros per_bp = entitlements::micros_per_unit / 100;
  if (m.value % per_bp != 0) return std::nullopt;  // more than 2 decimals
  const auto bp = m.value / per_bp;
  if (bp < 0 || bp > 10000) return std::nullopt;
  return static_cast<std::int32_t>(bp);
}

std::optional<rate> parse_rate(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view count = text.substr(0, slash);
  const std::string_view unit = text.substr(slash + 1);
  rate r;
  auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), r.tokens);
  if (ec != std::errc{} || ptr != count.data() + count.size() || r.tokens <= 0) return std::nullopt;
  if (r.tokens > 1'000'000'000) return std::nullopt;
  if (unit == "s" || unit == "sec") {
    r.per_ms = 1000;
  } else if (unit == "m" || unit == "min") {
    r.per_ms = 60'000;
  } else if (unit == "h") {
    r.per_ms = 3'600'000;
  } else {
    return std::nullopt;
  }
  return r;
}

std::optional<std::int64_t> parse_seconds(std::string_view text) {
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || ptr == text.data() || n < 0 || n > 100'000'000) return std::nullopt;
  const std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  if (unit.empty() || unit == "s") return n;
  if (unit == "ms") return (n + 999) / 1000;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  return std::nullopt;
}

std::string format_bp(std::int64_t bp) {
  std::string out;
  std::uint64_t v = bp < 0 ? 0 - static_cast<std::uint64_t>(bp) : static_cast<std::uint64_t>(bp);
  if (bp < 0) out.push_back('-');
  out += std::to_string(v / 100);
  const auto frac = v % 100;
  if (frac != 0) {
    out.push_back('.');
    out.push_back(static_cast<char>('0' + frac / 10));
    if (frac % 10 != 0) out.push_back(static_cast<char>('0' + frac % 10));
  }
  return out;
}

bool is_webhook_url(std::string_view url) {
  std::string_view rest;
  if (iequals_prefix(url, "https://")) {
    rest = url.substr(8);
  } else if (iequals_prefix(url, "http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  if (std::any_of(url.begin(), url.end(), [](char c) { return c <= ' ' || c == 0x7f; })) return false;
  const auto host_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, host_end);
  if (authority.find('@') != std::string_view::npos) return false;  // no credentials in URLs
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos || close < 2) return false;  // "[...]" with an address
    return true;
  }
  if (const auto colon = host.find(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  return !host.empty();
}

std::vector<std::string> validate_guards(const guard_set& set) {
  std::vector<std::string> errors;
  std::unordered_set<std::string> ids;
  auto fail = [&](std::size_t i, std::string_view path, std::string_view message) {
    errors.push_back(at(i, path) + ": " + std::string(message));
  };
  auto check_pct = [&](std::size_t i, std::string_view path, std::int32_t bp) {
    if (bp < 0 || bp > 10000) fail(i, path, "must be a percentage from 0% to 100%");
  };
  for (std::size_t i = 0; i < set.guards.size(); ++i) {
    const guard& g = set.guards[i];
    if (g.id.empty()) {
      fail(i, "id", "is required (a non-empty string)");
    } else if (!ids.insert(g.id).second) {
      fail(i, "id", "duplicate id '" + g.id + "' (ids must be unique)");
    }
    if (g.min_margin_bp) check_pct(i, "min_margin", *g.min_margin_bp);
    if (!g.level_1 && !g.level_2 && !g.level_3) {
      fail(i, "", "needs at least one of level_1, level_2, level_3");
    }
    if (g.level_1) {
      check_pct(i, "level_1.threshold", g.level_1->threshold_bp);
      for (std::size_t u = 0; u < g.level_1->notify.size(); ++u) {
        if (!is_webhook_url(g.level_1->notify[u])) {
          fail(i, "level_1.notify[" + std::to_string(u) + "]",
               "must be an absolute http:// or https:// URL with a host");
        }
      }
    }
    if (g.level_2) {
      check_pct(i, "level_2.threshold", g.level_2->threshold_bp);
      if (g.level_2->throttle_rate.tokens <= 0 || g.level_2->throttle_rate.per_ms <= 0) {
        fail(i, "level_2.throttle_rate", "must be a positive rate such as 5/s");
      }
    }
    if (g.level_3) {
      check_pct(i, "level_3.threshold", g.level_3->threshold_bp);
      if (g.level_3->retry_after_s <= 0) fail(i, "level_3.retry_after", "must be a positive duration such as 1800s");
    }
    // Thresholds must decrease: L1 warns first (highest margin), L3 blocks last (lowest).
    if (g.level_1 && g.level_2 && !(g.level_1->threshold_bp > g.level_2->threshold_bp)) {
      fail(i, "level_2.threshold",
           "must be lower than level_1.threshold (" + format_bp(g.level_1->threshold_bp) + "%)");
    }
    const std::optional<std::int32_t> above_l3 =
        g.level_2 ? std::optional(g.level_2->threshold_bp)
                  : (g.level_1 ? std::optional(g.level_1->threshold_bp) : std::nullopt);
    if (g.level_3 && above_l3 && !(*above_l3 > g.level_3->threshold_bp)) {
      fail(i, "level_3.threshold",
           std::string("must be lower than ") + (g.level_2 ? "level_2" : "level_1") + ".threshold (" +
               format_bp(*above_l3) + "%)");
    }
  }
  return errors;
}

}  // namespace aforo::core::margin
