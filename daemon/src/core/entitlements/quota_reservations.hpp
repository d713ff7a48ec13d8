// Quota admitted from units reserved in the shared store (Redis): each sidecar draws a chunk of a
// key's quota with one atomic script (the cluster-wide reserved total never exceeds the limit),
// admits locally from it, and returns what it did not use. Pure policy: no I/O, time given in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/quota.hpp"
#include "core/entitlements/string_map.hpp"

namespace aforo::core::entitlements {

/// cache.quota_* (see config/sidecar.yaml).
struct reservation_options {
  std::int64_t max_chunk = 1000;           ///< most units one reservation asks for
  std::int64_t chunk_window_ms = 1000;     ///< a chunk covers this long of the key's local rate
  std::int64_t chunk_ttl_ms = 30000;       ///< a holder that stops calling is settled after this
  std::int64_t down_allowance = 0;         ///< units per key admitted beyond held chunks while the store is down
  std::uint32_t down_percent = 1;          ///< or this share of the key's limit, whichever is larger
  std::int64_t recheck_ms = 50;            ///< after a refusal, ask the store again only this much later
  std::int64_t unreported = 100;           ///< units admitted beyond what the store acknowledged, at most
  std::int64_t unreported_window_ms = 50;  ///< or this long of the key's local rate, if more (R: see below)
};

/// One script call (quota_reserve_script): this sidecar's absolute consumption of the key in the
/// period, what it holds after the call before the grant, and how many more units it asks for.
/// want 0 and held 0 is a return: the holder is forgotten.
struct reserve_call {
  std::string key;  ///< "{customer}:{feature}:{period key}" (quota_counters::make_key)
  std::int64_t consumed = 0;
  std::int64_t held = 0;
  std::int64_t want = 0;
  std::int64_t limit = 0;
  std::int64_t expire_at = 0;  ///< unix s: when the store may drop the key (period end + margin)
  std::int64_t sent_ms = 0;    ///< local clock when built
  /// At most this many units beyond `consumed` may have been admitted on this holder's behalf
  /// (R, or the quantity of the requests waiting when larger, + the units set aside for leases): a hold that expires is
  /// settled as consumed + min(held, bound) used, and the rest returns.
  std::int64_t bound = 0;
  /// What the others reserved or used at this sidecar's last reply for the key (-1: no reply yet):
  /// the store keeps it as a floor when it has lost this sidecar's record (it came back empty).
  std::int64_t others = -1;
};

/// The script's answer.
struct reserve_reply {
  std::int64_t granted = 0;
  std::int64_t used = 0;      ///< consumed by the cluster (settled holds of gone sidecars included)
  std::int64_t reserved = 0;  ///< used + every live holder's units, after the grant
};

/// Per key (customer, feature, period):
/// - held: units reserved for this sidecar and not consumed; a request of quantity q is admitted
///   locally when held >= q (no store round trip), and the units are consumed.
/// - Chunk size adapts: target = min(max_chunk, local rate x chunk_window, free x share / 2),
///   where free = limit - reserved at the last reply and share = this sidecar's part of the key's
///   cluster rate (observed from the growth of `used`). Far from the limit that is the local rate's
///   worth; near it the chunk shrinks to 1: exact mode, each request reserves its own units and
///   waits for the answer. While target > 1 a refill is asked when held falls to target / 2, so a
///   busy key does not wait; held above 2 x target (the limit nears) is given back.
/// - A request that finds too few units held is pending: nothing consumed, a call is due, and the
///   caller asks again once the call is answered (or failed). A refusal (granted short) makes the
///   key deny without asking for recheck_ms; a key whose cluster `used` leaves no room denies at
///   once (used only grows within a period).
/// - Returns: a key not used for a third of chunk_ttl gives its units back; so does every key at
///   period end and at shutdown (shutdown_calls). Every call refreshes the holder's TTL in the
///   store; a holder that stops calling (killed) is settled after chunk_ttl as consumed + min(held,
///   bound) used, and the rest of its hold returns: a holder never admits more than
///   R = max(unreported, local rate x unreported_window_ms) units beyond what the store
///   acknowledged, plus what it set aside for leases (the plugin may admit all of it), so that
///   bound covers whatever it admitted unseen. Locally: consumed +
///   set-aside <= cap, where cap = the acknowledged call's consumed + bound (the smallest of the
///   acknowledged and the unconfirmed calls' caps while a call is unanswered); a report goes out in
///   the background from half of R used, and a request waits for it only once R is reached.
///   Under-admission after a kill: at most one chunk until the TTL, then at most bound per key.
///   Locally held units are usable only until sent_ms + chunk_ttl of the call that last confirmed
///   them, so a sidecar cut off from the store stops using them before the store could settle them.
/// - Store down (set_connected(false), or a call failed): held units admit until they expire, then
///   at most max(down_allowance, limit x down_percent / 100) units per key per outage, counted as
///   consumed and reported when the store returns (reconciliation: the cluster total then includes
///   them). Bound: while the store is down the cluster admits at most limit + N x that per key (N
///   sidecars).
/// - Restart: a new process is a new holder; its first call of a key reads the store's totals
///   before it admits anything.
/// - remaining = limit - (what others reserved or used at the last reply) - this sidecar's
///   consumption, never above what this sidecar answered last for the key (monotone).
/// - Leases (decision leases in the plugin): lease() sets units aside from held (at most half of
///   what held exceeds the units already set aside, within cap, none in exact mode), so the plugin
///   cannot admit past the chunk; consume() (the plugin's `leased` report) takes from the set-aside
///   first; release() (its `lease_unused` report: units of ended leases it never admitted) gives
///   them back to held. Set-aside units leave only by those reports, never by time: a report may
///   come arbitrarily late. When the key's units go back to the store (idle, period end, shutdown,
///   local expiry) the set-aside units still unreported are counted as consumed (written off), and
///   later reports are taken from what was written off: never over the limit; under by the
///   unreported leases of workers that exited.
/// - Store back empty (restarted without persistence, or flushed): a call whose holder record is
///   missing carries `others` (what the others held or used at its last reply) and the store keeps
///   it as a floor for the key (b:{i} + this holder's own); see quota_reserve_script().
/// Not thread-safe: one owner (the io thread).
class quota_reservations final : public quota_ledger {
 public:
  explicit quota_reservations(reservation_options o = {}, std::uint32_t warning_percent = 80)
      : o_(o), warning_percent_(warning_percent) {}

  void set_options(const reservation_options& o) { o_ = o; }
  void set_warning_percent(std::uint32_t p) { warning_percent_ = p; }
  /// The local monotonic clock, milliseconds; call before deciding and before take_calls.
  void set_now_ms(std::int64_t now_ms) { now_ms_ = now_ms; }
  /// Whether the store is reachable. Going down starts an outage (down_allowance per key).
  void set_connected(bool up);
  [[nodiscard]] bool connected() const { return connected_; }

  quota_result check_and_consume(std::string_view customer, std::string_view feature, std::int64_t limit,
                                 period_kind period, std::int64_t quantity, std::int64_t now) override;
  void consume(std::string_view customer, std::string_view feature, period_kind period, std::int64_t quantity,
               std::int64_t now) override;
  std::int64_t lease(std::string_view customer, std::string_view feature, period_kind period, std::int64_t wanted,
                     std::int64_t ttl_ms, std::int64_t now) override;
  void release(std::string_view customer, std::string_view feature, period_kind period, std::int64_t quantity,
               std::int64_t now) override;
  [[nodiscard]] bool lease_needs_reports() const override { return true; }

  /// The key of the last check that answered pending.
  [[nodiscard]] const std::string& pending_key() const { return pending_key_; }
  /// Whether take_calls() has something to send now (cheap; after every decision).
  [[nodiscard]] bool calls_due() const { return due_; }
  /// Calls to send now: pending requests, refills, returns (idle, period ended, surplus) and, with
  /// report = true (the periodic tick), consumption not yet reported and holds nearing expiry.
  /// At most one call per key is in flight. now_s: unix seconds (period ends).
  [[nodiscard]] std::vector<reserve_call> take_calls(std::int64_t now_s, bool report = false);
  /// The store answered the call.
  void on_reply(const reserve_call& c, const reserve_reply& r);
  /// The call's outcome is unknown (timeout, connection lost) or it was refused: nothing granted.
  void on_failure(const reserve_call& c);
  /// Returns of every key that holds units (held 0, want 0); the state is then dropped.
  [[nodiscard]] std::vector<reserve_call> shutdown_calls(std::int64_t now_s);

  /// Units admitted beyond held chunks while the store was down (since start).
  [[nodiscard]] std::uint64_t down_admitted() const { return down_admitted_; }
  /// True once per outage, when the first unit is admitted beyond held chunks (log a WARN).
  [[nodiscard]] bool take_down_warning();
  [[nodiscard]] std::size_t size() const { return keys_.size(); }
  /// Units this sidecar holds for a key (0 when unknown).
  [[nodiscard]] std::int64_t held(std::string_view key) const;
  /// The chunk size a key would ask for now (0 when unknown).
  [[nodiscard]] std::int64_t target(std::string_view key) const;
  /// Units of a key set aside for leases and not reported yet (0 when unknown).
  [[nodiscard]] std::int64_t lease_pool(std::string_view key) const;
  /// Units admitted for a key beyond what the store has acknowledged (set-aside included).
  [[nodiscard]] std::int64_t unacknowledged(std::string_view key) const;

 private:
  struct state {
    std::int64_t limit = 0;
    std::int64_t period_end = 0;  // unix s
    std::int64_t held = 0;
    std::int64_t held_until_ms = 0;  // local expiry of held units
    std::int64_t consumed = 0;       // absolute, this process, this period
    std::int64_t reported = 0;       // consumed as last sent
    std::int64_t lease_pool = 0;     // set aside for plugin leases, not reported yet
    std::int64_t written_off = 0;    // set-aside units counted as consumed, awaiting late reports
    std::int64_t cap = 0;            // consumed + lease_pool may not exceed this (see above)
    std::int64_t acked = 0;          // consumed as last acknowledged by the store
    std::int64_t others = 0;         // reserved or used by others at the last reply
    std::int64_t free = -1;          // limit - reserved at the last reply (-1: no reply yet)
    std::int64_t cluster_used = -1;  // used at the last reply
    std::int64_t last_reply_ms = 0;
    double local_rate = 0;  // units/s, smoothed
    double cluster_rate = 0;
    std::int64_t rate_mark = 0;  // consumed at the last rate sample
    std::int64_t rate_mark_ms = 0;
    std::int64_t refused_ms = -1;  // when the store last granted short
    std::int64_t failed_ms = -1;   // when a call last failed
    std::int64_t last_use_ms = 0;
    std::int64_t want = 0;       // units a waiting request needs (0: none waiting)
    std::int64_t down_used = 0;  // units admitted beyond held in this outage
    std::int64_t last_remaining = -1;
    bool in_flight = false;
    bool refill = false;  // a refill is due
  };
  using map_type = string_map<state>;

  state& state_of(std::string_view customer, std::string_view feature, std::int64_t limit, period_kind period,
                  std::int64_t now);
  void expire_held(state& s);
  void write_off(state& s);
  void sample_rate(state& s);
  [[nodiscard]] std::int64_t target_of(const state& s) const;
  [[nodiscard]] std::int64_t unreported_of(const state& s) const;
  [[nodiscard]] bool store_usable(const state& s) const;
  reserve_call make_call(const std::string& key, state& s, std::int64_t held_after, std::int64_t want);
  quota_result result(state& s, bool allowed, std::int64_t limit) const;

  reservation_options o_;
  std::uint32_t warning_percent_;
  std::int64_t now_ms_ = 0;
  bool connected_ = true;
  bool due_ = false;
  bool down_warned_ = false;
  bool down_warning_ = false;
  std::uint64_t down_admitted_ = 0;
  map_type keys_;
  std::string key_buf_;
  std::string pending_key_;
};

/// The Lua script of every call: KEYS[1] = the key's reservation hash; ARGV = instance, consumed,
/// held, want, limit, ttl_ms, expire_at, bound, others. Replies {granted, used, reserved}. Hash
/// fields per sidecar instance: u:{i} consumed (set-if-greater: a retried call changes nothing;
/// set by every call, 0 included, so a missing u:{i} means the store lost it), h:{i} held, e:{i}
/// when the hold expires (ms, the store's clock), r:{i} the holder's bound (an expired hold adds
/// min(h, r) to u:{i}; the rest returns), b:{i} the others' part as i last saw it, written when
/// u:{i} was missing (reserved >= b:{i} + u:{i} + h:{i}). s:{i} (holds settled by earlier
/// versions) counts as used.
[[nodiscard]] std::string_view quota_reserve_script();

}  // namespace aforo::core::entitlements
