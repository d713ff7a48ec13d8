// Metrics registry and Prometheus text rendering; see metrics.hpp.
#include "util/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace aforo::util {
namespace {

// Shortest text that reads back as the same double (bucket bounds must match across scrapes exactly).
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  // As Prometheus' Go client formats (strconv 'g', shortest): plain "100000", "0.0001", "2.5"; exponent
  // form only below 1e-4 or from 1e21 ("1e-05", "1e+21"), so le labels read the same as other exporters'.
  const double a = std::fabs(v);
  const auto fmt = a != 0 && (a < 1e-4 || a >= 1e21) ? std::chars_format::scientific : std::chars_format::fixed;
  const auto r = std::to_chars(buf, buf + sizeof buf, v, fmt);
  out.append(buf, r.ptr);
}

// Counters are integers: printed exactly, also past 2^53 where a double would round.
void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// HELP text escapes backslash and newline (the exposition format; quotes stay as they are).
void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

// Bounds sorted and unique, without NaN or +Inf (the +Inf bucket is always added): a duplicate or
// unsorted bound would render duplicate or non-cumulative buckets.
std::vector<double> clean_bounds(std::vector<double> b) {
  b.erase(std::remove_if(b.begin(), b.end(), [](double v) { return std::isnan(v) || std::isinf(v); }), b.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

void append_series(std::string& out, const std::string& name, std::string_view labels, std::string_view extra = {}) {
  out += name;
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
}

}  // namespace

histogram_metric::histogram_metric(std::vector<double> bounds)
    : bounds_(clean_bounds(std::move(bounds))), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void histogram_metric::observe(double v) {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

metrics_registry::family& metrics_registry::family_for(std::string_view name, std::string_view help, kind k) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), family{k, std::string(help), {}}).first;
  } else if (it->second.k != k) {
    throw std::logic_error("metric " + std::string(name) + " registered with two types");
  }
  return it->second;
}

counter_metric& metrics_registry::counter(std::string_view name, std::string_view help, std::string_view labels) {
  std::lock_guard lock(mu_);
  auto& f = family_for(name, help, kind::counter);
  for (auto& s : f.all)
    if (s.labels == labels) return *s.c;
  auto& c = counters_.emplace_back();
  f.all.push_back(series{std::string(labels), &c, nullptr, nullptr, {}});
  return c;
}

gauge_metric& metrics_registry::gauge(std::string_view name, std::string_view help, std::string_view labels) {
  std::lock_guard lock(mu_);
  auto& f = family_for(name, help, kind::gauge);
  for (auto& s : f.all) {
    if (s.labels != labels) continue;
    if (s.g) return *s.g;
    // A second series with the same labels would be a duplicate sample, which scrapers reject.
    throw std::logic_error("metric " + std::string(name) + " {" + std::string(labels) + "} is already a gauge_fn");
  }
  auto& g = gauges_.emplace_back();
  f.all.push_back(series{std::string(labels), nullptr, &g, nullptr, {}});
  return g;
}

histogram_metric& metrics_registry::histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                                              std::string_view labels) {
  std::lock_guard lock(mu_);
  auto& f = family_for(name, help, kind::histogram);
  for (auto& s : f.all)
    if (s.labels == labels) return *s.h;
  auto& h = histograms_.emplace_back(std::make_unique<histogram_metric>(std::move(bounds)));
  f.all.push_back(series{std::string(labels), nullptr, nullptr, h.get(), {}});
  return *h;
}

void metrics_registry::gauge_fn(std::string_view name, std::string_view help, std::string_view labels,
                                std::function<double()> fn) {
  std::lock_guard lock(mu_);
  auto& f = family_for(name, help, kind::gauge);
  for (auto& s : f.all) {
    if (s.labels != labels) continue;
    if (s.g)
      throw std::logic_error("metric " + std::string(name) + " {" + std::string(labels) + "} is already a gauge");
    s.fn = std::move(fn);
    return;
  }
  f.all.push_back(series{std::string(labels), nullptr, nullptr, nullptr, std::move(fn)});
}

std::string metrics_registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(8192);
  for (const auto& [name, f] : families_) {
    // A family registered again with other HELP text keeps the first: the format allows one HELP line.
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, f.help);
    out += "\n# TYPE ";
    out += name;
    out += f.k == kind::counter ? " counter\n" : f.k == kind::gauge ? " gauge\n" : " histogram\n";
    for (const auto& s : f.all) {
      if (s.c) {
        append_series(out, name, s.labels);
        append_number(out, s.c->value());
        out += '\n';
      } else if (s.g || s.fn) {
        append_series(out, name, s.labels);
        append_number(out, s.g ? s.g->value() : s.fn());
        out += '\n';
      } else if (s.h) {
        std::uint64_t cumulative = 0;
        const auto& b = s.h->bounds();
        for (std::size_t i = 0; i <= b.size(); ++i) {
          cumulative += s.h->bucket(i);
          std::string le = "le=\"";
          if (i < b.size()) {
            std::string num;
            append_number(num, b[i]);
            le += num;
          } else {
            le += "+Inf";
          }
          le += '"';
          append_series(out, name + "_bucket", s.labels, le);
          append_number(out, cumulative);
          out += '\n';
        }
        append_series(out, name + "_sum", s.labels);
        append_number(out, s.h->sum());
        out += '\n';
        // _count is the +Inf bucket, read once: an observe() racing the scrape cannot make them differ.
        append_series(out, name + "_count", s.labels);
        append_number(out, cumulative);
        out += '\n';
      }
    }
  }
  return out;
}

metrics_registry& metrics() {
  static metrics_registry r;
  return r;
}

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace aforo::util
