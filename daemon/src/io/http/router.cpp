// Routing table; see router.hpp.
#include "io/http/router.hpp"

#include <openssl/crypto.h>

#include <algorithm>

namespace aforo::io {

void router::add(std::string_view method, std::string_view path, handler_fn h) {
  routes_[std::string(path)].by_method.emplace_back(std::string(method), std::move(h));
}

void router::add_sync(std::string_view method, std::string_view path, std::function<http_response(http_request&)> h) {
  add(method, path, [h = std::move(h)](http_request& req, respond_fn respond) { respond(h(req)); });
}

void router::require_bearer(std::string token, std::vector<std::string> open_paths) {
  token_ = std::move(token);
  open_paths_ = std::move(open_paths);
  unauthorized_ = &util::metrics().counter(
      "aforo_sidecar_http_unauthorized_total",
      "Requests refused with 401 because server.auth_token_file is set and they carried no or a wrong bearer token.");
}

bool router::bearer_matches(std::string_view authorization, std::string_view token) {
  if (token.empty()) return false;
  // "Bearer" is case-insensitive (RFC 7235); one or more spaces before the token.
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != scheme[i]) return false;
  }
  std::string_view given = authorization.substr(scheme.size());
  if (given.empty() || given.front() != ' ') return false;
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  while (!given.empty() && (given.back() == ' ' || given.back() == '\t')) given.remove_suffix(1);
  // Constant time in the token's content; a length mismatch still does one full comparison.
  if (given.size() != token.size()) {
    (void)CRYPTO_memcmp(token.data(), token.data(), token.size());
    return false;
  }
  return CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

void router::dispatch(http_request& req, respond_fn respond) const {
  if (!token_.empty() && std::find(open_paths_.begin(), open_paths_.end(), req.path()) == open_paths_.end() &&
      !bearer_matches(req.header("Authorization"), token_)) {
    if (unauthorized_ != nullptr) unauthorized_->inc();
    auto r = http_response::error(401, "unauthorized", "missing or wrong bearer token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    respond(std::move(r));
    return;
  }
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

}  // namespace aforo::io
