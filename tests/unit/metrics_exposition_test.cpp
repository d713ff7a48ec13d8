// Exposition-format corner cases of the metrics registry: HELP escaping, exact numbers, histogram
// bounds, a family registered twice, and series that would collide.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "util/metrics.hpp"

using aforo::util::metrics_registry;

namespace {
int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("metrics: HELP text escapes backslashes and newlines so it stays on one line", "[metrics]") {
  metrics_registry r;
  r.counter("aforo_sidecar_t_total", "path C:\\spool\nsecond line").inc();
  const auto text = r.render();
  CHECK(text.find("# HELP aforo_sidecar_t_total path C:\\\\spool\\nsecond line\n") != std::string::npos);
  CHECK(count_of(text, "\n") == 3);  // HELP, TYPE, one sample
}

TEST_CASE("metrics: a family registered again with other HELP text renders one HELP line, the first", "[metrics]") {
  metrics_registry r;
  r.counter("aforo_sidecar_t_total", "First help", R"(a="1")").inc();
  r.counter("aforo_sidecar_t_total", "Second help", R"(a="2")").inc(2);
  const auto text = r.render();
  CHECK(count_of(text, "# HELP aforo_sidecar_t_total") == 1);
  CHECK(count_of(text, "# TYPE aforo_sidecar_t_total") == 1);
  CHECK(text.find("# HELP aforo_sidecar_t_total First help\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_t_total{a=\"2\"} 2\n") != std::string::npos);
}

TEST_CASE("metrics: counters past 2^53 are printed exactly", "[metrics]") {
  metrics_registry r;
  r.counter("aforo_sidecar_t_bytes_total", "Bytes").inc(9007199254740993ULL);
  CHECK(r.render().find("aforo_sidecar_t_bytes_total 9007199254740993\n") != std::string::npos);
}

TEST_CASE("metrics: gauges print whole numbers as integers and fractions exactly", "[metrics]") {
  metrics_registry r;
  r.gauge("aforo_sidecar_t_a", "A").set(100000);
  r.gauge("aforo_sidecar_t_b", "B").set(0.1);
  r.gauge("aforo_sidecar_t_c", "C").set(1e20);
  r.gauge("aforo_sidecar_t_d", "D").set(std::numeric_limits<double>::quiet_NaN());
  const auto text = r.render();
  CHECK(text.find("aforo_sidecar_t_a 100000\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_t_b 0.1\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_t_c 100000000000000000000\n") != std::string::npos);
  r.gauge("aforo_sidecar_t_e", "E").set(2.5e-05);
  r.gauge("aforo_sidecar_t_f", "F").set(1e21);
  const auto more = r.render();
  CHECK(more.find("aforo_sidecar_t_e 2.5e-05\n") != std::string::npos);
  CHECK(more.find("aforo_sidecar_t_f 1e+21\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_t_d NaN\n") != std::string::npos);
}

TEST_CASE("metrics: histogram bounds are sorted and unique, le is exact, +Inf once, _count equals it", "[metrics]") {
  metrics_registry r;
  auto& h =
      r.histogram("aforo_sidecar_t_seconds", "T", {0.5, 0.0001, 0.5, std::numeric_limits<double>::infinity(), 0.25});
  h.observe(0.00005);  // le="0.0001", not "1e-04"
  h.observe(0.3);
  h.observe(7);
  const auto text = r.render();
  const auto b1 = text.find("aforo_sidecar_t_seconds_bucket{le=\"0.0001\"} 1\n");
  const auto b2 = text.find("aforo_sidecar_t_seconds_bucket{le=\"0.25\"} 1\n");
  const auto b3 = text.find("aforo_sidecar_t_seconds_bucket{le=\"0.5\"} 2\n");
  const auto b4 = text.find("aforo_sidecar_t_seconds_bucket{le=\"+Inf\"} 3\n");
  REQUIRE(b1 != std::string::npos);
  REQUIRE(b2 != std::string::npos);
  REQUIRE(b3 != std::string::npos);
  REQUIRE(b4 != std::string::npos);
  CHECK((b1 < b2 && b2 < b3 && b3 < b4));
  CHECK(count_of(text, "le=\"0.5\"") == 1);
  CHECK(count_of(text, "le=\"+Inf\"") == 1);
  CHECK(text.find("aforo_sidecar_t_seconds_count 3\n") != std::string::npos);
}

TEST_CASE("metrics: histogram labels come before le", "[metrics]") {
  metrics_registry r;
  r.histogram("aforo_sidecar_t_seconds", "T", {1}, R"(route="check")").observe(2);
  CHECK(r.render().find("aforo_sidecar_t_seconds_bucket{route=\"check\",le=\"1\"} 0\n") != std::string::npos);
}

TEST_CASE("metrics: a gauge and a gauge_fn with the same labels are refused, not rendered twice", "[metrics]") {
  metrics_registry r;
  r.gauge_fn("aforo_sidecar_t_depth", "Depth", "", [] { return 1.0; });
  CHECK_THROWS_AS(r.gauge("aforo_sidecar_t_depth", "Depth"), std::logic_error);
  r.gauge("aforo_sidecar_t_other", "Other", R"(q="a")").set(2);
  CHECK_THROWS_AS(r.gauge_fn("aforo_sidecar_t_other", "Other", R"(q="a")", [] { return 3.0; }), std::logic_error);
  r.gauge_fn("aforo_sidecar_t_depth", "Depth", "", [] { return 5.0; });  // replacing a gauge_fn is fine
  const auto text = r.render();
  CHECK(count_of(text, "\naforo_sidecar_t_depth ") == 1);  // one sample line
  CHECK(text.find("aforo_sidecar_t_depth 5\n") != std::string::npos);
  CHECK(count_of(text, "aforo_sidecar_t_other{") == 1);
}
