// The metrics registry renders valid Prometheus text.
#include <catch2/catch.hpp>

#include "util/metrics.hpp"

using aforo::util::metrics_registry;

TEST_CASE("metrics: counters, gauges and histograms render in exposition format", "[metrics]") {
  metrics_registry r;
  auto& ok = r.counter("aforo_sidecar_test_checks_total", "Checks", R"(decision="allow")");
  auto& no = r.counter("aforo_sidecar_test_checks_total", "Checks", R"(decision="block")");
  ok.inc(3);
  no.inc();
  CHECK(&r.counter("aforo_sidecar_test_checks_total", "Checks", R"(decision="allow")") == &ok);
  r.gauge("aforo_sidecar_test_depth", "Depth").set(7);
  r.gauge_fn("aforo_sidecar_test_age_seconds", "Age", "", [] { return 1.5; });
  auto& h = r.histogram("aforo_sidecar_test_latency_seconds", "Latency", {0.001, 0.01});
  h.observe(0.0005);
  h.observe(0.005);
  h.observe(1);
  const auto text = r.render();
  CHECK(text.find("# TYPE aforo_sidecar_test_checks_total counter\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_checks_total{decision=\"allow\"} 3\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_checks_total{decision=\"block\"} 1\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_depth 7\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_age_seconds 1.5\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_latency_seconds_bucket{le=\"0.001\"} 1\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_latency_seconds_bucket{le=\"0.01\"} 2\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_latency_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("aforo_sidecar_test_latency_seconds_count 3\n") != std::string::npos);
  CHECK_THROWS(r.gauge("aforo_sidecar_test_checks_total", "wrong type"));
  CHECK(aforo::util::escape_label("a\"b\\c\n") == "a\\\"b\\\\c\\n");
}
