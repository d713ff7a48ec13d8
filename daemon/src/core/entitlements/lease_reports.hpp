// The plugin's lease reports (`leased`, `lease_unused` of POST /v1/check) counted once each, even
// when the check that carried one is sent again after an answer that never arrived; and the lease
// such a lost answer carried given back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "core/entitlements/check_request.hpp"
#include "core/entitlements/string_map.hpp"

namespace aforo::core::entitlements {

/// A client that reports its leases gives each check an id (`report_id`) and, when the check
/// fails (timeout, connection lost: the sidecar may or may not have counted it), sends the same id
/// again with its counts, grown by whatever the key has to report since: a report's counts are
/// cumulative for its id. This ledger remembers, per id, how much it has applied and turns each
/// check's counts into what was not applied yet, so a report counts exactly once.
///
/// An id sent again also says the answer to its last sending never arrived: a lease that answer
/// granted was never used by the client, so its units go back (added to `lease_unused`).
///
/// A renewal (a check sent in the background whose own request the lease already admitted,
/// `renewal`) counts its quantity as part of its report when the decision consumed it: the client
/// re-sends the report with that request in `leased`, whichever way the lost answer went.
///
/// Bounded: at most `capacity` ids (only those with counts or a lease are kept), the oldest
/// forgotten first. A re-sent report whose id is not known (forgotten, or this process restarted)
/// cannot be told from a first one: its `leased` is counted (at worst twice: under-admits) and its
/// `lease_unused` is not (at worst never given back: under-admits), so a quota is never exceeded
/// through a lost answer.
/// Not thread-safe: one owner (the io thread).
class lease_reports {
 public:
  static constexpr std::size_t default_capacity = 65536;
  explicit lease_reports(std::size_t capacity = default_capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  enum class outcome : std::uint8_t { none, first, repeated, unknown_resend };

  /// Replaces req.leased and req.lease_unused by what this report adds to what its id already
  /// applied (plus the lease of its last, unanswered, sending), and records it. Without a
  /// report_id the counts stay as they are (outcome none).
  outcome apply(check_request& req);

  /// The decision for the check carrying report_id: a renewal's consumed quantity (part of its
  /// report from now on), and the lease it grants (given back if the id comes again).
  void decided(std::string_view report_id, std::int64_t renewal_quantity, std::int64_t lease);

  [[nodiscard]] std::size_t size() const { return applied_.size(); }
  [[nodiscard]] std::uint64_t forgotten() const { return forgotten_; }

 private:
  struct counts {
    std::int64_t leased = 0;
    std::int64_t unused = 0;
    std::int64_t granted = 0;  // the lease the last sending's answer carried
  };
  counts& insert(std::string_view id, counts c);

  std::size_t capacity_;
  string_map<counts> applied_;
  std::deque<std::string> order_;  // ids, oldest first
  std::uint64_t forgotten_ = 0;
};

}  // namespace aforo::core::entitlements
