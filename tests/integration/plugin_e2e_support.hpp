// End-to-end support shared by the plugin itests: the unchanged aforo-metering plugin in real nginx (the
// harness tests/lua/nginx/start.sh renders, through our Kong PDK shim) in front of the real aforo-sidecar,
// which delivers to the fake Aforo ingest. Tests wait on the ingest's /_control/received, the sidecar's
// /metrics or a line of error.log, never on a fixed sleep.
#pragma once

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/testkit.hpp"

namespace plugin_e2e {

using namespace aforo::testkit;

inline constexpr const char* api_key = "sk_test_e2e_key_0123456789";
inline constexpr const char* tenant = "tenant_e2e";

/// The fake Aforo ingest (api_key, tenant), on a loopback port of its own.
class fake_ingest {
 public:
  fake_ingest()
      : proc_(std::make_unique<process>(std::vector<std::string>{fake_ingest_bin(), "--listen", "127.0.0.1:0",
                                                                 "--api-key", api_key, "--tenant", tenant})),
        address_(proc_->wait_for_listen()) {}

  [[nodiscard]] const std::string& address() const { return address_; }
  [[nodiscard]] std::string batch_url() const { return "http://" + address_ + "/v1/ingest/batch"; }
  [[nodiscard]] http_client client() const { return http_client(address_); }

  /// Events it stored (deduplicated by idempotencyKey) and the requests that brought them, parsed.
  [[nodiscard]] rapidjson::Document received() const {
    rapidjson::Document d;
    d.Parse(client().get("/_control/received").body.c_str());
    return d;
  }
  [[nodiscard]] static std::size_t count(const rapidjson::Document& d) {
    return d.IsObject() && d.HasMember("events") ? d["events"].Size() : 0;
  }
  /// Waits until it holds at least n events; returns how many it holds.
  std::size_t wait_events(std::size_t n, millis timeout = 15s) const {
    std::size_t have = 0;
    wait_until([&] { return (have = count(received())) >= n; }, timeout, 50ms);
    return have;
  }

 private:
  std::unique_ptr<process> proc_;
  std::string address_;
};

/// The nginx harness in front of sidecar_url, started by start.sh (daemonized) and stopped by stop.sh on
/// destruction. harness_env: start.sh's AFORO_* settings (AFORO_DAEMON=on is added first).
class nginx_harness {
 public:
  nginx_harness(std::string prefix, const std::string& sidecar_url, std::vector<std::string> harness_env = {})
      : prefix_(std::move(prefix)) {
    harness_env.insert(harness_env.begin(), "AFORO_DAEMON=on");
    // free_port() only names a port that was free a moment ago: a test running in parallel may bind it
    // first. nginx then fails with "Address already in use" (no reuseport in the harness), and the
    // harness starts again on other ports.
    for (int attempt = 1;; ++attempt) {
      port_ = free_port();
      process start({"/bin/bash", source_dir() + "/tests/lua/nginx/start.sh", prefix_, sidecar_url,
                     std::to_string(port_), std::to_string(free_port())},
                    harness_env);
      const auto rc = start.wait_exit(30s);
      start_output_ = start.output();
      if (rc == 0) break;
      stop();
      if (attempt < 3 && start_output_.find("Address already in use") != std::string::npos) continue;
      FAIL("nginx harness did not start: " << start_output_);
    }
  }
  ~nginx_harness() { stop(); }
  nginx_harness(const nginx_harness&) = delete;
  nginx_harness& operator=(const nginx_harness&) = delete;

  [[nodiscard]] std::string proxy() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] const std::string& prefix() const { return prefix_; }
  [[nodiscard]] std::string error_log_path() const { return prefix_ + "/logs/error.log"; }
  [[nodiscard]] std::string error_log() const { return read_file(error_log_path()); }
  /// Waits until error.log holds needle: for tests whose subject is the plugin's log line.
  [[nodiscard]] bool wait_log(std::string_view needle, millis timeout = 10s) const {
    return wait_file_contains(error_log_path(), needle, timeout);
  }
  /// What start.sh printed (nginx's messages while it loaded the plugin configs, before error.log opens).
  [[nodiscard]] const std::string& start_output() const { return start_output_; }
  /// `nginx -s reload`, waited for (the new workers are starting when it returns).
  void reload() const {
    process r({"/usr/sbin/nginx", "-p", prefix_, "-c", prefix_ + "/conf/nginx.conf", "-s", "reload"});
    REQUIRE(r.wait_exit(10s) == 0);
  }

 private:
  void stop() const {
    process stop({"/bin/bash", source_dir() + "/tests/lua/nginx/stop.sh", prefix_});
    stop.wait_exit(20s);
  }

  std::string prefix_;
  int port_ = 0;
  std::string start_output_;
};

/// cust_acme (a large monthly quota), cust_small (3 an hour) and cust_basic (outside the plan) of
/// advanced_search, the feature of /v1/search on the harness's search service.
inline constexpr const char* search_snapshot = R"(version: "e2e-1"
customers:
  cust_acme:
    plan: enterprise
    status: active
    features:
      advanced_search: { limit: 100000, period: month }
    revenue: { amount: 2000.00, period: month }
  cust_small:
    plan: starter
    status: active
    features:
      advanced_search: { limit: 3, period: hour }
    revenue: { amount: 29, period: month }
  cust_basic:
    plan: starter
    status: active
    features:
      basic_search: {}
    revenue: { amount: 29, period: month }
features:
  - feature: advanced_search
    match: { service: search, path_prefix: /v1/search }
    metric: search_calls
    unit_cost: 0.004
)";

/// How an e2e_env is set up; the defaults are the plugin_nginx tests'.
struct e2e_options {
  std::string snapshot = search_snapshot;  ///< the sidecar's entitlements snapshot (YAML)
  std::string entitlements_extra;          ///< lines under the sidecar's `entitlements:` (two-space indented)
  std::string sidecar_flush = "200ms";     ///< the sidecar's batch.flush_interval
  std::vector<std::string> harness_env;    ///< extra AFORO_* settings of start.sh
  std::string plugin_flush = "100";        ///< the plugin's flush_interval (ms)
};

/// The fake ingest, the sidecar and the nginx harness, started in that order and stopped in reverse.
/// The sidecar listens on a fixed port, so that a restarted sidecar is where the plugin's sidecar_url points.
class e2e_env {
 public:
  /// The search snapshot; entitlements_extra and harness_env as in e2e_options.
  explicit e2e_env(const std::string& entitlements_extra = "", std::vector<std::string> harness_env = {})
      : e2e_env(e2e_options{.entitlements_extra = entitlements_extra, .harness_env = std::move(harness_env)}) {}
  explicit e2e_env(e2e_options o) {
    const auto snap = dir_.write("snapshot.yaml", o.snapshot);
    sidecar_ = std::make_unique<sidecar_process>("listen: [\"127.0.0.1:" + std::to_string(free_port()) +
                                                     "\"]\n"
                                                     "aforo:\n  tenant_id: " +
                                                     std::string(tenant) + "\n  ingest_url: \"" + ingest_.batch_url() +
                                                     "\"\n"
                                                     "entitlements:\n  source: \"file:" +
                                                     snap + "\"\n" + o.entitlements_extra +
                                                     "batch:\n  flush_interval: " + o.sidecar_flush + "\n",
                                                 std::vector<std::string>{std::string("AFORO_API_KEY=") + api_key});
    o.harness_env.insert(o.harness_env.begin(), "AFORO_FLUSH_INTERVAL=" + o.plugin_flush);
    nginx_ = std::make_unique<nginx_harness>(dir_.path() + "/nginx", "http://" + sidecar_->address(),
                                             std::move(o.harness_env));
  }

  [[nodiscard]] std::string proxy() const { return nginx_->proxy(); }
  [[nodiscard]] const std::string& prefix() const { return nginx_->prefix(); }
  [[nodiscard]] const temp_dir& dir() const { return dir_; }
  [[nodiscard]] const nginx_harness& nginx() const { return *nginx_; }
  [[nodiscard]] std::string error_log() const { return nginx_->error_log(); }
  [[nodiscard]] bool wait_log(std::string_view needle, millis timeout = 10s) const {
    return nginx_->wait_log(needle, timeout);
  }
  [[nodiscard]] const std::string& start_output() const { return nginx_->start_output(); }
  sidecar_process& sidecar() { return *sidecar_; }
  [[nodiscard]] const fake_ingest& ingest() const { return ingest_; }
  [[nodiscard]] rapidjson::Document received() const { return ingest_.received(); }
  std::size_t wait_events(std::size_t n, millis timeout = 15s) const { return ingest_.wait_events(n, timeout); }

  /// Waits until the sidecar has delivered to ingest every event it accepted, at least n of them, and
  /// returns how many it accepted: once it holds, an event the plugin sent is counted here.
  double wait_delivered(double n, millis timeout = 15s) {
    double accepted = -1;
    wait_until(
        [&] {
          accepted = sidecar_->metric("aforo_sidecar_events_accepted_total");
          return accepted >= n && sidecar_->metric("aforo_sidecar_events_delivered_total") == accepted;
        },
        timeout, 50ms);
    return accepted;
  }

 private:
  temp_dir dir_;
  fake_ingest ingest_;
  std::unique_ptr<sidecar_process> sidecar_;
  std::unique_ptr<nginx_harness> nginx_;
};

inline http_reply get(const std::string& address, const std::string& target,
                      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  http_client c(address);
  return c.request("GET", target, {}, headers);
}

}  // namespace plugin_e2e
