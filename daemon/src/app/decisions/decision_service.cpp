// POST /v1/check; see decision_service.hpp.
#include "app/decisions/decision_service.hpp"
#include "app/decisions/decision_service_detail.hpp"

#include <boost/asio/io_context.hpp>

#include "core/entitlements/check_request.hpp"
#include "core/entitlements/decision.hpp"
#include "core/entitlements/feature_mapper.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::app {

namespace ce = core::entitlements;
using namespace std::chrono_literals;

using namespace decision_detail;

namespace {
ce::engine_options options_of(const config::sidecar_config& c) {
  ce::engine_options o;
  o.mode = c.mode == config::enforcement_mode::shadow ? ce::enforcement_mode::shadow : ce::enforcement_mode::enforce;
  o.unknown_customer = c.entitlements.unknown_customer == config::unknown_customer_policy::allow
                           ? ce::unknown_customer_policy::allow
                           : ce::unknown_customer_policy::block;
  o.lease_requests = c.entitlements.lease_requests;
  o.lease_ttl_ms = c.entitlements.lease_ttl.count();
  return o;
}

ce::reservation_options reservation_options_of(const config::sidecar_config& c) {
  ce::reservation_options o;
  o.max_chunk = c.cache.quota_max_chunk;
  o.chunk_window_ms = c.cache.quota_chunk_window.count();
  o.chunk_ttl_ms = c.cache.quota_chunk_ttl.count();
  o.down_allowance = c.cache.quota_redis_down_allowance;
  o.down_percent = c.cache.quota_redis_down_percent;
  o.unreported = c.cache.quota_unreported;
  return o;
}

std::int64_t wall_ms() { return util::unix_now_ms(); }

std::string seconds_text(std::chrono::steady_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

}  // namespace

decision_service::decision_service(context& ctx, entitlements_sharing& sharing, ce::margin_hook* margin,
                                   snapshot_in_force& in_force)
    : ctx_(ctx),
      sharing_(&sharing),
      engine_(options_of(ctx.config)),
      quota_(ctx.config.entitlements.quota_warning_percent),
      margin_(margin),
      in_force_(in_force),
      store_(ctx.config.discovery.state_dir),
      sync_timer_(ctx.ioc),
      metrics_(std::make_unique<metrics_set>()) {
  util::metrics().gauge_fn("aforo_sidecar_entitlements_snapshot_age_seconds",
                           "Seconds since the source last gave or confirmed the snapshot in force, across restarts "
                           "(-1: none).",
                           "", [this] { return snap_ ? seconds_of(age(clock::now())) : -1.0; });
  util::metrics().gauge_fn("aforo_sidecar_entitlements_snapshot_stale",
                           "1 while the snapshot in force is stale (its source has not confirmed it for 2 refresh "
                           "periods), else 0.",
                           "", [this] { return snap_ && age(clock::now()) > stale_after() ? 1.0 : 0.0; });
  if (sharing_->can_reserve()) {
    reservations_ = std::make_unique<ce::quota_reservations>(reservation_options_of(ctx.config),
                                                             ctx.config.entitlements.quota_warning_percent);
  }
}

decision_service::~decision_service() { api_.reset(); }

void decision_service::register_routes(io::router& routes) {
  routes.add("POST", "/v1/check",
             [this](io::http_request& req, io::respond_fn respond) { handle_check(req, respond); });
}

void decision_service::start() {
  configure_api();
  start_source();
  schedule_sync();
}

void decision_service::configure_api() {
  if (!ctx_.config.entitlements.uses_aforo_api()) {
    api_.reset();
  } else if (api_) {
    api_->reload(ctx_.config);
  } else {
    api_ = std::make_unique<aforo_api_decider>(ctx_);
    util::log::info(
        ctx_.config.entitlements.source == "aforo_api"
            ? "entitlements: every check asks Aforo's quota and margin endpoints"
            : "entitlements: customers the snapshot lacks are asked from Aforo's quota and margin endpoints");
  }
}

void decision_service::ask_api(const ce::check_request& check, std::span<const ce::feature_rule> rules,
                               clock::time_point started, const io::respond_fn& respond) {
  // A snapshot rule's metric when the request maps to one; else entitlements.aforo_api.metric.
  std::string_view metric;
  if (!rules.empty()) {
    const auto rf = ce::resolve_feature(rules, check.feature,
                                        {check.service, check.route, check.method, check.path, check.operation});
    if (rf.rule != nullptr) metric = rf.rule->metric;
  }
  api_->check(check, metric, [this, started, respond](const ce::decision* d) {
    if (d == nullptr) {
      metrics_->no_snapshot.inc();
      return respond(io::http_response::error(
          503, "no_decision", "no answer from Aforo's decision endpoints for this customer yet (or they fail)"));
    }
    finish(*d, started, respond);
  });
}

void decision_service::start_source() {
  source_name_ = ctx_.config.entitlements.source;
  if (source_name_ == "aforo_api") {
    util::log::info("entitlements: source aforo_api (no snapshot)");
    return;
  }
  snapshot_events ev;
  ev.loaded = [this](snapshot_ptr s, std::string text) { on_loaded(std::move(s), std::move(text)); };
  ev.confirmed = [this] {
    confirmed_at_ = clock::now();
    stale_logged_ = false;
    store_.confirmed(wall_ms());
    watch_staleness(confirmed_at_);
  };
  ev.failed = [this] {
    metrics_->load_failures.inc();
    if (!snap_ && !lkg_tried_) load_last_known_good();
  };
  source_ = make_snapshot_source(ctx_, std::move(ev));
  util::log::info("entitlements: source " + source_name_);
  source_->start();
}

void decision_service::on_loaded(snapshot_ptr snap, std::string text) {
  install(std::move(snap), clock::now());
  from_lkg_ = false;
  store_.save(text, source_ ? source_->kind() : std::string_view("unknown"), wall_ms());
  watch_staleness(confirmed_at_);
}

void decision_service::load_last_known_good() {
  lkg_tried_ = true;
  auto lkg = store_.load();
  if (!lkg) {
    metrics_->lkg_ignored.inc();
    util::log::warn("entitlements: the source gave no snapshot and no last known good one is usable (" + store_.path() +
                    "); /v1/check answers 503 until the source does");
    return;
  }
  metrics_->lkg_loaded.inc();
  const auto age_ms = std::max<std::int64_t>(wall_ms() - lkg->fetched_at_ms, 0);
  const auto age = std::chrono::milliseconds(age_ms);
  install(std::move(lkg->snap), clock::now() - age);
  from_lkg_ = true;
  stale_warned_ = age > stale_after();
  const auto bound = ctx_.config.entitlements.max_stale;
  util::log::warn("entitlements: source " + source_name_ +
                  " unavailable at startup; serving the last known good snapshot " + snap_->version + " from " +
                  store_.path() + " (from " + lkg->source + ", age " + seconds_text(age) + "; " +
                  (bound.count() > 0 ? "entitlements.max_stale " + seconds_text(bound) : std::string("no max_stale")) +
                  ") until a refresh succeeds");
}

void decision_service::install(snapshot_ptr snap, clock::time_point confirmed_at) {
  if (version_info_ != nullptr) version_info_->set(0);
  version_info_ = &util::metrics().gauge("aforo_sidecar_entitlements_snapshot_info",
                                         "The entitlement snapshot in force (1) by version; earlier versions 0.",
                                         "version=\"" + util::escape_label(snap->version) + "\"");
  version_info_->set(1);
  metrics_->loads.inc();
  snap_ = std::move(snap);
  in_force_.set(snap_);
  confirmed_at_ = confirmed_at;
  stale_logged_ = false;
  sharing_->snapshot_loaded(snap_);
}

void decision_service::watch_staleness(clock::time_point now) {
  if (!snap_) return;
  const bool stale = age(now) > stale_after();
  if (stale == stale_warned_) return;
  stale_warned_ = stale;
  if (stale) {
    const auto bound = ctx_.config.entitlements.max_stale;
    util::log::warn("entitlements: snapshot " + snap_->version + " is stale: source " + source_name_ +
                    " has not confirmed it for " + seconds_text(age(now)) + "; it keeps serving " +
                    (bound.count() > 0 ? "up to entitlements.max_stale " + seconds_text(bound)
                                       : std::string("until a refresh succeeds")));
  } else {
    util::log::info("entitlements: snapshot " + snap_->version + " is fresh again");
  }
}

const char* decision_service::state_name(clock::time_point now) const {
  if (!snap_) return "none";
  if (too_stale(now)) return "expired";
  return age(now) > stale_after() ? "stale" : "fresh";
}

void decision_service::schedule_sync() {
  sync_timer_.expires_after(std::max<std::chrono::milliseconds>(ctx_.config.cache.sync_interval, 10ms));
  sync_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    sharing_->sync_quota(quota_);
    flush_reservations(true);
    watch_staleness(clock::now());
    const auto now = unix_now();
    if (now - last_expire_ >= 60) {
      quota_.expire(now);
      last_expire_ = now;
    }
    schedule_sync();
  });
}

void decision_service::reload(const config::sidecar_config& next) {
  engine_ = ce::decision_engine(options_of(next));
  try {
    configure_api();
  } catch (const std::exception& e) {
    util::log::error(std::string("entitlements: cannot start the aforo_api decider: ") + e.what());
  }
  quota_.set_warning_percent(next.entitlements.quota_warning_percent);
  if (reservations_) {
    reservations_->set_options(reservation_options_of(next));
    reservations_->set_warning_percent(next.entitlements.quota_warning_percent);
  }
  if (next.entitlements.source == source_name_) {
    if (source_) source_->refresh_now();
    return;
  }
  try {
    source_.reset();
    start_source();
  } catch (const std::exception& e) {
    util::log::error(std::string("entitlements: cannot switch source: ") + e.what());
  }
}

void decision_service::stop(std::function<void()> done) {
  api_.reset();
  source_.reset();
  sync_timer_.cancel();
  sharing_->sync_quota(quota_);  // a last push of local deltas (best effort)
  if (reservations_ && sharing_->store_connected()) {
    // Unused units go back before the service reports stopped (each call ends within
    // cache.redis_timeout); what is not returned is settled as used after cache.quota_chunk_ttl.
    reservations_->set_now_ms(steady_ms(clock::now()));
    auto calls = reservations_->shutdown_calls(unix_now());
    if (!calls.empty()) {
      auto left = std::make_shared<std::size_t>(calls.size());
      sharing_->reserve(std::move(calls), [left, done](const ce::reserve_call&, std::optional<ce::reserve_reply>) {
        if (--*left == 0) done();
      });
      return;
    }
  }
  done();
}

decision_service::clock::duration decision_service::stale_after() const {
  const auto period = source_ ? source_->confirm_period() : std::chrono::milliseconds(1000);
  return 2 * period + 1s;
}

bool decision_service::too_stale(clock::time_point now) const {
  const auto bound = ctx_.config.entitlements.max_stale;
  return bound.count() > 0 && age(now) > bound;
}

void decision_service::readiness(status_report& r) const {
  const auto now = clock::now();
  std::string f = R"({"state":")";
  f += state_name(now);
  f += '"';
  if (snap_) {
    f += R"(,"version":)";
    ce::append_json_string(f, snap_->version);
    f += R"(,"age_s":)" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age(now)).count());
    f += R"(,"last_known_good":)";
    f += from_lkg_ ? "true" : "false";
  }
  f += '}';
  r.fields["entitlements"] = std::move(f);
  if (!r.ready) return;
  if (!snap_ && !api_) {
    r.ready = false;
    r.not_ready_reason = "no entitlement snapshot loaded yet (entitlements.source " + source_name_ + ")";
  }
}

void decision_service::handshake_fields(std::map<std::string, std::string>& fields) const {
  if (const auto redis = sharing_->state(); !redis.empty()) fields["redis"] = "\"" + std::string(redis) + "\"";
  if (!snap_) {
    fields["entitlements"] = api_ ? R"({"source":"aforo_api"})" : "null";
    return;
  }
  std::string v = R"({"version":)";
  ce::append_json_string(v, snap_->version);
  v += R"(,"age_s":)";
  const auto now = clock::now();
  v += std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age(now)).count());
  v += R"(,"state":")";
  v += state_name(now);
  v += R"(","last_known_good":)";
  v += from_lkg_ ? "true" : "false";
  v += '}';
  fields["entitlements"] = std::move(v);
}

util::counter_metric& decision_service::checks_counter(const ce::decision& d) {
  auto& slot = checks_[static_cast<std::size_t>(d.kind) * 9 + static_cast<std::size_t>(d.why)];
  if (slot == nullptr) {
    std::string labels = "decision=\"";
    labels += ce::to_string(d.kind);
    labels += "\",reason=\"";
    labels += ce::to_string(d.why);
    labels += '"';
    slot = &util::metrics().counter("aforo_sidecar_checks_total", "Decisions made by POST /v1/check.", labels);
  }
  return *slot;
}

void decision_service::handle_check(io::http_request& req, const io::respond_fn& respond) {
  const auto started = clock::now();
  ce::check_request check;
  if (auto err = ce::parse_check_request(req.body, check)) {
    metrics_->bad_request.inc();
    return respond(io::http_response::error(400, "bad_request", *err));
  }

  if (api_ && (source_name_ == "aforo_api" || !snap_ || too_stale(started))) {
    if (snap_ && !too_stale(started)) return ask_api(check, snap_->rules, started, respond);
    return ask_api(check, {}, started, respond);
  }
  if (!snap_ || too_stale(started)) {
    metrics_->no_snapshot.inc();
    if (snap_ && !stale_logged_) {
      util::log::error("entitlements: snapshot " + snap_->version + " is older than entitlements.max_stale (" +
                       seconds_text(ctx_.config.entitlements.max_stale) + "); answering 503 until a refresh succeeds");
      stale_logged_ = true;
    }
    return respond(io::http_response::error(503, "no_snapshot",
                                            snap_ ? "the entitlement snapshot is older than entitlements.max_stale"
                                                  : "no entitlement snapshot loaded yet"));
  }
  // From here on the check's lease report is counted (the answers above count nothing): once per id.
  switch (reports_.apply(check)) {
    case ce::lease_reports::outcome::repeated:
      metrics_->report_repeats.inc();
      break;
    case ce::lease_reports::outcome::unknown_resend:
      metrics_->report_unknown.inc();
      break;
    default:
      break;
  }
  if (check.leased > 0) metrics_->leased.inc(static_cast<std::uint64_t>(check.leased));
  const ce::customer* cust = snap_->find_customer(check.customer_id);
  if (cust == nullptr && sharing_->can_lookup()) {
    // Not held locally: ask the shared store, then decide (the request buffer does not live that long).
    metrics_->miss.inc();
    auto owned = std::make_shared<owned_check>(check);
    sharing_->lookup_customer(owned->customer_id, [this, owned, snap = snap_, started, respond](
                                                      entitlements_sharing::customer_ptr c, ce::cache_state state) {
      if (c == nullptr && api_) return ask_api(owned->view(), snap->rules, started, respond);
      prepare_reservations(clock::now());
      const ce::customer* cp = c.get();
      decide_waiter(waiter{owned, snap, std::move(c), cp, ce::to_string(state), started, respond});
    });
    return;
  }
  if (cust == nullptr && api_) return ask_api(check, snap_->rules, started, respond);
  ce::cache_state state = ce::cache_state::hit;
  if (cust == nullptr) {
    state = ce::cache_state::miss;
    metrics_->miss.inc();
  } else if (age(started) > stale_after()) {
    state = ce::cache_state::stale;
    metrics_->stale.inc();
  } else {
    metrics_->hit.inc();
  }
  prepare_reservations(started);
  const auto d = engine_.decide_for(check, snap_->rules, cust, ledger(), unix_now(), ce::to_string(state), margin_);
  note_decision(check, d);
  if (d.quota_pending) {
    check.leased = 0;  // counted by this first pass
    check.lease_unused = 0;
    return park(
        waiter{std::make_shared<owned_check>(check), snap_, nullptr, cust, ce::to_string(state), started, respond});
  }
  finish(d, started, respond);
  if (reservations_ && (reservations_->calls_due() || reservations_->down_admitted() != down_counted_)) {
    flush_reservations(false);
  }
}

void decision_service::note_decision(const ce::check_request& req, const ce::decision& d) {
  if (d.quota_pending || req.report_id.empty()) return;
  reports_.decided(req.report_id, req.renewal && d.quota_consumed ? req.quantity : 0, d.lease);
}

void decision_service::finish(const ce::decision& d, clock::time_point started, const io::respond_fn& respond) {
  checks_counter(d).inc();
  if (d.lease > 0) metrics_->leases.inc();
  io::http_response res;
  res.body.reserve(512);
  ce::encode_decision(d, res.body);
  metrics_->latency.observe(seconds_of(clock::now() - started));
  respond(std::move(res));
}

}  // namespace aforo::app
