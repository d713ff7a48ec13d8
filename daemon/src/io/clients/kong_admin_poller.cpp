// The Kong Admin API poller; see kong_admin_poller.hpp.
#include "io/clients/kong_admin_poller.hpp"

#include <array>
#include <utility>

namespace aforo::io {

namespace dsc = core::discovery;

struct kong_admin_poller::run {
  done_fn done;
  admin_poll_result result;
  std::size_t resource = 0;  // index into resources
  int pages = 0;
  std::string last_url;
};

namespace {
constexpr std::array<const char*, 3> resources = {"/services", "/routes", "/plugins"};
constexpr const char* first_page_query = "?size=1000";  // Kong's largest page
}  // namespace

kong_admin_poller::kong_admin_poller(io::http_client& client, std::string admin_url, std::string token)
    : client_(client), base_(std::move(admin_url)), token_(std::move(token)) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

kong_admin_poller::~kong_admin_poller() = default;

void kong_admin_poller::poll(done_fn done) {
  auto r = std::make_shared<run>();
  r->done = std::move(done);
  fetch(r, base_ + resources[0] + first_page_query);
}

void kong_admin_poller::fetch(std::shared_ptr<run> r, std::string url) {
  io::client_request req;
  req.method = "GET";
  req.url = url;
  req.headers.emplace_back("Accept", "application/json");
  if (!token_.empty()) req.headers.emplace_back("Kong-Admin-Token", token_);
  r->last_url = url;
  client_.async_request(std::move(req), [this, r, alive = alive_.watch()](io::client_result res) {
    if (alive.expired()) return;
    const char* resource = resources[r->resource];
    auto fail = [&](std::string why) {
      r->result.error = std::string("GET ") + resource + ": " + why;
      r->result.state = {};
      r->done(std::move(r->result));
    };
    if (!res.ok()) return fail(std::string(io::to_string(res.error)) + " (" + res.error_message + ")");
    if (res.status == 401 || res.status == 403)
      return fail("HTTP " + std::to_string(res.status) + " (check discovery.admin_token_file)");
    if (res.status != 200) return fail("HTTP " + std::to_string(res.status));

    std::string next;
    std::string offset;
    std::string error;
    auto take = [&](auto page, auto& into) {
      error = page.error;
      next = page.next;
      offset = page.offset;
      for (auto& item : page.data) into.push_back(std::move(item));
    };
    switch (r->resource) {
      case 0:
        take(dsc::parse_services_page(res.body), r->result.state.services);
        break;
      case 1:
        take(dsc::parse_routes_page(res.body), r->result.state.routes);
        break;
      default:
        take(dsc::parse_plugins_page(res.body), r->result.state.plugins);
        break;
    }
    if (!error.empty()) return fail(error);

    std::string next_url = dsc::next_page_url(base_, resource, next, offset);
    if (!next_url.empty()) {
      if (++r->pages >= max_pages || next_url == r->last_url) return fail("pagination does not end");
      return fetch(r, std::move(next_url));
    }
    if (++r->resource == resources.size()) return r->done(std::move(r->result));
    r->pages = 0;
    fetch(r, base_ + resources[r->resource] + first_page_query);
  });
}

}  // namespace aforo::io
