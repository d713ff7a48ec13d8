// Quota sharing through Redis as pure bookkeeping: what each sidecar pushes, the exact command,
// and what each outcome (applied, failed) does, so nothing is lost or counted twice.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/quota.hpp"
#include "core/entitlements/redis_keys.hpp"
#include "core/entitlements/string_map.hpp"

namespace aforo::core::entitlements {

/// A counter key its owner read (e.g. the margin guard's COGS on the request path) and wants the
/// shared total of, whether or not this sidecar contributes to it (see quota_sync::follow).
struct counter_read {
  std::string key;              ///< the quota_counters key "{customer}:{feature}:{period}"
  std::int64_t period_end = 0;  ///< unix seconds
};

/// One counter's push: this sidecar's whole contribution to the key so far (not a delta).
struct quota_push {
  std::string key;  ///< the quota_counters key "{customer}:{feature}:{period}"
  std::int64_t contribution = 0;
  std::int64_t expire_at = 0;  ///< unix seconds (period end + margin)
};

/// The shared counter of a key is a Redis hash: field = sidecar instance (random per process),
/// value = that sidecar's total contribution; the shared total is the sum of the fields.
/// A push (quota_sync_script, one atomic EVAL per batch) raises this sidecar's field to its
/// contribution when the field is lower (set-if-greater), sets EXPIREAT and replies with the sums.
///
/// Why absolute contributions rather than INCRBY deltas: a push that times out or loses its
/// connection after Redis applied it is simply sent again; setting the same absolute value twice
/// changes nothing, so there is neither loss (as when dropping a possibly-failed INCRBY) nor
/// double counting (as when retrying it). And when Redis restarts empty, every running sidecar's
/// next push writes back its whole contribution, so the total is rebuilt exactly, not just raised
/// to the largest local view. What is lost is only what a sidecar that is no longer running had
/// contributed when Redis lost its data.
///
/// Flow: collect() takes the counters' pending deltas (quota_counters::take_pending_deltas),
/// adds them to the contributions, and returns every key whose contribution Redis has not
/// confirmed. applied() feeds the sums into quota_counters::apply_remote_total and marks the sent
/// values confirmed; failed() leaves them unconfirmed, so the next collect() sends them again.
/// Nothing needs restore_pending_deltas: the deltas stay counted locally meanwhile.
///
/// Redis restarted empty: the caller calls resend_all() when the connection is re-established, so
/// every known contribution is pushed again (not only the keys that changed meanwhile); a sidecar
/// with no new usage still puts its part back. Set-if-greater makes this harmless when Redis had
/// kept its data. Until every sidecar has put its part back, a reply is lower than the total this
/// sidecar knew; since a counter only grows within its period, the local view never drops below
/// the last total applied + this sidecar's own growth since (so a margin level or a quota does not
/// flap open while Redis is rebuilt). The flip side: a key deleted in Redis by hand is not
/// forgotten by running sidecars before its period ends.
///
/// Following (follow_for > 0, e.g. the margin guard's COGS): a sidecar only learns the shared total
/// of a key from the reply to a push, so a key whose contribution does not change would keep a stale
/// view of the other sidecars' part. A followed key is pushed at every collect even when confirmed
/// (the same contribution again, or 0 for a key this sidecar only reads: the script then writes
/// nothing and just sums), for follow_for seconds after its last local delta or follow() call. The
/// local view of a followed key therefore lags the shared total by at most one collect interval
/// plus a round trip. Quota keeps follow_for = 0: every admitted request consumes, and that push
/// brings the total back.
/// Not thread-safe: one owner (the io thread).
class quota_sync {
 public:
  /// max_pushes: keys per batch (bounds one script call).
  explicit quota_sync(std::size_t max_pushes = 200, std::int64_t expire_margin_s = 3600)
      : max_pushes_(max_pushes == 0 ? 1 : max_pushes), expire_margin_s_(expire_margin_s) {}

  /// How long (seconds) a key is followed after its last local activity; 0 (the default) disables
  /// following: keys are pushed only when their contribution is unconfirmed.
  void follow_for(std::int64_t seconds) { follow_s_ = seconds > 0 ? seconds : 0; }

  /// Follows a key's shared total until now + follow_for (no-op when following is off), creating
  /// its bookkeeping with contribution 0 when this sidecar never contributed to it.
  void follow(std::string_view key, std::int64_t period_end, std::int64_t now);

  /// Batches of pushes to send now: every unconfirmed key with its current contribution, and every
  /// key followed at `now` (unix s; only used when following).
  [[nodiscard]] std::vector<std::vector<quota_push>> collect(quota_counters& q, std::int64_t now = 0);

  /// The connection was (re-)established and Redis may have lost its data: every known key is
  /// pushed again by the next collect(). Returns how many keys that is.
  std::size_t resend_all();

  /// Redis answered a batch with the shared totals, in push order (each applied as the total plus
  /// whatever this sidecar took for the key after the batch was built; never below the last total
  /// applied + this sidecar's growth since, see above). False (nothing applied, the pushes stay
  /// unconfirmed) when the reply has the wrong length.
  bool applied(std::span<const quota_push> batch, std::span<const std::int64_t> totals, quota_counters& q);
  /// The batch's outcome is unknown or refused: it is sent again by the next collect().
  void failed(std::span<const quota_push> batch);

  /// Drops the bookkeeping of keys whose period (plus margin) ended before `now` (unix s), and of
  /// keys only read (nothing contributed) that are no longer followed.
  std::size_t expire(std::int64_t now);

  /// Keys whose contribution Redis has not confirmed.
  [[nodiscard]] std::size_t unconfirmed() const;
  /// This sidecar's contribution to a key (0 when unknown).
  [[nodiscard]] std::int64_t contribution(std::string_view key) const;

  /// EVAL arguments after the script text: numkeys, the Redis keys (redis_keys::counter of `set`),
  /// then instance and per key (contribution, expire_at).
  [[nodiscard]] static std::vector<std::string> script_args(std::span<const quota_push> batch, const redis_keys& keys,
                                                            std::string_view instance,
                                                            std::string_view set = redis_keys::quota_set);

 private:
  static constexpr std::int64_t never_confirmed = -1;  // contributions are >= 0

  struct entry {
    std::int64_t contribution = 0;
    std::int64_t confirmed = 0;  // the value Redis last acknowledged (never_confirmed: resend)
    std::int64_t expire_at = 0;
    std::int64_t follow_until = 0;  // unix s; pushed at every collect before then
    std::int64_t total = -1;        // the shared total last applied (-1: none yet)
    std::int64_t total_mine = 0;    // this sidecar's contribution within `total`
    bool sending = false;           // in a batch not answered yet
  };

  std::size_t max_pushes_;
  std::int64_t expire_margin_s_;
  std::int64_t follow_s_ = 0;
  string_map<entry> entries_;
};

/// The Lua script run by EVAL for every batch (see quota_sync).
[[nodiscard]] std::string_view quota_sync_script();

/// The shared total of a quota hash's field values (what the script sums).
[[nodiscard]] std::int64_t quota_total(std::span<const std::int64_t> contributions);

}  // namespace aforo::core::entitlements
