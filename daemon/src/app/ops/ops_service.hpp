// Operational endpoints: /healthz, /readyz, /metrics and /v1/handshake.
#pragma once

#include <utility>
#include <vector>

#include "app/service.hpp"

namespace aforo::app {

class ops_service : public service {
 public:
  /// `reported`: the services whose readiness and handshake facts are reported, in that order (the
  /// first not ready gives the reason; a later one's fact replaces an earlier one's). Not owned,
  /// they outlive this.
  ops_service(context& ctx, std::vector<const service*> reported) : ctx_(ctx), all_(std::move(reported)) {}
  void register_routes(io::router& routes) override;
  void set_listening(bool on) { listening_ = on; }

 private:
  context& ctx_;
  std::vector<const service*> all_;
  bool listening_ = false;
};

}  // namespace aforo::app
