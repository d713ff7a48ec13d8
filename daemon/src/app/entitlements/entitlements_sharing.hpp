// The seam between the decision service and what sidecars of a cluster share (Redis): customer
// look-ups that miss the local snapshot, publishing a loaded snapshot, and counter sync (quota,
// plus other counter sets such as the margin guard's COGS).
// local_entitlements_sharing is the no-Redis implementation: every sidecar works alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/lru_cache.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/quota_reservations.hpp"
#include "core/entitlements/redis_quota_sync.hpp"
#include "core/entitlements/snapshot.hpp"

namespace aforo::core::margin {
struct level_change;
}

namespace aforo::app {

/// A set of counters shared like the quota counters, under its own key set (e.g. the margin
/// guard's COGS, core::margin::cogs_ledger).
struct shared_counters {
  std::string set;    ///< the key set, core::entitlements::redis_keys::counter (never quota_set)
  std::string label;  ///< names the set in logs and metrics, e.g. "cogs"
  core::entitlements::quota_counters* counters = nullptr;  ///< must outlive the sharing object
  /// Keys read since the last call (may be empty): their shared totals are followed as after a
  /// local delta. Called on the io thread at every sync.
  std::function<std::vector<core::entitlements::counter_read>()> take_reads;
  /// Seconds a key's shared total is re-read at every sync after its last local activity (delta or
  /// read); 0 = only when this sidecar's contribution changes (as quota). See quota_sync.
  std::int64_t follow_s = 0;
};

/// How a claim on a margin level-change webhook ended (entitlements_sharing::claim_level_notice).
enum class notice_claim : std::uint8_t {
  claimed,            ///< this sidecar sends it
  claimed_elsewhere,  ///< another sidecar of the cluster told it (or a later level) already
  unavailable,        ///< the shared store did not answer (down, timeout, error): send anyway
};

/// Threading: every member is called on the io thread, and every callback must run there too.
class entitlements_sharing {
 public:
  using customer_ptr = std::shared_ptr<const core::entitlements::customer>;
  /// customer null = unknown; state says where it came from (hit: fresh LRU entry, stale: old
  /// entry served while it is refreshed, miss: fetched from the shared store).
  using lookup_done = std::function<void(customer_ptr customer, core::entitlements::cache_state state)>;

  virtual ~entitlements_sharing() = default;

  /// A snapshot was loaded from the source (file or control plane): publish it to the shared
  /// store if this sidecar holds the publish lock. Called after it is in force locally.
  virtual void snapshot_loaded(const std::shared_ptr<const core::entitlements::snapshot>& snap) = 0;

  /// Whether lookup_customer can find customers the local snapshot does not hold. When false the
  /// decision service answers a local miss as an unknown customer without calling it.
  [[nodiscard]] virtual bool can_lookup() const = 0;

  /// Looks up a customer absent from the local snapshot. `done` is called exactly once, on the io
  /// thread, possibly before this returns.
  virtual void lookup_customer(std::string_view customer_id, lookup_done done) = 0;

  /// Called every cache.sync_interval: push the counters' pending deltas to the shared totals
  /// (through core::entitlements::quota_sync: absolute contributions, re-sent until confirmed), and
  /// those of every set given to share_counters. The counters outlive this object.
  virtual void sync_quota(core::entitlements::quota_counters& counters) = 0;

  /// Shares another counter set through the same store, at every sync_quota call (same tick,
  /// same connection). Call at wiring, before start. Without a shared store: nothing (the
  /// counters stay local).
  virtual void share_counters(shared_counters set) { (void)set; }

  /// Claims the webhook of a margin level change for this sidecar, so the sidecars that all see
  /// the change send it once (core::margin::notice_due). `done` is called exactly once on the io
  /// thread, possibly before this returns. Without a shared store: claimed (every sidecar is alone).
  virtual void claim_level_notice(const core::margin::level_change& change, std::function<void(notice_claim)> done) {
    (void)change;
    done(notice_claim::claimed);
  }

  /// Whether quota is admitted from reservations in the shared store (cache.quota_mode reserve
  /// with cache.redis set); false: counted locally and shared after the fact (sync_quota).
  [[nodiscard]] virtual bool can_reserve() const { return false; }
  /// Whether the shared store is reachable now (reservations: false = store-down mode).
  [[nodiscard]] virtual bool store_connected() const { return false; }
  /// The answer to one reservation call: the reply, or nullopt when it failed (not connected,
  /// cache.redis_timeout, connection lost, an error reply).
  using reserve_done =
      std::function<void(const core::entitlements::reserve_call&, std::optional<core::entitlements::reserve_reply>)>;
  /// Runs each call with core::entitlements::quota_reserve_script(); `done` once per call, on the
  /// io thread, never from inside reserve(). Called only when can_reserve() is true.
  virtual void reserve(std::vector<core::entitlements::reserve_call> calls, reserve_done done) {
    (void)calls;
    (void)done;
  }

  /// The handshake's "redis" value: "connected" | "unavailable" | "disabled"; empty = leave it to
  /// whoever else reports Redis.
  [[nodiscard]] virtual std::string_view state() const = 0;
};

/// No shared store: decisions use the local snapshot and local counters only.
class local_entitlements_sharing final : public entitlements_sharing {
 public:
  void snapshot_loaded(const std::shared_ptr<const core::entitlements::snapshot>& /*snap*/) override {}
  [[nodiscard]] bool can_lookup() const override { return false; }
  void lookup_customer(std::string_view /*customer_id*/, lookup_done done) override {
    done(nullptr, core::entitlements::cache_state::miss);
  }
  void sync_quota(core::entitlements::quota_counters& /*counters*/) override {}
  [[nodiscard]] std::string_view state() const override { return {}; }
};

}  // namespace aforo::app
