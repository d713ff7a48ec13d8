// The daemon: owns the io_context, the HTTP server, the routing table and the services (daemon_graph);
// handles SIGTERM/SIGINT (drain, then stop services, exit 0 within server.shutdown_timeout) and SIGHUP (reload).
#pragma once

#include <memory>
#include <string>

#include "app/service.hpp"

namespace aforo::app {

class sidecar {
 public:
  sidecar(config::sidecar_config cfg, config::secrets sec, std::string config_path);
  ~sidecar();

  /// Binds every listener (throws std::runtime_error with a clear message on failure), starts the
  /// services and serves until a stop signal. Returns the process exit code.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace aforo::app
