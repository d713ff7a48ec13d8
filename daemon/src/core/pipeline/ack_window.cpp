// Cumulative acknowledgement of spool records delivered out of order; see ack_window.hpp.
#include "core/pipeline/ack_window.hpp"

#include <algorithm>

namespace aforo::core {

void ack_window::sent(std::uint64_t seq, std::uint32_t record_events) {
  auto& p = records_[seq];
  if (record_events > p.total) {
    open_events_ += record_events - p.total;
    p.total = record_events;
  }
}

void ack_window::delivered(std::uint64_t seq, std::uint32_t events) {
  const auto it = records_.find(seq);
  if (it == records_.end()) return;  // not sent through this window (or acked already)
  it->second.delivered = std::min(it->second.total, it->second.delivered + events);
}

std::optional<std::uint64_t> ack_window::take_ackable() {
  std::optional<std::uint64_t> through;
  while (!records_.empty()) {
    const auto it = records_.begin();
    if (it->second.delivered < it->second.total) break;
    through = it->first;
    open_events_ -= it->second.total;
    records_.erase(it);
  }
  return through;
}

}  // namespace aforo::core
