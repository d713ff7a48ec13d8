// What every part of the daemon plugs in through: routes, start, live reload, graceful stop, and the
// facts it reports to /readyz and /v1/handshake.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "config/config.hpp"
#include "config/secrets.hpp"
#include "io/http/router.hpp"

namespace boost::asio {
class io_context;
}

namespace aforo::app {

/// Shared by the services; lives as long as the sidecar. Everything runs on the io thread.
struct context {
  boost::asio::io_context& ioc;
  config::sidecar_config config;  ///< the config in force (replaced on a successful SIGHUP reload)
  config::secrets secrets;
  std::string config_path;  ///< empty when running on built-in defaults
};

/// Readiness and handshake facts a service contributes (JSON fragments are appended by the service).
struct status_report {
  bool ready = true;
  std::string not_ready_reason;  ///< why, when not ready
  /// Facts reported in the /readyz body whatever the verdict: key -> raw JSON value.
  std::map<std::string, std::string> fields;
};

class service {
 public:
  virtual ~service() = default;
  virtual void register_routes(io::router& routes) = 0;
  /// Called once the listeners are bound, before the first request is served.
  virtual void start() {}
  /// A new config passed validation; apply what can be applied live.
  virtual void reload(const config::sidecar_config& /*next*/) {}
  /// Graceful stop after the server drained: flush, persist; call done exactly once.
  virtual void stop(std::function<void()> done) { done(); }
  /// server.shutdown_timeout passed before stop() was reached: persist what was acknowledged, now
  /// and synchronously. false when something acknowledged could not be persisted (exit non-zero).
  virtual bool persist_now() { return true; }
  /// Adds this service's readiness to the report.
  virtual void readiness(status_report& /*r*/) const {}
  /// Sets /v1/handshake members: key -> raw JSON value (e.g. fields["ingest"] = "\"ok\"").
  virtual void handshake_fields(std::map<std::string, std::string>& /*fields*/) const {}
};

}  // namespace aforo::app
