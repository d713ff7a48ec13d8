// The margin guard in the daemon (docs/design/margin-guard.md): the guard file loaded at start and
// hot-reloaded, the decision engine's margin hook, COGS fed from accepted usage events, and the
// level-change log lines, metrics and webhooks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "app/entitlements/snapshot_in_force.hpp"
#include "app/service.hpp"
#include "core/entitlements/decision_engine.hpp"
#include "core/margin/margin_guard.hpp"
#include "core/pipeline/event_validation.hpp"
#include "io/file_watch.hpp"
#include "util/lifetime.hpp"

namespace aforo::util {
class counter_metric;
}

namespace aforo::io {
class margin_webhook_sender;
}  // namespace aforo::io

namespace aforo::app {

class entitlements_sharing;

/// The cost of accepted events, priced before the pipeline takes custody and recorded once it has.
struct margin_cost {
  std::string customer_id;
  core::margin::picos cost = 0;
  core::entitlements::period_kind period = core::entitlements::period_kind::month;
};
using margin_costs = std::vector<margin_cost>;

/// - margin_guard.config empty: no guard (evaluate answers NONE, costs are still counted so a guard
///   added by a later reload sees the period's COGS so far).
/// - Start: the file must load; an unreadable or invalid file throws std::runtime_error naming
///   every error (a startup error, exit code like any config error).
/// - Hot reload: every margin_guard.reload_interval the file's inode, size and mtime are compared; a
///   changed file is parsed and applied without restart. A bad file keeps the guards in force and
///   logs its errors once (until the file changes again). SIGHUP (reload()) re-reads at once.
/// - Level changes: one log line each ("margin guard: cust_x L1 (margin 28.5% < 30%) [guard
///   default]"), aforo_sidecar_margin_level_changes_total{level}, and (not in shadow) one signed
///   webhook per notify URL, sent after the request is answered (once per cluster with
///   cache.redis, see below).
/// - Metrics: aforo_sidecar_margin_level{level="L1|L2|L3"} (customers per level),
///   aforo_sidecar_margin_guards (guards in force), aforo_sidecar_margin_guard_reloads_total{result}.
/// - Sharing: without cache.redis, COGS is local to this sidecar. With it (the `shared` store), the
///   ledger's counters are shared through the decision service's Redis connection at its
///   cache.sync_interval tick, under their own keys "aforo:{tenant}:m:{customer}:$cogs:{period}",
///   like quota counters (per-sidecar contributions, reconciled after a Redis restart), and the
///   guard evaluates the cluster-wide COGS: the shared total as last synced + the costs recorded
///   here since. Lag bound: for a customer active on this sidecar (a check or a cost within the
///   last cogs_follow_window), the costs recorded by the other sidecars reach this view within one
///   cache.sync_interval (plus a Redis round trip, plus that sidecar's own custody delay); the first
///   check after a longer quiet spell may use the view of then, and is current one sync later.
///   Redis down: every sidecar evaluates its last shared view + its own costs since, keeps them
///   pending and pushes them when Redis returns; no error reaches a caller. Level changes are
///   logged by each sidecar that sees them. Pushes are counted in
///   aforo_sidecar_redis_sync_pushes_total{counters="cogs",result}.
/// - Webhooks once per cluster: with cache.redis (the `shared` store), a level change's webhooks go
///   out from one sidecar: after the request is answered, each sidecar that sees the change claims
///   it in Redis (entitlements_sharing::claim_level_notice, rule core::margin::notice_due: each
///   level entered is told once per cluster, again after the customer left it and came back) and
///   only the one whose claim succeeds sends; the others count
///   aforo_sidecar_margin_webhooks_total{result="claimed_elsewhere"}. Redis down, the claim timed
///   out (cache.redis_timeout) or refused: the sidecar sends anyway (at least once, never lost;
///   the receiver may get one per sidecar) and logs it; such a send is not recorded in Redis, and
///   a notice lost with a Redis restarted empty is gone too, so a sidecar seeing the change later
///   may tell it again. The log line and level-change metrics stay per sidecar: each sidecar logs
///   the changes it sees. Claims are counted in
///   aforo_sidecar_margin_webhook_claims_total{result="claimed|claimed_elsewhere|unavailable"}.
///   Without cache.redis every sidecar sends the webhooks of the changes it sees.
/// Threading: io thread only.
class margin_service final : public service, public core::entitlements::margin_hook {
 public:
  /// Loads the guard file (throws on a bad file, see above) and the webhook secret from ctx. Not owned,
  /// each outlives this: `snapshot` is where price() finds feature rules and customers (the decision
  /// service's snapshot in force); `shared` is the cluster's shared store (cache.redis set), null
  /// without one. With it, COGS is shared through it (see Sharing above: it keeps a pointer to the
  /// ledger and calls into it only from the decision service's sync and Redis replies, which end
  /// before this is destroyed) and each level change's webhooks are claimed through it (see Webhooks
  /// once per cluster above).
  margin_service(context& ctx, const snapshot_in_force& snapshot, entitlements_sharing* shared);
  ~margin_service() override;

  /// How long a customer's shared COGS keeps being re-read at every sync after its last check or
  /// cost on this sidecar.
  static constexpr std::chrono::seconds cogs_follow_window{600};

  // service
  void register_routes(io::router& /*routes*/) override {}
  void start() override;
  void reload(const config::sidecar_config& next) override;
  void stop(std::function<void()> done) override;

  // margin_hook: called by the decision engine on the request path; allocation-free once a
  // customer is known. Level changes are handled after the current handler returns.
  core::entitlements::margin_verdict evaluate(const core::entitlements::margin_query& q) override;

  /// The cost of events about to be taken into custody (quantity x unit cost + metadata.cost), one
  /// entry per run of consecutive events of the same customer.
  [[nodiscard]] margin_costs price(const std::vector<core::accepted_event>& events) const;
  /// Adds priced costs to COGS; call once the events are in custody (a refused batch is retried
  /// by its sender and must not count twice).
  void record(const margin_costs& costs);

  /// The guard in force (tests and diagnostics).
  [[nodiscard]] core::margin::margin_guard& guard() { return guard_; }

 private:
  struct metrics_set;

  bool load(bool at_start);
  void schedule_reload();
  void on_tick();
  void handle_changes(std::vector<core::margin::level_change> changes);
  void notify_once(core::margin::level_change change);
  void share_cogs(entitlements_sharing& sharing);
  void claim_webhooks(entitlements_sharing& sharing);

  context& ctx_;
  std::string path_;
  std::chrono::milliseconds interval_;
  io::file_watch watch_;  // the version of the file last parsed (good or bad)
  core::margin::margin_guard guard_;
  const snapshot_in_force& snapshot_;
  std::unique_ptr<io::margin_webhook_sender> webhooks_;
  entitlements_sharing* claims_ = nullptr;  // null: no shared store, every change is sent here
  util::lifetime alive_;                    // claim replies after stop do nothing
  bool stopped_ = false;
  std::unique_ptr<metrics_set> metrics_;
  boost::asio::steady_timer timer_;
  std::int64_t last_expire_ = 0;
  bool drain_posted_ = false;
  std::vector<core::margin::level_change> pending_;
};

}  // namespace aforo::app
