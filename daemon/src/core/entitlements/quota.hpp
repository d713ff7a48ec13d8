// Quota counters per (customer, feature, UTC period): check-and-consume against a limit, with the
// bookkeeping to share the counts through Redis (local deltas out, authoritative totals in).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/period.hpp"
#include "core/entitlements/string_map.hpp"

namespace aforo::core::entitlements {

/// The outcome of one check-and-consume.
struct quota_result {
  bool allowed = true;
  bool warning = false;   ///< allowed, and used >= quota_warning_percent of the limit
  std::int64_t used = 0;  ///< after this request (unchanged when denied)
  std::int64_t limit = 0;
  std::int64_t remaining = 0;  ///< max(0, limit - used)
  std::int64_t reset_at = 0;   ///< unix seconds: end of the period
  /// No answer yet: the units must first be reserved from the shared store (quota_reservations);
  /// nothing was consumed, the caller asks again once the reservation is answered.
  bool pending = false;
};

/// Where the decision engine checks and consumes quota: quota_counters (count locally, share the
/// counts after the fact) or quota_reservations (admit from units reserved in the shared store).
class quota_ledger {
 public:
  virtual ~quota_ledger() = default;
  /// Consumes `quantity` (>= 0) if it fits the limit in the period containing `now` (unix s); a
  /// denied (or pending) request consumes nothing.
  virtual quota_result check_and_consume(std::string_view customer, std::string_view feature, std::int64_t limit,
                                         period_kind period, std::int64_t quantity, std::int64_t now) = 0;
  /// Usage that already happened (requests admitted under a decision lease), whether or not it fits.
  virtual void consume(std::string_view customer, std::string_view feature, period_kind period, std::int64_t quantity,
                       std::int64_t now) = 0;
  /// How many of `wanted` requests a decision lease of this key may admit in the plugin (0..wanted).
  /// The default grants them all: they are counted when the plugin reports them.
  virtual std::int64_t lease(std::string_view customer, std::string_view feature, period_kind period,
                             std::int64_t wanted, std::int64_t ttl_ms, std::int64_t now) {
    (void)customer, (void)feature, (void)period, (void)ttl_ms, (void)now;
    return wanted;
  }
  /// Whether a lease of a limited feature needs a client that reports its leases' unused units
  /// (check_request::reports_unused): leases set units aside until reported (reservations).
  [[nodiscard]] virtual bool lease_needs_reports() const { return false; }
  /// Units of ended leases the plugin never admitted (its `lease_unused` report). The default
  /// ignores them: leases are counted only when reported.
  virtual void release(std::string_view customer, std::string_view feature, period_kind period, std::int64_t quantity,
                       std::int64_t now) {
    (void)customer, (void)feature, (void)period, (void)quantity, (void)now;
  }
};

/// Usage consumed locally and not yet added to the shared total.
struct pending_delta {
  std::string key;  ///< "{customer}:{feature}:{period key}", see quota_counters::make_key
  std::int64_t delta = 0;
  std::int64_t period_end = 0;  ///< unix seconds; a Redis key can expire some time after this
};

/// Counters keyed "{customer}:{feature}:{period key}" (e.g. "cust_acme:advanced_search:2026-11").
/// The key is unambiguous because feature names cannot hold ':' and the period key is fixed-form.
/// A new period is a new key, so counters roll over by themselves; expire() drops ended ones.
///
/// Sharing (Redis): for each key, used = remote_total + pending. take_pending_deltas() moves the
/// pending deltas into the remote part (optimistically) and returns them; quota_sync
/// (redis_quota_sync.hpp) adds them to this sidecar's absolute contribution per key, pushes that,
/// and hands each reply's shared total to apply_remote_total(). A push that fails is sent again at
/// the next sync (reconciliation); the deltas stay counted locally meanwhile.
///
/// Used with Redis only under cache.quota_mode counters; the default (reserve) admits from units
/// reserved in Redis instead and is exact (quota_reservations.hpp).
/// Over-admission bound: with N sidecars syncing every `sync_interval` T, each sidecar only sees
/// the others' usage at its next sync, so between two syncs every sidecar may admit up to the
/// remaining quota it last saw. The cluster-wide overshoot for one key is therefore at most
/// (N - 1) x min(remaining at the last sync, what one sidecar admits for that key in T + one
/// request's quantity), e.g. 2 sidecars, T = 1 s, a customer at 50 req/s: at most ~50 over.
/// While Redis is down each sidecar enforces the limit alone (at most N x limit in total), and
/// the reconciled total then blocks further use for the rest of the period.
///
/// Not thread-safe: one owner (the io thread). Check-and-consume does not allocate once a key
/// exists.
class quota_counters final : public quota_ledger {
 public:
  /// warning_percent: entitlements.quota_warning_percent (0 disables warnings).
  explicit quota_counters(std::uint32_t warning_percent = 80) : warning_percent_(warning_percent) {}
  /// A new entitlements.quota_warning (SIGHUP); applies from the next check.
  void set_warning_percent(std::uint32_t warning_percent) { warning_percent_ = warning_percent; }

  /// Consumes `quantity` (>= 0) if used + quantity <= limit in the period containing `now`
  /// (unix seconds); a denied request consumes nothing.
  quota_result check_and_consume(std::string_view customer, std::string_view feature, std::int64_t limit,
                                 period_kind period, std::int64_t quantity, std::int64_t now) override;

  /// Adds `quantity` (>= 0) to the counter of the period containing `now` whether or not it fits
  /// the limit: usage that already happened (requests admitted under a decision lease).
  void consume(std::string_view customer, std::string_view feature, period_kind period, std::int64_t quantity,
               std::int64_t now) override;

  /// The local view of a key's usage (remote total + pending), 0 when unknown.
  [[nodiscard]] std::int64_t used(std::string_view key) const;

  /// Every non-zero local delta since the last call, moved into the remote part of its counter.
  [[nodiscard]] std::vector<pending_delta> take_pending_deltas();

  /// Gives back deltas that could not be pushed; they are returned again by the next take. The
  /// daemon does not need it (quota_sync keeps unconfirmed contributions and sends them again).
  void restore_pending_deltas(const std::vector<pending_delta>& deltas);

  /// Sets a key's shared total (the sum quota_sync's push replies with); local usage becomes
  /// total + the deltas consumed since. Creates the counter when absent; false if the key's
  /// period part is malformed.
  bool apply_remote_total(std::string_view key, std::int64_t total);

  /// Drops counters whose period ended at or before `now` and that have nothing to push.
  /// Returns how many were dropped.
  std::size_t expire(std::int64_t now);

  [[nodiscard]] std::size_t size() const { return counters_.size(); }

  /// Builds "{customer}:{feature}:{period key}" into out (reusing its capacity).
  static void make_key(std::string& out, std::string_view customer, std::string_view feature,
                       std::string_view period_key);

 private:
  struct counter {
    std::int64_t remote = 0;   // the shared total as last known (plus taken, in-flight deltas)
    std::int64_t pending = 0;  // consumed here, not yet taken
    std::int64_t period_end = 0;
    bool dirty = false;  // listed in dirty_
  };
  using map_type = string_map<counter>;

  void mark_dirty(map_type::value_type& entry);

  std::uint32_t warning_percent_;
  map_type counters_;
  std::vector<map_type::value_type*> dirty_;  // element pointers are stable in unordered_map
  std::string key_buf_;
};

}  // namespace aforo::core::entitlements
