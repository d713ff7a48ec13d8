// Operational endpoints: /healthz, /readyz, /metrics and /v1/handshake.
#pragma once

#include <memory>
#include <vector>

#include "app/service.hpp"

namespace aforo::app {

class ops_service : public service {
 public:
  /// `all` lists every service (including this one) whose readiness and handshake facts are reported.
  ops_service(context& ctx, const std::vector<std::unique_ptr<service>>& all) : ctx_(ctx), all_(all) {}
  void register_routes(net::router& routes) override;
  void set_listening(bool on) { listening_ = on; }

 private:
  context& ctx_;
  const std::vector<std::unique_ptr<service>>& all_;
  bool listening_ = false;
};

}  // namespace aforo::app
