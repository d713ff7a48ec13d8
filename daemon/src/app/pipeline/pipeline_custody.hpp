// Where accepted usage events live until Aforo has them: the memory buffer (durability memory) and
// the FIFO disk spool (LZ4-compressed records), with the when_full policy, spilling, read-error
// backoff and the dead-letter file (docs/design/resilience.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/pipeline/pipeline_metrics.hpp"
#include "config/config.hpp"
#include "core/backoff.hpp"
#include "core/pipeline/ack_window.hpp"
#include "core/pipeline/batcher.hpp"
#include "core/pipeline/event_validation.hpp"
#include "io/dead_letter.hpp"
#include "io/spool/spool_store.hpp"
#include "util/clock.hpp"

namespace aforo::app {

/// A batch on its way to ingest: a `{"events":[...]}` body of at most batch.max_events events, from
/// the spool (acked by sequence number once delivered) or cut from the memory buffer (owned only by
/// the deliverer until then).
struct pipeline_batch {
  std::string body;
  std::uint32_t events = 0;
  bool from_spool = false;
  std::uint64_t first_seq = 0;  ///< from_spool: the spool records the body holds, first to last
  std::uint64_t last_seq = 0;
  /// from_spool, a record larger than a batch is sent in slices: the slice ends after this many of
  /// last_seq's events. 0 when the body holds whole records.
  std::uint32_t slice_end = 0;
  bool slice_is_last = true;  ///< the slice reaches the record's end
};

/// durability disk: every accepted request becomes one spool record before the 202; batches are
/// cut from the spool (batch.max_events, or batch.flush_interval after the first record waiting).
/// durability memory (the seed's chain): events go to the memory buffer (buffer.max_events); what
/// does not fit spills to the spool as one record per request. Batches come from the spool first
/// (FIFO), then from memory. A memory batch that cannot be delivered now is moved to the spool.
/// No batch carries more than batch.max_events (or the smaller limit ingest showed with a 413).
/// Several spool batches may be out at once (concurrent delivery): batches are cut from a read
/// position past those already out, and records are acked in order once every event of them and of
/// every record before them was delivered (core::ack_window); at most `window_events` are cut and
/// not yet acked, which bounds what a crash sends twice.
/// Threading: io thread only.
class pipeline_custody {
 public:
  using clock = util::steady_clock;

  /// Opens (and recovers) the spool and the dead-letter file; logs what recovery found.
  /// Throws std::runtime_error when the spool or dead-letter directory is unusable (startup).
  pipeline_custody(const config::sidecar_config& cfg, pipeline_metrics& metrics, clock::time_point now);

  enum class take_result { taken, full, error };
  struct take_outcome {
    take_result result = take_result::taken;
    bool spooled = false;  ///< some of the events went to the spool file (they await its sync)
  };
  /// Takes custody of `events` (all or none; their JSON is copied). `full`: the spool is full and
  /// when_full is reject; `error`: the spool could not be written (nothing taken either way).
  take_outcome take(const std::vector<core::accepted_event>& events, clock::time_point now);

  /// The next batch that is due at `now` (or any batch at all with `force`), spool first. Nothing
  /// while a spool read error is being backed off (next_deadline says when to ask again), nor
  /// while the acknowledgement window is full.
  std::optional<pipeline_batch> next_due(clock::time_point now, bool force = false);
  /// When a batch will be due if nothing else arrives; nothing when custody holds nothing unsent
  /// (or only spool records behind a full window: a delivery opens it).
  [[nodiscard]] std::optional<clock::time_point> next_deadline() const;

  /// The batch reached Aforo: acks spool records once they and every record before them are delivered.
  void delivered(const pipeline_batch& b);
  /// Keeps a memory batch that cannot be delivered now in the spool. Returns false when the spool
  /// refuses it (full with when_full reject, or a write error): the caller keeps holding it.
  /// Spool batches stay in the spool until delivered: true (the caller sends it again later).
  bool keep(const pipeline_batch& b);
  /// Poison batch: appended to the dead-letter file (fdatasynced), then acked if it came from the
  /// spool. false when the dead-letter file cannot be written: nothing is acked, the caller keeps
  /// the batch and tries again later.
  [[nodiscard]] bool dead_letter(const pipeline_batch& b, int status, std::string_view response,
                                 std::string_view reason);
  /// Entries for events ingest refused (the batch itself is acked by delivered()), counted by
  /// each entry's reason. false when they could not be written: the caller must not ack the batch.
  [[nodiscard]] bool dead_letter_events(const std::vector<io::dead_letter_entry>& entries);
  /// Ingest answered 413 for a request of `events` events: later batches carry at most half.
  void limit_request_events(std::uint32_t events);
  [[nodiscard]] std::size_t request_events() const noexcept { return std::min(batch_events_, learned_cap_); }
  /// Events cut from the spool and not yet acked (sent, or delivered behind one that is not).
  [[nodiscard]] std::uint64_t window_events() const noexcept { return window_.open_events(); }

  /// SIGTERM: moves every event of the memory buffer to the spool and syncs it.
  struct persist_result {
    std::size_t moved = 0;  ///< events written to the spool
    std::size_t lost = 0;   ///< events that could not be (spool full or unwritable)
  };
  persist_result persist_memory();
  void sync();
  /// The spool's appends not yet on stable storage (group commit, see spool_commit.hpp).
  io::spool_unsynced take_unsynced() { return spool_.take_unsynced(); }
  [[nodiscard]] bool has_unsynced() const noexcept { return spool_.has_unsynced(); }

  /// Batch size and flush interval apply live.
  void reload(const config::sidecar_config& cfg);

  [[nodiscard]] bool memory_mode() const noexcept { return memory_mode_; }
  [[nodiscard]] std::size_t memory_events() const noexcept { return memory_ ? memory_->size() : 0; }
  [[nodiscard]] std::uint64_t spool_events() const noexcept { return spool_.events(); }
  [[nodiscard]] std::uint64_t spool_bytes() const noexcept { return spool_.bytes(); }
  [[nodiscard]] std::uint64_t dead_letter_bytes() const noexcept { return dead_letter_.bytes(); }
  [[nodiscard]] const std::string& dead_letter_path() const noexcept { return dead_letter_.path(); }

 private:
  io::spool_append_result store(std::string_view body, std::uint32_t events, clock::time_point now);
  [[nodiscard]] bool spool_due(clock::time_point now) const;
  std::optional<pipeline_batch> cut_from_spool(clock::time_point now);
  /// Spool records not yet cut into a batch.
  [[nodiscard]] bool has_unsent() const noexcept;
  [[nodiscard]] std::uint64_t unsent_events() const noexcept;
  [[nodiscard]] bool window_full() const noexcept { return window_.open_events() >= window_limit_; }
  /// `b`, one record (of `record_events`) or a slice of it, was cut: tracked by the window, the read
  /// position moves past it.
  void note_cut(const pipeline_batch& b, std::uint32_t record_events);
  void ack_delivered();
  /// The next slice of head_split_, from event `skip`, at most `cap` events.
  pipeline_batch cut_slice(std::uint32_t skip, std::size_t cap);
  void note_drops(const io::spool_append_result& r, clock::time_point now);
  void note_read_error(const std::error_code& ec, clock::time_point now);
  void count_spool_checks();
  void note_dead_letter_rotation();

  pipeline_metrics& metrics_;
  bool memory_mode_;
  std::size_t batch_events_;
  std::size_t backlog_events_;      // batch.backlog_events: the batch size while behind
  std::size_t learned_cap_ = 1000;  // halved by each 413
  std::chrono::milliseconds flush_interval_;
  io::spool_store spool_;
  io::dead_letter_file dead_letter_;
  std::unique_ptr<core::batcher> memory_;           // durability memory only
  std::optional<clock::time_point> pending_since_;  // first spool record not yet cut into a batch
  core::ack_window window_;                         // spool records cut and not yet acked
  std::uint64_t window_limit_;                      // at most this many events in it
  std::uint64_t send_seq_ = 0;                      // the next spool record to cut (older ones: the oldest)
  std::uint32_t send_skip_ = 0;                     // of its events, those already cut (a record sent in slices)
  /// The record being sent in slices, split once: its body and its events' texts (views into it).
  struct split_record {
    std::uint64_t seq = 0;
    std::string body;
    std::vector<std::string_view> events;
  };
  split_record head_split_;
  std::optional<clock::time_point> read_retry_at_;  // a spool read failed: not before this
  // Spool reads that fail are tried again after 10 ms, 20 ms, ... at most 5 s; a good read resets it.
  core::backoff read_backoff_{
      core::backoff_policy::exponential(std::chrono::milliseconds(10), std::chrono::seconds(5))};
  std::uint64_t corrupt_reads_seen_ = 0;
  std::uint64_t quarantined_seen_ = 0;
  std::uint64_t read_errors_seen_ = 0;
  std::uint64_t dl_deleted_seen_ = 0;
  std::string wire_;        // reused compression buffer
  bool spilling_ = false;   // logged "spilling to disk" since the spool was last empty
  bool rejecting_ = false;  // logged the reject state
  std::uint64_t drops_unlogged_ = 0;
  clock::time_point last_drop_log_{};
};

}  // namespace aforo::app
