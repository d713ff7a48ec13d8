// The `control_plane` snapshot source: GET {aforo.control_url}/v1/entitlements/snapshot every
// entitlements.refresh_interval with If-None-Match, so an unchanged snapshot costs a 304.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "app/entitlements/snapshot_source.hpp"
#include "io/http/http_client.hpp"
#include "util/lifetime.hpp"

namespace aforo::app {

/// 200 with a valid snapshot -> loaded (and its ETag kept); 304 -> confirmed; anything else (network
/// error, other status, invalid snapshot) -> failed, and the snapshot in force keeps serving.
/// Failures are logged once per change of state (then at debug level), recovery once.
/// Until a first snapshot is loaded the request is retried every min(refresh_interval, 2 s).
/// Threading: io thread only.
class control_plane_snapshot_source final : public snapshot_source {
 public:
  /// Throws std::runtime_error when aforo.ca_file cannot be loaded (startup).
  control_plane_snapshot_source(const context& ctx, snapshot_events events);
  ~control_plane_snapshot_source() override;

  void start() override;
  void refresh_now() override;
  [[nodiscard]] std::chrono::milliseconds confirm_period() const override;
  [[nodiscard]] std::string_view kind() const override { return "control_plane"; }

 private:
  void fetch();
  void on_response(io::client_result r);
  void fail(const std::string& why);
  void schedule();

  const context& ctx_;
  snapshot_events events_;
  std::string url_;
  io::http_client client_;
  boost::asio::steady_timer timer_;
  std::string etag_;
  bool have_snapshot_ = false;
  bool in_flight_ = false;
  bool again_ = false;   // refresh_now while a request was in flight
  std::string failing_;  // the failure last logged; empty while healthy
  util::lifetime alive_;
};

}  // namespace aforo::app
