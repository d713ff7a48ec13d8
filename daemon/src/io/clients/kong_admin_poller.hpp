// Reads the Kong Admin API for discovery: GET /services, /routes and /plugins, following Kong's
// pagination (`next`) to the last page, with the optional Kong-Admin-Token header.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/discovery/kong_admin.hpp"
#include "io/http/http_client.hpp"
#include "util/lifetime.hpp"

namespace aforo::io {

/// Outcome of one complete poll: the state, or why it failed (safe to log).
struct admin_poll_result {
  core::discovery::kong_admin_state state;
  std::string error;  ///< empty on success
  [[nodiscard]] bool ok() const { return error.empty(); }
};

/// Threading: io thread only; `client` must outlive the poller. Destroying the poller drops the
/// completion of a poll in flight.
class kong_admin_poller {
 public:
  /// `admin_url`: discovery.kong_admin_url; `token`: sent as Kong-Admin-Token when non-empty.
  kong_admin_poller(io::http_client& client, std::string admin_url, std::string token);
  ~kong_admin_poller();

  using done_fn = std::function<void(admin_poll_result)>;
  /// Fetches services, routes and plugins, every page of each; `done` runs once, on the io thread.
  /// Fails on the first network error, non-200 status or unparsable page, and past max_pages.
  void poll(done_fn done);

  /// Bound on pages per resource, so a server that always answers `next` cannot loop forever.
  static constexpr int max_pages = 1000;

 private:
  struct run;
  void fetch(std::shared_ptr<run> r, std::string url);

  io::http_client& client_;
  std::string base_;
  std::string token_;
  util::lifetime alive_;
};

}  // namespace aforo::io
