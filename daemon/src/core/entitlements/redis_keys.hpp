// Key names of the Redis edge cache: one prefix per tenant, then shared counters (quota, margin
// COGS), margin guard notices, the published snapshot (one hash per version) and the publish lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aforo::core::entitlements {

/// Builds every key the sidecars share. Layout under prefix "aforo:{tenant}:" ("aforo:_:" when
/// the tenant is unset):
///   q:{customer}:{feature}:{period}  quota counter: a hash sidecar instance -> its contribution
///                                    (the shared total is the sum), expires after its period
///   r:{customer}:{feature}:{period}  quota reservations (cache.quota_mode reserve): a hash with,
///                                    per sidecar instance i, u:i consumed, h:i held, e:i when the
///                                    hold expires (ms), s:i holds settled as used after expiry
///                                    (core/entitlements/quota_reservations.hpp); expires after its period
///   m:{customer}:$cogs:{period}      margin guard COGS of one customer and period, in micro-units:
///                                    the same hash layout and expiry as q: (see core::margin::cogs_ledger)
///   mn:{customer}:{guard}:{period}   margin guard notice: the level whose webhook the cluster last
///                                    sent for this customer, guard and revenue period, as
///                                    "{level}:{instance}" (level 0..3 = NONE..L3, instance = the
///                                    sidecar that claimed it); expires a margin after the period.
///                                    Claimed with core::margin::notice_claim_script (see
///                                    core/margin/level_notice.hpp for the rule)
///   ent:version                      the snapshot version readers use
///   ent:v:{version}                  hash customer id -> customer entry JSON for that version
///   ent:lock                         short publish lock (value = the holder's instance id)
/// Pure; thread-safe (immutable after construction).
class redis_keys {
 public:
  explicit redis_keys(std::string_view tenant);

  /// Counter sets: the letter after the prefix that keeps each set's keys apart.
  static constexpr std::string_view quota_set = "q";
  static constexpr std::string_view cogs_set = "m";
  /// Quota reservations (cache.quota_mode reserve): a hash per key, see quota_reserve_script().
  static constexpr std::string_view reservation_set = "r";

  [[nodiscard]] const std::string& prefix() const { return prefix_; }
  /// A counter of the set `set` (quota_set, cogs_set): prefix + set + ":" + counter_key, where
  /// counter_key is quota_counters' "{customer}:{feature}:{period key}".
  [[nodiscard]] std::string counter(std::string_view set, std::string_view counter_key) const;
  /// counter(quota_set, counter_key).
  [[nodiscard]] std::string quota(std::string_view counter_key) const { return counter(quota_set, counter_key); }
  /// counter(cogs_set, counter_key); counter_key is cogs_ledger's "{customer}:$cogs:{period key}".
  [[nodiscard]] std::string cogs(std::string_view counter_key) const { return counter(cogs_set, counter_key); }
  /// Inverse of quota(): the counter key, or nullopt when redis_key is not a quota key of this prefix.
  [[nodiscard]] std::optional<std::string_view> counter_key_of(std::string_view redis_key) const;
  /// The margin guard's notice key of one customer, guard and revenue period key ("2026-11"; empty
  /// when the customer has no revenue): prefix + "mn:{customer}:{guard}:{period}".
  [[nodiscard]] std::string margin_notice(std::string_view customer, std::string_view guard,
                                          std::string_view period) const;
  [[nodiscard]] std::string snapshot_version() const;
  /// The hash holding one version's customers; snapshot_hash_prefix() + version.
  [[nodiscard]] std::string snapshot_hash(std::string_view version) const;
  [[nodiscard]] std::string snapshot_hash_prefix() const;
  [[nodiscard]] std::string publish_lock() const;

 private:
  std::string prefix_;
};

/// When a quota counter key may expire in Redis: its period end plus a margin (seconds) so that
/// deltas pushed late (after an outage) for a just-ended period still land on the counter.
[[nodiscard]] constexpr std::int64_t quota_expire_at(std::int64_t period_end, std::int64_t margin_s = 3600) {
  return period_end + margin_s;
}

}  // namespace aforo::core::entitlements
