// The routing table: (method, exact path) -> handler. 404 for an unknown path, 405 with Allow for a
// known path and another method.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/http_types.hpp"

namespace aforo::net {

class router {
 public:
  void add(std::string_view method, std::string_view path, handler_fn h);
  /// Synchronous convenience: the handler returns the response.
  void add_sync(std::string_view method, std::string_view path, std::function<http_response(http_request&)> h);
  void dispatch(http_request& req, respond_fn respond) const;

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
};

}  // namespace aforo::net
