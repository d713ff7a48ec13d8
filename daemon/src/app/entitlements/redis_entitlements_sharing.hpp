// The Redis edge cache behind the decision service's entitlements_sharing seam: publishes loaded
// snapshots (one sidecar at a time, under a short lock), reads customers through an in-process
// LRU, and shares quota counters between the sidecars of a cluster.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "app/entitlements/entitlements_sharing.hpp"
#include "app/service.hpp"
#include "core/entitlements/lru_cache.hpp"
#include "core/entitlements/redis_keys.hpp"
#include "core/entitlements/redis_quota_sync.hpp"
#include "io/redis/redis_client.hpp"
#include "util/clock.hpp"

namespace aforo::app {

/// entitlements_sharing over Redis (cache.redis). Threading: io thread only, like the seam.
///
/// - Snapshot publish: on snapshot_loaded, SET ent:lock NX PX 30s; the holder compares
///   ent:version, and when it differs writes the customers into the hash ent:v:{version}
///   (HSET in chunks, one after another), then one script flips ent:version, gives the previous
///   version's hash an hour to live and releases the lock. A sidecar that finds the lock taken
///   tries again at the next sync tick until some sidecar has published its version.
/// - Read-through: lookup_customer answers at once from the LRU (hit, or stale plus a background
///   refresh) and, on a miss, answers "unknown" (miss) at once and fetches the customer from
///   Redis in the background (one fetch per id at a time), so the next request finds it. The
///   request path never waits on Redis. Absent customers are remembered too (negative entries).
///   Entries are fresh for entitlements.refresh_interval.
/// - Counters: sync_quota pushes each key's contribution through core::entitlements::quota_sync
///   (see there for why contributions, not INCRBY deltas, and how Redis restarts are reconciled),
///   for the quota counters (key set q:) and every set given to share_counters (e.g. the margin
///   guard's COGS, m:), each set in its own rounds, one round at a time per set. While Redis is
///   unavailable nothing is taken: deltas stay pending in the counters and are pushed at the first
///   sync after it returns; on every (re)connection every known contribution is pushed again, so a
///   Redis that restarted empty gets back the part of sidecars that had no new usage meanwhile
///   (logged "redis: connected, sending every known counter contribution again (...)"). A refused
///   push is logged ("redis: <set> push refused: ...") and sent again. Metric
///   aforo_sidecar_redis_sync_pushes_total{counters="quota|cogs",result="ok|failed"} (one per
///   script call, up to 200 keys each).
/// - Level-change webhooks: claim_level_notice runs core::margin::notice_claim_script on the
///   notice key (redis_keys::margin_notice) with this sidecar's instance id; a reply of 1 is
///   claimed, 0 claimed_elsewhere, anything else (not connected, cache.redis_timeout, an error
///   reply) unavailable. Never on the request path: the margin service claims after answering.
/// - Quota reservations (cache.quota_mode reserve): reserve() runs
///   core::entitlements::quota_reserve_script() on the key's hash r:{customer}:{feature}:{period}
///   by EVALSHA (EVAL when Redis answers NOSCRIPT, e.g. after a restart), one command per call,
///   pipelined. Metric aforo_sidecar_quota_reservation_calls_total{result="granted|short|failed"}.
/// - state(): "connected" | "unavailable".
class redis_entitlements_sharing final : public entitlements_sharing {
 public:
  /// Throws std::runtime_error when cache.redis is malformed (startup only). Starts connecting.
  explicit redis_entitlements_sharing(context& ctx);
  ~redis_entitlements_sharing() override;

  void snapshot_loaded(const std::shared_ptr<const core::entitlements::snapshot>& snap) override;
  [[nodiscard]] bool can_lookup() const override { return true; }
  void lookup_customer(std::string_view customer_id, lookup_done done) override;
  void sync_quota(core::entitlements::quota_counters& counters) override;
  void share_counters(shared_counters set) override;
  void claim_level_notice(const core::margin::level_change& change, std::function<void(notice_claim)> done) override;
  [[nodiscard]] std::string_view state() const override;
  [[nodiscard]] bool can_reserve() const override { return reserve_; }
  [[nodiscard]] bool store_connected() const override { return client_.connected(); }
  void reserve(std::vector<core::entitlements::reserve_call> calls, reserve_done done) override;

  /// This process's field name in the quota hashes (random per start).
  [[nodiscard]] const std::string& instance() const { return instance_; }

 private:
  using clock = util::steady_clock;
  using snapshot_ptr = std::shared_ptr<const core::entitlements::snapshot>;
  struct counter_set;

  void sync_set(counter_set& s, std::int64_t now);
  void fetch(const std::string& id);
  void try_publish();
  void publish_chunk(snapshot_ptr snap, std::shared_ptr<std::vector<std::string>> ids, std::size_t from);
  void publish_flip(const snapshot_ptr& snap);
  void publish_done(const snapshot_ptr& snap, bool published, const std::string& why);

  context& ctx_;
  core::entitlements::redis_keys keys_;
  std::string instance_;
  io::redis_client client_;
  std::vector<std::unique_ptr<counter_set>> sets_;  // [0] = quota; stable addresses for callbacks
  std::int64_t last_expire_ = 0;
  core::entitlements::lru_cache<std::string, customer_ptr, core::entitlements::string_hash, std::equal_to<>> lru_;
  std::unordered_set<std::string> fetching_;
  snapshot_ptr to_publish_;
  bool publishing_ = false;
  bool reserve_ = false;     // cache.quota_mode reserve
  std::string reserve_sha_;  // SHA1 of the reserve script, for EVALSHA
};

}  // namespace aforo::app
