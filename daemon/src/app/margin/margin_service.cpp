// The margin guard in the daemon; see margin_service.hpp.
#include "app/margin/margin_service.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "app/entitlements/entitlements_sharing.hpp"
#include "io/clients/margin_webhook_sender.hpp"
#include "config/guards_yaml.hpp"
#include "core/margin/level_report.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::app {

namespace ce = core::entitlements;
namespace cm = core::margin;
using namespace std::chrono_literals;

struct margin_service::metrics_set {
  util::counter_metric& reload_ok = reloads("ok");
  util::counter_metric& reload_error = reloads("error");
  std::array<util::counter_metric*, 4> changes{&change("NONE"), &change("L1"), &change("L2"), &change("L3")};
  util::counter_metric* claimed = nullptr;  // registered by claim_webhooks (cache.redis set)
  util::counter_metric* claimed_elsewhere = nullptr;
  util::counter_metric* claim_unavailable = nullptr;

  static util::counter_metric& reloads(const char* result) {
    return util::metrics().counter("aforo_sidecar_margin_guard_reloads_total",
                                   "Guard file loads by result (error: the guards in force were kept).",
                                   std::string("result=\"") + result + "\"");
  }
  static util::counter_metric& change(const char* level) {
    return util::metrics().counter("aforo_sidecar_margin_level_changes_total",
                                   "Margin guard level changes by the level entered.",
                                   std::string("level=\"") + level + "\"");
  }
  static util::counter_metric& claims(const char* result) {
    return util::metrics().counter("aforo_sidecar_margin_webhook_claims_total",
                                   "Level changes with webhooks claimed in Redis, by result (claimed: sent from here; "
                                   "claimed_elsewhere: sent by another sidecar; unavailable: sent anyway).",
                                   std::string("result=\"") + result + "\"");
  }
};

margin_service::margin_service(context& ctx, const snapshot_in_force& snapshot, entitlements_sharing* shared)
    : ctx_(ctx),
      path_(ctx.config.margin_guard.config),
      interval_(ctx.config.margin_guard.reload_interval),
      watch_(path_),
      snapshot_(snapshot),
      metrics_(std::make_unique<metrics_set>()),
      timer_(ctx.ioc) {
  if (!load(true)) {
    throw std::runtime_error("margin_guard.config: the guard file " + path_ + " is invalid (see the errors above)");
  }
  webhooks_ =
      std::make_unique<io::margin_webhook_sender>(ctx.ioc, ctx.secrets.webhook_secret, ctx.config.aforo.ca_file);
  const bool notifies = std::any_of(guard_.guards().guards.begin(), guard_.guards().guards.end(),
                                    [](const cm::guard& g) { return g.level_1 && !g.level_1->notify.empty(); });
  if (notifies && ctx.secrets.webhook_secret.empty()) {
    util::log::warn(
        "margin guard: no webhook secret (AFORO_WEBHOOK_SECRET or margin_guard.webhook_secret_file); webhooks are sent "
        "unsigned");
  }
  for (int lvl = 1; lvl <= 3; ++lvl) {
    util::metrics().gauge_fn(
        "aforo_sidecar_margin_level", "Customers at each margin guard level (per guard).",
        std::string("level=\"") + std::string(ce::to_string(static_cast<ce::margin_level>(lvl))) + "\"",
        [this, lvl] { return static_cast<double>(guard_.customers_per_level()[lvl]); });
  }
  util::metrics().gauge_fn("aforo_sidecar_margin_guards", "Margin guards in force.", "",
                           [this] { return static_cast<double>(guard_.guards().guards.size()); });
  if (shared != nullptr) {
    share_cogs(*shared);
    claim_webhooks(*shared);  // one webhook per level change per cluster
  }
}

margin_service::~margin_service() = default;

bool margin_service::load(bool at_start) {
  if (path_.empty()) {
    guard_.set_guards({});
    watch_.forget();
    return true;
  }
  watch_.mark_read(watch_.current());
  auto r = config::load_guards_file(path_);
  if (!r.ok()) {
    metrics_->reload_error.inc();
    for (const auto& e : r.errors) util::log::error("margin guard: " + path_ + ": " + e);
    if (!at_start)
      util::log::error("margin guard: keeping the " + std::to_string(guard_.guards().guards.size()) +
                       " guard(s) in force");
    return false;
  }
  metrics_->reload_ok.inc();
  const auto n = r.value->guards.size();
  guard_.set_guards(std::move(*r.value));
  util::log::info("margin guard: " + std::to_string(n) + " guard(s) loaded from " + path_);
  return true;
}

void margin_service::share_cogs(entitlements_sharing& sharing) {
  cm::cogs_ledger& ledger = guard_.ledger();
  ledger.follow_reads(true);
  shared_counters set;
  set.set = std::string(ce::redis_keys::cogs_set);
  set.label = "cogs";
  set.counters = &ledger.counters();
  set.take_reads = [&ledger] { return ledger.take_reads(); };
  set.follow_s = cogs_follow_window.count();
  sharing.share_counters(std::move(set));
}

void margin_service::claim_webhooks(entitlements_sharing& sharing) {
  claims_ = &sharing;
  metrics_->claimed = &metrics_set::claims("claimed");
  metrics_->claimed_elsewhere = &metrics_set::claims("claimed_elsewhere");
  metrics_->claim_unavailable = &metrics_set::claims("unavailable");
}

void margin_service::start() { schedule_reload(); }

void margin_service::schedule_reload() {
  timer_.expires_after(std::max<std::chrono::milliseconds>(interval_, 100ms));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    on_tick();
    schedule_reload();
  });
}

void margin_service::on_tick() {
  if (!path_.empty()) {
    const auto now_stamp = watch_.current();
    if (watch_.differs(now_stamp)) {
      if (now_stamp) {
        load(false);
      } else if (watch_.seen()) {
        util::log::error("margin guard: " + path_ + ": cannot read the guard file; keeping the guards in force");
        watch_.forget();
      }
    }
  }
  const auto now = util::unix_now();
  if (now - last_expire_ >= 60) {
    guard_.expire(now);
    last_expire_ = now;
  }
}

void margin_service::reload(const config::sidecar_config& next) {
  interval_ = next.margin_guard.reload_interval;
  path_ = next.margin_guard.config;
  watch_.watch(path_);
  load(false);  // SIGHUP: re-read now, whatever the mtime says
}

void margin_service::stop(std::function<void()> done) {
  stopped_ = true;
  alive_.end();
  timer_.cancel();
  webhooks_->shutdown();
  done();
}

ce::margin_verdict margin_service::evaluate(const ce::margin_query& q) {
  const auto v = guard_.evaluate_at(q, util::steady_now_ms());
  auto changes = guard_.take_changes();
  if (!changes.empty()) {
    for (auto& c : changes) pending_.push_back(std::move(c));
    if (!drain_posted_) {
      drain_posted_ = true;
      boost::asio::post(ctx_.ioc, [this] {
        drain_posted_ = false;
        handle_changes(std::exchange(pending_, {}));
      });
    }
  }
  return v;
}

void margin_service::handle_changes(std::vector<cm::level_change> changes) {
  for (auto& c : changes) {
    util::log::info(cm::describe(c));  // per sidecar, whoever sends the webhook
    metrics_->changes[static_cast<std::size_t>(c.to)]->inc();
    if (c.notify.empty() || stopped_) continue;
    if (claims_ != nullptr) {
      notify_once(std::move(c));
    } else {
      webhooks_->send(c);
    }
  }
}

void margin_service::notify_once(cm::level_change change) {
  auto c = std::make_shared<const cm::level_change>(std::move(change));
  claims_->claim_level_notice(*c, [this, alive = alive_.watch(), c](notice_claim r) {
    if (alive.expired() || stopped_) return;
    switch (r) {
      case notice_claim::claimed:
        metrics_->claimed->inc();
        webhooks_->send(*c);
        break;
      case notice_claim::claimed_elsewhere:
        metrics_->claimed_elsewhere->inc();
        webhooks_->skip(*c);
        break;
      case notice_claim::unavailable:
        metrics_->claim_unavailable->inc();
        util::log::info("margin guard: webhook for " + c->customer_id + " " + std::string(ce::to_string(c->to)) +
                        " sent without a cluster claim (redis unavailable); other sidecars may send it too");
        webhooks_->send(*c);
        break;
    }
  });
}

margin_costs margin_service::price(const std::vector<core::accepted_event>& events) const {
  margin_costs out;
  const auto snap = snapshot_.get();
  static const std::vector<ce::feature_rule> no_rules;
  const auto& rules = snap ? snap->rules : no_rules;
  const bool route_needed = cm::any_rule_without_metric(rules);
  std::string grpc_operation;  // grpcService/grpcMethod of the event being priced
  for (const auto& e : events) {
    cm::usage_event ev;
    ev.customer_id = e.customer_id;
    ev.metric_name = e.metric_name;
    ev.quantity_micros = cm::to_micros(e.quantity);
    ev.reported_cost = e.cost ? cm::to_micros(*e.cost) : 0;
    // Only needed when a rule is metered under the default metric: what the event's JSON holds.
    if (route_needed && cm::rule_for_usage(rules, ev) == nullptr) {
      ev.route.method = e.http_method;
      ev.route.path = e.endpoint_path;
      ev.route.service = e.service;
      ev.route.route = e.route;
      ev.route.operation =
          cm::operation_of_event(e.gql_operation_name, e.tool_name, e.grpc_service, e.grpc_method, grpc_operation);
    }
    const cm::picos cost = cm::usage_cost(rules, ev);
    if (cost <= 0) continue;
    // Consecutive events of one customer (a plugin batch mostly is) make one entry: the ledger
    // carries sub-micro remainders, so adding their sum counts exactly what adding each would (short
    // of a period's COGS passing the int64 micro-unit range, where both saturate).
    if (!out.empty() && out.back().customer_id == e.customer_id) {
      out.back().cost += cost;
      continue;
    }
    const ce::customer* cust = snap ? snap->find_customer(e.customer_id) : nullptr;
    out.push_back({std::string(e.customer_id), cost, cm::cogs_period_of(cust)});
  }
  return out;
}

void margin_service::record(const margin_costs& costs) {
  const auto now = util::unix_now();
  for (const auto& c : costs) guard_.ledger().add(c.customer_id, c.period, c.cost, now);
}

}  // namespace aforo::app
