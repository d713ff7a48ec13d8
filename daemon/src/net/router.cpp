// Routing table; see router.hpp.
#include "net/router.hpp"

namespace aforo::net {

void router::add(std::string_view method, std::string_view path, handler_fn h) {
  routes_[std::string(path)].by_method.emplace_back(std::string(method), std::move(h));
}

void router::add_sync(std::string_view method, std::string_view path,
                      std::function<http_response(http_request&)> h) {
  add(method, path, [h = std::move(h)](http_request& req, respond_fn respond) { respond(h(req)); });
}

void router::dispatch(http_request& req, respond_fn respond) const {
  const auto it = routes_.find(req.path());
  if (it == routes_.end()) {
    respond(http_response::error(404, "not_found", "no such endpoint: " + std::string(req.path())));
    return;
  }
  std::string allow;
  for (const auto& [method, h] : it->second.by_method) {
    if (method == req.method) {
      h(req, std::move(respond));
      return;
    }
    if (!allow.empty()) allow += ", ";
    allow += method;
  }
  auto r = http_response::error(405, "method_not_allowed", "use " + allow);
  r.headers.emplace_back("Allow", allow);
  respond(std::move(r));
}

}  // namespace aforo::net
