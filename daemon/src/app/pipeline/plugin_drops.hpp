// Events the Kong plugin's workers dropped before they reached the sidecar (a full worker buffer, a
// full overflow file), as the plugin reports them on its POST /v1/ingest/batch requests in the header
//   X-Aforo-Plugin-Dropped: buffer_full=N,overflow_full=M
// (counts since its last report the sidecar answered 2xx). Shown as
// aforo_sidecar_plugin_events_dropped_total{reason} and in GET /v1/handshake.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/metrics.hpp"

namespace aforo::app {

inline constexpr std::string_view plugin_dropped_header = "X-Aforo-Plugin-Dropped";

/// aforo_sidecar_plugin_events_dropped_total{reason="buffer_full"|"overflow_full"}.
inline util::counter_metric& plugin_dropped(std::string_view reason) {
  return util::metrics().counter(
      "aforo_sidecar_plugin_events_dropped_total",
      "Usage events the Kong plugin's workers dropped before reaching the sidecar, as the plugin reports them, by "
      "reason (buffer_full: past buffer_max_size; overflow_full: past overflow_max_bytes).",
      std::string("reason=\"") + std::string(reason) + "\"");
}

struct plugin_drops {
  std::uint64_t buffer_full = 0;
  std::uint64_t overflow_full = 0;
  [[nodiscard]] bool any() const { return buffer_full != 0 || overflow_full != 0; }
};

/// Parses the header's value; unknown keys and malformed parts are ignored, each count is capped.
inline plugin_drops parse_plugin_drops(std::string_view v) {
  static constexpr std::uint64_t cap = 1'000'000'000;
  plugin_drops d;
  while (!v.empty()) {
    const auto comma = v.find(',');
    std::string_view part = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    const auto key = part.substr(0, eq);
    const auto num = part.substr(eq + 1);
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
    if (ec != std::errc{} || p != num.data() + num.size()) continue;
    if (n > cap) n = cap;
    if (key == "buffer_full") d.buffer_full = n;
    if (key == "overflow_full") d.overflow_full = n;
  }
  return d;
}

/// Counts a report the sidecar answered 2xx for.
inline void count_plugin_drops(const plugin_drops& d) {
  if (d.buffer_full != 0) plugin_dropped("buffer_full").inc(d.buffer_full);
  if (d.overflow_full != 0) plugin_dropped("overflow_full").inc(d.overflow_full);
}

}  // namespace aforo::app
