// Discovery glue; see discovery_service.hpp.
#include "app/discovery/discovery_service.hpp"

#include "io/clients/aforo_client.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>

#include "io/clients/kong_admin_poller.hpp"
#include "core/discovery/catalog_json.hpp"
#include "core/discovery/catalog_push.hpp"
#include "core/discovery/event_observation.hpp"
#include "io/atomic_file.hpp"
#include "io/file_watch.hpp"
#include "io/http/http_client.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::app {

namespace dsc = core::discovery;
namespace fs = std::filesystem;

namespace {

constexpr std::chrono::seconds save_delay{2};  // counts and last-seen times are written this lazily

dsc::epoch_ms wall_now() { return util::unix_now_ms(); }

dsc::catalog_limits limits_of(const config::discovery_config& d) {
  dsc::catalog_limits l;
  l.stale_after_ms = d.stale_after.count();
  l.max_operations_per_service = d.max_operations_per_service;
  return l;
}

constexpr std::size_t max_admin_page = 256 * 1024 * 1024;  // Admin API pages of large Kong configs
constexpr std::size_t max_state_file = 512 * 1024 * 1024;  // catalog.json of a very large catalog

std::string read_token(const std::string& path) {
  if (path.empty()) return {};
  auto content = io::read_whole_file(path);
  if (!content) {
    util::log::error("discovery: cannot read discovery.admin_token_file " + path + "; polling without a token");
    return {};
  }
  std::string t = std::move(*content);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

struct discovery_service::metrics_set {
  util::gauge_metric& apis;
  util::gauge_metric& operations;
  util::gauge_metric& revision;
  util::counter_metric& polls_ok;
  util::counter_metric& polls_error;
  util::counter_metric& pushes_ok;
  util::counter_metric& pushes_retry;
  util::counter_metric& pushes_failed;
  util::counter_metric& pushes_rejected;
  util::counter_metric& ops_dropped;
  util::counter_metric& requests_folded;
  util::counter_metric& events_ignored;

  metrics_set()
      : apis(gauge("aforo_sidecar_discovery_apis", "APIs (Kong services) in the discovered catalog")),
        operations(gauge("aforo_sidecar_discovery_operations", "Operations in the discovered catalog")),
        revision(gauge("aforo_sidecar_discovery_catalog_revision", "Revision of the discovered catalog")),
        polls_ok(poll(R"(result="ok")")),
        polls_error(poll(R"(result="error")")),
        pushes_ok(push(R"(result="ok")")),
        pushes_retry(push(R"(result="retry")")),
        pushes_failed(push(R"(result="failed")")),
        pushes_rejected(push(R"(result="rejected")")),
        ops_dropped(util::metrics().counter("aforo_sidecar_discovery_operations_dropped_total",
                                            "New operations not recorded: the service is at "
                                            "discovery.max_operations_per_service (or too many APIs)")),
        requests_folded(util::metrics().counter("aforo_sidecar_discovery_requests_folded_total",
                                                "Requests counted into an existing operation because the "
                                                "service is at discovery.max_operations_per_service")),
        events_ignored(util::metrics().counter("aforo_sidecar_discovery_events_ignored_total",
                                               "Usage events without a service, route, method or path")) {}

  static util::gauge_metric& gauge(const char* name, const char* help) { return util::metrics().gauge(name, help); }
  static util::counter_metric& poll(const char* labels) {
    return util::metrics().counter("aforo_sidecar_discovery_admin_polls_total", "Kong Admin API polls by result",
                                   labels);
  }
  static util::counter_metric& push(const char* labels) {
    return util::metrics().counter("aforo_sidecar_discovery_pushes_total",
                                   "Catalog pushes to the control plane by result", labels);
  }
};

discovery_service::discovery_service(context& ctx)
    : ctx_(ctx),
      catalog_(limits_of(ctx.config.discovery)),
      poll_timer_(ctx.ioc),
      save_timer_(ctx.ioc),
      push_timer_(ctx.ioc),
      metrics_(std::make_unique<metrics_set>()) {}

discovery_service::~discovery_service() {
  alive_.end();
  poller_.reset();
  client_.reset();
}

std::string discovery_service::state_file() const { return ctx_.config.discovery.state_dir + "/catalog.json"; }

void discovery_service::register_routes(io::router& routes) {
  routes.add_sync("GET", "/v1/catalog", [this](io::http_request&) {
    if (!enabled() || !started_) return io::http_response::json(200, dsc::disabled_catalog_json());
    return io::http_response::json(200, dsc::catalog_view_json(catalog_, wall_now(), ctx_.secrets.tenant_id));
  });
}

void discovery_service::start() {
  if (!enabled()) {
    util::log::info("discovery: disabled (discovery.enabled: false); nothing is captured");
    return;
  }
  started_ = true;
  load();
  client_ = std::make_unique<io::http_client>(ctx_.ioc, io::aforo_client_options(ctx_.config, max_admin_page));
  const auto& d = ctx_.config.discovery;
  if (!d.kong_admin_url.empty())
    poller_ = std::make_unique<io::kong_admin_poller>(*client_, d.kong_admin_url, read_token(d.admin_token_file));
  util::log::info("discovery: catalog of " + std::to_string(catalog_.apis().size()) + " APIs (revision " +
                  std::to_string(catalog_.revision()) + ") in " + state_file() +
                  (poller_ ? "; polling the Kong Admin API at " + d.kong_admin_url : "; Admin API polling off"));
  update_gauges();
  if (poller_) poll_admin();
  maybe_push();
}

void discovery_service::stop(std::function<void()> done) {
  stopped_ = true;
  push_.stop();
  poll_timer_.cancel();
  push_timer_.cancel();
  save_timer_.cancel();
  if (started_ && catalog_.unsaved()) save();
  done();
}

void discovery_service::load() {
  auto file = io::read_file_nofollow(state_file(), max_state_file);
  if (!file.data) {
    if (!file.missing) util::log::error("discovery: " + file.error + "; starting with an empty catalog");
    return;  // missing: first start
  }
  auto st = dsc::parse_catalog_state(*file.data);
  if (!st.ok()) {
    const std::string aside = state_file() + ".corrupt";
    std::error_code ec;
    fs::rename(state_file(), aside, ec);
    util::log::error("discovery: " + state_file() + " is not a valid catalog (" + st.error + "); moved to " + aside +
                     ", starting with an empty catalog");
    return;
  }
  push_.restore(st.pushed_revision);
  catalog_.restore(std::move(st.apis), st.revision);
}

void discovery_service::save() {
  const std::string err = io::write_file_atomically(
      state_file(), dsc::catalog_state_json(catalog_, push_.pushed_revision()), 0640, "discovery.state_dir");
  if (err.empty()) {
    catalog_.mark_saved();
    if (!save_error_.empty()) util::log::info("discovery: catalog file writable again");
  } else if (err != save_error_) {
    util::log::error("discovery: " + err + " (the catalog stays in memory)");
  }
  save_error_ = err;
}

void discovery_service::schedule_save() {
  if (save_pending_ || stopped_) return;
  save_pending_ = true;
  save_timer_.expires_after(save_delay);
  save_timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    save_pending_ = false;
    if (catalog_.unsaved()) save();
  });
}

void discovery_service::after_change(bool revision_moved) {
  update_gauges();
  if (revision_moved) {
    save();
    maybe_push();
  } else if (catalog_.unsaved()) {
    schedule_save();
  }
}

void discovery_service::observe(const std::vector<core::accepted_event>& events) {
  if (!enabled() || !started_ || stopped_ || events.empty()) return;
  const auto now = wall_now();
  // The fields validation read (what the event's JSON holds), not a parse of the JSON again.
  dsc::traffic_observation o;
  for (const auto& e : events) {
    const bool some = dsc::observation_from_accepted(e, o);
    const auto r = some ? catalog_.observe(o, now) : dsc::observe_result::ignored;
    switch (r) {
      case dsc::observe_result::ignored:
        metrics_->events_ignored.inc();
        break;
      case dsc::observe_result::dropped:
        metrics_->ops_dropped.inc();
        break;
      case dsc::observe_result::folded:
        metrics_->requests_folded.inc();
        break;
      default:
        break;
    }
  }
  after_change(catalog_.seal(now));
}

void discovery_service::poll_admin() {
  if (stopped_ || !poller_) return;
  poller_->poll([this, alive = alive_.watch()](io::admin_poll_result r) {
    if (alive.expired() || stopped_) return;
    if (r.ok()) {
      metrics_->polls_ok.inc();
      if (!admin_error_.empty() || !admin_ever_ok_)
        util::log::info("discovery: Kong Admin API " + ctx_.config.discovery.kong_admin_url +
                        " read: " + std::to_string(r.state.services.size()) + " services, " +
                        std::to_string(r.state.routes.size()) + " routes, " + std::to_string(r.state.plugins.size()) +
                        " plugins");
      admin_error_.clear();
      admin_ever_ok_ = true;
      const auto now = wall_now();
      const auto dropped = catalog_.apply_admin(r.state, now);
      metrics_->ops_dropped.inc(dropped);
      after_change(catalog_.seal(now));
    } else {
      metrics_->polls_error.inc();
      if (r.error != admin_error_)
        util::log::warn("discovery: Kong Admin API " + ctx_.config.discovery.kong_admin_url +
                        " unavailable: " + r.error + "; keeping the last known declarations");
      admin_error_ = r.error;
    }
    schedule_poll();
  });
}

void discovery_service::schedule_poll() {
  if (stopped_) return;
  poll_timer_.expires_after(ctx_.config.discovery.interval);
  poll_timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    poll_admin();
  });
}

void discovery_service::maybe_push() {
  perform_push(push_.poll(catalog_.revision(), client_ && !ctx_.config.aforo.control_url.empty()));
}

void discovery_service::perform_push(const dsc::push_step& step) {
  switch (step.what) {
    case dsc::push_step::kind::none:
      return;
    case dsc::push_step::kind::push:
      return send_push();  // the catalog as it is: step.revision
    case dsc::push_step::kind::wait:
      break;
  }
  push_timer_.expires_after(step.wait);
  push_timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    push_.on_timer();
    maybe_push();
  });
}

void discovery_service::send_push() {
  std::string base = ctx_.config.aforo.control_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  io::client_request req;
  req.method = "POST";
  req.url = base + "/v1/catalog";
  const auto& sec = ctx_.secrets;
  req.headers = io::aforo_auth_headers(ctx_.config, sec);
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = dsc::catalog_view_json(catalog_, wall_now(), sec.tenant_id);
  client_->async_request(std::move(req), [this, alive = alive_.watch()](io::client_result r) {
    if (alive.expired()) return;
    using ek = io::client_result::error_kind;
    on_push_result(r.status, !r.ok() && r.error != ek::timeout && r.error != ek::connect_timeout,
                   r.error == ek::timeout || r.error == ek::connect_timeout, r.host,
                   r.ok() ? std::string{} : std::string(io::to_string(r.error)) + " (" + r.error_message + ")");
  });
}

void discovery_service::on_push_result(int status, bool network_error, bool timed_out, std::string host,
                                       std::string error) {
  if (stopped_) return;
  const auto outcome = network_error ? core::delivery_outcome::network()
                       : timed_out   ? core::delivery_outcome::timed_out()
                                     : core::delivery_outcome::http(status);
  core::retry_settings rs;
  rs.max_retries = ctx_.config.retry.max_retries;
  rs.backoff = ctx_.config.retry.backoff;
  rs.jitter_percent = ctx_.config.retry.jitter_percent;
  rs.unauthorized_probe = ctx_.config.retry.unauthorized_probe;
  static thread_local std::minstd_rand rng{std::random_device{}()};
  const double r01 = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  const auto step = push_.on_result(outcome, rs, ctx_.config.discovery.interval, r01, util::steady_now());

  const std::string what = !error.empty() ? error + " to " + host : "HTTP " + std::to_string(status);
  switch (step.result) {
    case dsc::push_result::none:
      return;
    case dsc::push_result::delivered:
      metrics_->pushes_ok.inc();
      if (!push_error_.empty()) util::log::info("discovery: catalog push delivered again");
      push_error_.clear();
      util::log::debug("discovery: catalog revision " + std::to_string(step.revision) + " pushed");
      save();
      return maybe_push();
    case dsc::push_result::rejected:
      metrics_->pushes_rejected.inc();
      util::log::error("discovery: the control plane rejected catalog revision " + std::to_string(step.revision) +
                       " (" + what + "); not retried");
      return maybe_push();
    case dsc::push_result::retry:
      metrics_->pushes_retry.inc();
      break;
    case dsc::push_result::unauthorized:
    case dsc::push_result::failed:
      metrics_->pushes_failed.inc();
      break;
  }
  const std::string why = step.result == dsc::push_result::unauthorized
                              ? "ERROR invalid API key (" + std::to_string(status) + ") pushing the catalog"
                              : "catalog push failed: " + what;
  if (why != push_error_) util::log::warn("discovery: " + why + "; retrying");
  push_error_ = why;
  perform_push(step);
}

void discovery_service::update_gauges() {
  metrics_->apis.set(static_cast<double>(catalog_.apis().size()));
  metrics_->operations.set(static_cast<double>(catalog_.operation_count()));
  metrics_->revision.set(static_cast<double>(catalog_.revision()));
}

}  // namespace aforo::app
