// Prometheus metrics: a process-wide registry of counters, gauges and histograms, rendered in the
// text exposition format. Names are full (`aforo_sidecar_*`); labels are passed preformatted, e.g.
// R"(decision="allow",reason="ok")". Registration takes a mutex and returns a reference that stays
// valid for the life of the process: hot paths look a metric up once and keep the reference.
// Updating a metric is lock-free (relaxed atomics) and safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::util {

class counter_metric {
 public:
  void inc(std::uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class gauge_metric {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  void add(double d) { v_.fetch_add(d, std::memory_order_relaxed); }
  [[nodiscard]] double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

/// Cumulative histogram with fixed upper bounds (seconds, bytes, ...), as Prometheus expects.
class histogram_metric {
 public:
  explicit histogram_metric(std::vector<double> bounds);
  void observe(double v);
  [[nodiscard]] const std::vector<double>& bounds() const { return bounds_; }
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  [[nodiscard]] double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bound, not cumulative
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

class metrics_registry {
 public:
  counter_metric& counter(std::string_view name, std::string_view help, std::string_view labels = {});
  gauge_metric& gauge(std::string_view name, std::string_view help, std::string_view labels = {});
  histogram_metric& histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                              std::string_view labels = {});
  /// A gauge computed at scrape time (queue depths, ages). Re-registering the same series replaces it.
  void gauge_fn(std::string_view name, std::string_view help, std::string_view labels, std::function<double()> fn);

  /// The whole registry in Prometheus text format 0.0.4, families sorted by name.
  [[nodiscard]] std::string render() const;

 private:
  enum class kind { counter, gauge, histogram };
  struct series {
    std::string labels;
    counter_metric* c = nullptr;
    gauge_metric* g = nullptr;
    histogram_metric* h = nullptr;
    std::function<double()> fn;
  };
  struct family {
    kind k;
    std::string help;
    std::vector<series> all;
  };
  family& family_for(std::string_view name, std::string_view help, kind k);

  mutable std::mutex mu_;
  std::map<std::string, family, std::less<>> families_;
  std::deque<counter_metric> counters_;
  std::deque<gauge_metric> gauges_;
  std::deque<std::unique_ptr<histogram_metric>> histograms_;
};

/// The process-wide registry served at GET /metrics.
metrics_registry& metrics();

/// Escapes a label value for the exposition format (backslash, quote, newline).
std::string escape_label(std::string_view v);

}  // namespace aforo::util
