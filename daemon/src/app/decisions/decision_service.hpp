// POST /v1/check: the edge decision of docs/design/decision-contract.md, answered from the entitlement snapshot in
// force and the quota counters, on the io thread, with no network call on the request path.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "app/decisions/aforo_api_decider.hpp"
#include "app/entitlements/entitlements_sharing.hpp"
#include "app/entitlements/snapshot_in_force.hpp"
#include "app/service.hpp"
#include "app/entitlements/snapshot_source.hpp"
#include "app/entitlements/snapshot_store.hpp"
#include "core/entitlements/decision_engine.hpp"
#include "core/entitlements/lease_reports.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/quota_reservations.hpp"
#include "util/clock.hpp"

namespace aforo::util {
class counter_metric;
class gauge_metric;
class histogram_metric;
}  // namespace aforo::util

namespace aforo::app {

/// Answers 200 with the decision JSON whenever a decision is made (a deny is a decision), 400
/// `bad_request` for a malformed body, 503 `no_snapshot` when no snapshot is loaded, or when
/// entitlements.max_stale is set (> 0) and the one in force was last confirmed by its source more
/// than that ago (the plugin's fallback_on_error then applies). By default (max_stale 0) a stale
/// snapshot serves until a refresh succeeds.
/// Last known good: every snapshot the source loads is persisted in discovery.state_dir
/// (snapshot_store); when the source fails before any snapshot is loaded (control plane away at
/// startup, snapshot file missing or broken), that file is loaded instead, with a WARN giving its
/// age. The age (handshake `age_s`, aforo_sidecar_entitlements_snapshot_age_seconds) counts from
/// when the source last gave or confirmed the snapshot, across restarts. Turning stale (older than
/// 2 x the refresh period + 1 s) is logged at WARN once, and fresh again at INFO once. `mode` and
/// `entitlements.unknown_customer` apply live on reload; a changed `entitlements.source` swaps the source (the old
/// snapshot serves until the new one loads). The `cache` field: hit = found in a snapshot confirmed within 2 x the
/// source's refresh period
/// + 1 s; stale = found in an older one (its refresh is failing); miss = not held locally.
/// Not ready (/readyz) until a snapshot (fresh or last known good) is loaded; ready from then on,
/// even past max_stale: the pod also carries Kong and the ingest path, and the plugin's
/// fallback_on_error already covers a 503 from /v1/check. /readyz reports the snapshot's state.
/// Aforo's decision endpoints (aforo_api_decider): with entitlements.source aforo_api every check is
/// decided from them and no snapshot is needed (ready at once); with aforo_api.fill_missing a check
/// whose customer the snapshot (and the shared store) lacks, or any check while no usable snapshot is
/// in force, goes to them instead of the unknown_customer policy or a 503.
/// Quota: with cache.redis and cache.quota_mode reserve (sharing_->can_reserve()), limited features
/// are admitted from units reserved in Redis (core::entitlements::quota_reservations): far from
/// the limit from the chunk held, with no Redis round trip (refills go out in the background);
/// a request that finds too few units waits for its reservation (a script call, about one loopback
/// round trip) and is then decided. Otherwise quota is counted locally and shared every
/// cache.sync_interval (quota_counters). WARN once per Redis outage when units are admitted beyond
/// the chunks held (cache.quota_redis_down_allowance).
/// Threading: io thread only.
class decision_service final : public service {
 public:
  /// Not owned, each outlives this: `sharing` is the Redis seam (local_entitlements_sharing: none);
  /// `margin` the margin guard consulted by every decision (null = none); `in_force` is where each
  /// snapshot installed here is published for the services that read it.
  decision_service(context& ctx, entitlements_sharing& sharing, core::entitlements::margin_hook* margin,
                   snapshot_in_force& in_force);
  ~decision_service() override;

  void register_routes(io::router& routes) override;
  void start() override;
  void reload(const config::sidecar_config& next) override;
  void stop(std::function<void()> done) override;
  void readiness(status_report& r) const override;
  void handshake_fields(std::map<std::string, std::string>& fields) const override;

 private:
  using clock = util::steady_clock;
  struct metrics_set;
  struct waiter;

  [[nodiscard]] core::entitlements::quota_ledger& ledger() {
    return reservations_ ? static_cast<core::entitlements::quota_ledger&>(*reservations_) : quota_;
  }
  void prepare_reservations(clock::time_point now);
  void park(waiter w);
  void decide_waiter(waiter w);
  void wake(const std::string& key);
  void flush_reservations(bool report);

  void handle_check(io::http_request& req, const io::respond_fn& respond);
  void finish(const core::entitlements::decision& d, clock::time_point started, const io::respond_fn& respond);
  void start_source();
  void on_loaded(snapshot_ptr snap, std::string text);
  void install(snapshot_ptr snap, clock::time_point confirmed_at);
  void load_last_known_good();
  void watch_staleness(clock::time_point now);
  [[nodiscard]] const char* state_name(clock::time_point now) const;
  void schedule_sync();
  void configure_api();
  void ask_api(const core::entitlements::check_request& check, std::span<const core::entitlements::feature_rule> rules,
               clock::time_point started, const io::respond_fn& respond);
  [[nodiscard]] clock::duration age(clock::time_point now) const {
    return std::max(now - confirmed_at_, clock::duration::zero());
  }
  [[nodiscard]] bool too_stale(clock::time_point now) const;
  [[nodiscard]] clock::duration stale_after() const;
  util::counter_metric& checks_counter(const core::entitlements::decision& d);
  /// What the decision means for the check's lease report (lease_reports::decided).
  void note_decision(const core::entitlements::check_request& req, const core::entitlements::decision& d);

  context& ctx_;
  entitlements_sharing* sharing_;
  core::entitlements::decision_engine engine_;
  core::entitlements::quota_counters quota_;
  core::entitlements::lease_reports reports_;                             // each lease report counted once (report_id)
  std::unique_ptr<core::entitlements::quota_reservations> reservations_;  // cache.quota_mode reserve
  std::unordered_map<std::string, std::vector<waiter>> waiting_;          // by reservation key
  std::uint64_t down_counted_ = 0;                                        // down_admitted() in the metric
  bool waking_ = false;                                                   // deciding waiters again
  std::string source_name_;                                               // the entitlements.source in use
  std::unique_ptr<snapshot_source> source_;
  snapshot_ptr snap_;
  core::entitlements::margin_hook* margin_;
  snapshot_in_force& in_force_;
  clock::time_point confirmed_at_{};
  bool stale_logged_ = false;  // the 503 past max_stale was logged
  bool stale_warned_ = false;  // the snapshot turned stale and that was logged
  bool lkg_tried_ = false;     // the last known good file was looked for
  bool from_lkg_ = false;      // the snapshot in force came from that file
  snapshot_store store_;
  boost::asio::steady_timer sync_timer_;
  std::int64_t last_expire_ = 0;
  std::unique_ptr<metrics_set> metrics_;
  util::gauge_metric* version_info_ = nullptr;         // the series of the version in force
  std::array<util::counter_metric*, 3 * 9> checks_{};  // by verdict x reason, registered on first use
  std::unique_ptr<aforo_api_decider> api_;             // when entitlements.uses_aforo_api(); destroyed first
};

}  // namespace aforo::app
