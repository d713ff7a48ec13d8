// One batch out to ingest, as the deliverer keeps it while several are in flight: what goes out now
// (the whole batch, or the front part after 413 splits), the attempts of that part, when it may go
// again, and when the batch is done. Pure state; the deliverer does the sending, the spool and the
// dead-letter file, and reports each result here. Time is passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace aforo::core {

class delivery_flight {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  struct part {
    std::string body;
    std::uint32_t events = 0;
  };

  /// A batch of `events` events, due at once.
  explicit delivery_flight(std::uint32_t events) : events_(events) {}

  /// The whole batch goes out (no 413 split pending).
  [[nodiscard]] bool whole() const { return parts_.empty(); }
  /// The part going out when !whole().
  [[nodiscard]] const part& front() const { return parts_.front(); }
  /// Events in what goes out now.
  [[nodiscard]] std::uint32_t sending_events() const { return parts_.empty() ? events_ : parts_.front().events; }

  [[nodiscard]] bool in_flight() const { return in_flight_; }
  /// Delivered, dead-lettered or handed back (spool): nothing more to send.
  [[nodiscard]] bool finished() const { return finished_; }
  /// Waiting for its time (a retry, a hold) or sendable now.
  [[nodiscard]] bool due(time_point now) const { return !in_flight_ && !finished_ && now >= not_before_; }
  [[nodiscard]] time_point not_before() const { return not_before_; }
  [[nodiscard]] time_point sent_at() const { return sent_at_; }
  /// Requests in flight when it was sent (itself included): the concurrency limit's sample.
  [[nodiscard]] std::uint32_t level() const { return level_; }
  /// Sends of the current part so far (1 = the first send): what core::decide_delivery takes.
  [[nodiscard]] std::uint32_t attempt() const { return attempt_; }

  /// A request goes out; true when it sends the same part again (a retry).
  bool sent(time_point now, std::uint32_t level);
  /// Its answer arrived (whatever it says): the flight is no longer in flight.
  void answered() { in_flight_ = false; }
  /// The same part again at once and not as an attempt: ingest refused only the encoding.
  void resend_now(time_point now);
  /// The same part again at `at` (a retry with backoff).
  void retry_at(time_point at) { not_before_ = at; }
  /// 413: the part that went out (or the batch) is sent again as `first` then `second`, each a
  /// part of its own with a fresh attempt count.
  void split(part first, part second);
  /// The part (or the batch) was delivered or dead-lettered: on to the next part at once, or the
  /// batch is done (finished() from then on). True when the batch is done.
  bool part_done();
  /// The batch cannot go on now (retries exhausted, unauthorized, the dead-letter file failed): the
  /// parts already delivered go again with the rest (ingest deduplicates them by key); a fresh attempt
  /// count from `at`. The caller may then hand it elsewhere (finish()).
  void hold(time_point at);
  /// Handed elsewhere (a memory batch to the spool, the whole batch dead-lettered): done here.
  void finish() { finished_ = true; }

 private:
  std::uint32_t events_;
  std::deque<part> parts_;  // after a 413: what of the batch is left to send, in order
  std::uint32_t attempt_ = 0;
  bool in_flight_ = false;
  bool finished_ = false;
  time_point not_before_{};
  time_point sent_at_{};
  std::uint32_t level_ = 0;
};

}  // namespace aforo::core
