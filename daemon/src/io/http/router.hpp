// The routing table: (method, exact path) -> handler. 404 for an unknown path, 405 with Allow for a
// known path and another method. With a local API token (server.auth_token_file), every path but the
// open ones (/healthz, /readyz, /metrics) first needs `Authorization: Bearer <token>`, else 401.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/http/http_types.hpp"
#include "util/metrics.hpp"

namespace aforo::io {

class router {
 public:
  void add(std::string_view method, std::string_view path, handler_fn h);
  /// Synchronous convenience: the handler returns the response.
  void add_sync(std::string_view method, std::string_view path, std::function<http_response(http_request&)> h);
  void dispatch(http_request& req, respond_fn respond) const;

  /// With a non-empty token, a request for any path but `open_paths` (known or not) without
  /// `Authorization: Bearer <token>` gets 401 with `WWW-Authenticate: Bearer` and never reaches a
  /// handler; counted in aforo_sidecar_http_unauthorized_total. An empty token turns the check off.
  void require_bearer(std::string token, std::vector<std::string> open_paths);

  /// Whether `authorization` (the header's value) is "Bearer <token>", compared in constant time.
  [[nodiscard]] static bool bearer_matches(std::string_view authorization, std::string_view token);

 private:
  struct route {
    std::vector<std::pair<std::string, handler_fn>> by_method;
  };
  // Transparent, so a look-up by the request's path view builds no string.
  struct path_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, route, path_hash, std::equal_to<>> routes_;
  std::string token_;
  std::vector<std::string> open_paths_;
  util::counter_metric* unauthorized_ = nullptr;
};

}  // namespace aforo::io
