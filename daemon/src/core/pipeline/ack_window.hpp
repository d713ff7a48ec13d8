// The acknowledgement window of concurrent delivery: several batches of spool records are in
// flight at once and come back in any order; the spool's cursor may only move past records whose every
// event was delivered, in order (as TCP's cumulative ack, or Kafka's in-flight requests). Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace aforo::core {

/// Records are identified by their spool sequence numbers, which increase in spool order.
/// Not thread-safe: one owner.
class ack_window {
 public:
  /// A batch carries `events` of record `seq`'s `record_events` (all of them, or a slice).
  void sent(std::uint64_t seq, std::uint32_t record_events);
  /// Those `events` of record `seq` reached ingest.
  void delivered(std::uint64_t seq, std::uint32_t events);
  /// The highest sequence number that may be acked: every record from the oldest one tracked up to
  /// it was delivered whole. Nothing when the oldest is not. Acked records stop being tracked.
  [[nodiscard]] std::optional<std::uint64_t> take_ackable();
  /// Records sent and not yet acked (the window's size in records).
  [[nodiscard]] std::size_t open_records() const noexcept { return records_.size(); }
  /// The events of those records (each record counted whole once any of it was sent).
  [[nodiscard]] std::uint64_t open_events() const noexcept { return open_events_; }
  /// Forgets everything (the spool was reset, or delivery stopped).
  void clear() {
    records_.clear();
    open_events_ = 0;
  }

 private:
  struct progress {
    std::uint32_t total = 0;
    std::uint32_t delivered = 0;
  };
  std::map<std::uint64_t, progress> records_;
  std::uint64_t open_events_ = 0;
};

}  // namespace aforo::core
