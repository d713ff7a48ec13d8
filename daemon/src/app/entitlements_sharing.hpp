// The seam between the decision service and what sidecars of a cluster share (Redis): customer
// look-ups that miss the local snapshot, publishing a loaded snapshot, and quota delta sync.
// local_entitlements_sharing is the no-Redis implementation: every sidecar works alone.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "core/entitlements/lru_cache.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/snapshot.hpp"

namespace aforo::app {

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
  /// (take_pending_deltas / apply_remote_total, or restore_pending_deltas when unreachable). The
  /// counters outlive this object.
  virtual void sync_quota(core::entitlements::quota_counters& counters) = 0;

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
