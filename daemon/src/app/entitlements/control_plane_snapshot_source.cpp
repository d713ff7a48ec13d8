// The control-plane snapshot source; see control_plane_snapshot_source.hpp.
#include "app/entitlements/control_plane_snapshot_source.hpp"

#include "io/clients/aforo_client.hpp"
#include <algorithm>

#include "config/snapshot_yaml.hpp"
#include "util/log.hpp"

namespace aforo::app {

namespace {
constexpr std::size_t max_snapshot_body = 256 * 1024 * 1024;  // a snapshot of many customers is large

std::string snapshot_url(std::string base) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/v1/entitlements/snapshot";
}
}  // namespace

control_plane_snapshot_source::control_plane_snapshot_source(const context& ctx, snapshot_events events)
    : ctx_(ctx),
      events_(std::move(events)),
      url_(snapshot_url(ctx.config.aforo.control_url)),
      client_(ctx.ioc, io::aforo_client_options(ctx.config, max_snapshot_body)),
      timer_(ctx.ioc) {}

control_plane_snapshot_source::~control_plane_snapshot_source() {
  alive_.end();
  timer_.cancel();
}

std::chrono::milliseconds control_plane_snapshot_source::confirm_period() const {
  return ctx_.config.entitlements.refresh_interval;
}

void control_plane_snapshot_source::start() { fetch(); }

void control_plane_snapshot_source::refresh_now() {
  if (in_flight_) {
    again_ = true;
    return;
  }
  timer_.cancel();
  fetch();
}

void control_plane_snapshot_source::schedule() {
  auto wait = ctx_.config.entitlements.refresh_interval;
  if (!have_snapshot_) wait = std::min<std::chrono::milliseconds>(wait, std::chrono::seconds(2));
  timer_.expires_after(wait);
  timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired() || in_flight_) return;
    fetch();
  });
}

void control_plane_snapshot_source::fetch() {
  io::client_request req;
  req.method = "GET";
  req.url = url_;
  // Without a key the control plane decides (a local one may not need it).
  req.headers = io::aforo_auth_headers(ctx_.config, ctx_.secrets);
  req.headers.emplace_back("Accept", "application/json");
  if (!etag_.empty() && have_snapshot_) req.headers.emplace_back("If-None-Match", etag_);
  in_flight_ = true;
  client_.async_request(std::move(req), [this, alive = alive_.watch()](io::client_result r) {
    if (alive.expired()) return;
    in_flight_ = false;
    on_response(std::move(r));
    if (again_) {
      again_ = false;
      timer_.cancel();
      fetch();
      return;
    }
    schedule();
  });
}

void control_plane_snapshot_source::fail(const std::string& why) {
  if (why != failing_) {
    util::log::error("entitlements: " + why + (have_snapshot_ ? "; the snapshot in force keeps serving" : ""));
    failing_ = why;
  } else {
    util::log::debug("entitlements: still failing: " + why);
  }
  events_.failed();
}

void control_plane_snapshot_source::on_response(io::client_result r) {
  if (!r.ok()) {
    if (r.error == io::client_result::error_kind::timeout || r.error == io::client_result::error_kind::connect_timeout)
      return fail("ERROR network timeout to " + r.host);
    return fail("control plane " + r.host + " unreachable (" + std::string(io::to_string(r.error)) +
                "): " + r.error_message);
  }
  if (r.status == 401 || r.status == 403)
    return fail("ERROR invalid API key (" + std::to_string(r.status) + ") fetching the entitlement snapshot");
  if (r.status == 304 && have_snapshot_) {
    if (!failing_.empty()) util::log::info("entitlements: control plane reachable again; snapshot unchanged");
    failing_.clear();
    events_.confirmed();
    return;
  }
  if (r.status != 200)
    return fail("control plane answered " + std::to_string(r.status) + " for the entitlement snapshot");

  auto parsed = config::parse_snapshot_text(r.body);
  if (!parsed.ok()) {
    std::string why =
        "control plane sent an invalid snapshot (" + std::to_string(parsed.errors.size()) + " problem(s))";
    if (why != failing_)
      for (const auto& e : parsed.errors) util::log::error("entitlements: snapshot: " + e);
    return fail(why);
  }
  if (!failing_.empty()) util::log::info("entitlements: control plane reachable again");
  failing_.clear();
  etag_ = std::string(r.header("ETag"));
  have_snapshot_ = true;
  auto snap = std::make_shared<const core::entitlements::snapshot>(std::move(*parsed.value));
  util::log::info("entitlements: loaded snapshot version " + snap->version + " from the control plane (" +
                  std::to_string(snap->customers.size()) + " customers)");
  events_.loaded(std::move(snap), std::move(r.body));
}

}  // namespace aforo::app
