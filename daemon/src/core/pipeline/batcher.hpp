// The memory buffer and batcher: FIFO event texts, cut into ingest batches by count or by deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::core {

using pipeline_clock = std::chrono::steady_clock;

/// Builds `{"events":[e1,e2,...]}` from compact event texts without re-parsing them.
/// `add_body` splices the events of an existing batch body (e.g. a spool record) into this one.
class batch_body_builder {
 public:
  /// `reserve_bytes`: expected total size, to avoid regrowth.
  explicit batch_body_builder(std::size_t reserve_bytes = 0);
  void add_event(std::string_view event_json);
  /// Appends the events of `body`, which must be a body made by this builder. Returns false
  /// (and appends nothing) when `body` does not have that shape.
  bool add_body(std::string_view body, std::uint32_t event_count);
  [[nodiscard]] std::uint32_t events() const noexcept { return events_; }
  /// Closes the array and returns the body; the builder is then empty again.
  [[nodiscard]] std::string finish();

 private:
  std::string body_;
  std::uint32_t events_ = 0;
};

/// A batch cut by the batcher: the event texts in FIFO order.
struct event_batch {
  std::vector<std::string> events;
  std::size_t json_bytes = 0;  ///< sum of the event texts' sizes
  /// `{"events":[...]}`; one allocation.
  [[nodiscard]] std::string body() const;
};

/// Memory buffer of accepted events (FIFO) that cuts batches of at most `max_batch_events`,
/// when that many are queued or when the oldest queued event has waited `flush_interval`.
/// Holds at most `max_buffered_events`; `push` refuses past that so the shell spills to the spool.
/// Pure: time is passed in. Not thread-safe: one owner (the io_context thread).
class batcher {
 public:
  struct options {
    std::size_t max_batch_events = 100;  ///< batch.max_events, clamped to 1..1000
    std::chrono::milliseconds flush_interval{5000};
    std::size_t max_buffered_events = 10000;  ///< buffer.max_events
  };

  explicit batcher(options opts);

  /// Queues one event text. Returns false, leaving `event_json` untouched, when the buffer is full.
  bool push(std::string&& event_json, pipeline_clock::time_point now);
  /// Free places left in the buffer.
  [[nodiscard]] std::size_t room() const noexcept;
  [[nodiscard]] bool full() const noexcept { return room() == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return queue_.size(); }
  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  [[nodiscard]] std::size_t max_batch_events() const noexcept { return opts_.max_batch_events; }

  /// A batch when one is due at `now`: a full batch, or whatever is queued (up to a batch) once
  /// the oldest event's deadline has passed. Otherwise nothing.
  [[nodiscard]] std::optional<event_batch> take_ready(pipeline_clock::time_point now);
  /// When take_ready will next return a batch if nothing else is pushed: `now`-independent; the
  /// oldest event's arrival + flush_interval, the far past when a full batch is queued, or nothing
  /// when empty. The shell arms its timer for this.
  [[nodiscard]] std::optional<pipeline_clock::time_point> next_deadline() const;
  /// Up to one batch regardless of deadlines (drain at SIGTERM, or on recovery).
  [[nodiscard]] std::optional<event_batch> take_any();

 private:
  struct entry {
    std::string json;
    pipeline_clock::time_point arrived;
  };
  event_batch cut(std::size_t n);

  options opts_;
  std::deque<entry> queue_;
};

}  // namespace aforo::core
