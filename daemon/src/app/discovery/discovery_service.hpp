// Discovery (docs/design/discovery.md): the API catalog built from accepted usage events and the Kong Admin
// API, persisted in discovery.state_dir, served at GET /v1/catalog and pushed to
// POST {aforo.control_url}/v1/catalog when its revision moves.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "app/service.hpp"
#include "core/discovery/catalog.hpp"
#include "core/discovery/catalog_push.hpp"
#include "core/pipeline/event_validation.hpp"
#include "util/lifetime.hpp"

namespace aforo::io {
class http_client;
}

namespace aforo::io {
class kong_admin_poller;
}  // namespace aforo::io

namespace aforo::app {

/// With discovery.enabled false nothing is captured, no file is touched, and GET /v1/catalog
/// answers 200 `{"enabled":false,...}`. Otherwise:
/// - at start the state file {state_dir}/catalog.json is loaded (a corrupt one is logged, moved
///   aside to catalog.json.corrupt, and the catalog starts empty);
/// - the Admin API is polled at start and every discovery.interval (an empty kong_admin_url turns
///   polling off); failures keep the last declared state and are logged once per change of state;
/// - every change (new revision) is written at once (write to a temp file, fsync, rename), counts
///   and last-seen times at most every few seconds, and everything at stop;
/// - each new revision is pushed (one push in flight; a newer revision replaces a pending one) with
///   the ingest's credentials, retried per retry.* (then every discovery.interval); a 4xx other than
///   401/403/408/429 rejects that revision (logged, not retried).
/// Discovery settings are restart-only (config/schema.hpp). Threading: io thread only.
class discovery_service final : public service {
 public:
  explicit discovery_service(context& ctx);
  ~discovery_service() override;

  void register_routes(io::router& routes) override;
  void start() override;
  void stop(std::function<void()> done) override;

  /// Records accepted usage events (io thread). No-op when discovery is disabled. The usage pipeline
  /// calls it right before custody takes the events; a batch refused afterwards (503) and sent again
  /// is counted twice: counts are indicative, operations and versions are not affected.
  void observe(const std::vector<core::accepted_event>& events);

 private:
  struct metrics_set;

  [[nodiscard]] bool enabled() const { return ctx_.config.discovery.enabled; }
  void load();
  void save();
  void schedule_save();
  void after_change(bool revision_moved);
  void poll_admin();
  void schedule_poll();
  void maybe_push();
  void perform_push(const core::discovery::push_step& step);
  void send_push();
  void on_push_result(int status, bool network_error, bool timed_out, std::string host, std::string error);
  void update_gauges();
  [[nodiscard]] std::string state_file() const;

  context& ctx_;
  core::discovery::catalog catalog_;
  std::unique_ptr<io::http_client> client_;
  std::unique_ptr<io::kong_admin_poller> poller_;
  boost::asio::steady_timer poll_timer_;
  boost::asio::steady_timer save_timer_;
  boost::asio::steady_timer push_timer_;
  std::unique_ptr<metrics_set> metrics_;
  util::lifetime alive_;

  bool started_ = false;
  bool stopped_ = false;
  bool save_pending_ = false;
  std::string save_error_;   // last persistence error logged
  std::string admin_error_;  // last Admin API error logged ("" = healthy)
  bool admin_ever_ok_ = false;

  core::discovery::catalog_push push_;  // when to push and what an answer means
  std::string push_error_;              // last push error logged
};

}  // namespace aforo::app
