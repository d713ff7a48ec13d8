// The FIFO disk spool: append-only segment files of framed records, one record per batch of events.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/pipeline/spool_record.hpp"
#include "core/pipeline/when_full.hpp"

namespace aforo::io {

/// buffer.* settings the spool uses.
struct spool_options {
  std::string dir = "/tmp/aforo-buffer";
  std::uint64_t segment_bytes = std::uint64_t{16} << 20;  ///< 16 MiB; a segment is rotated before passing this
  std::uint64_t max_bytes = std::uint64_t{1} << 30;       ///< 1 GiB; live records (header + payload) at most this
  core::when_full_policy when_full = core::when_full_policy::reject;
};

/// What startup recovery found.
struct spool_recovery_stats {
  std::uint64_t segments = 0;         ///< segment files scanned
  std::uint64_t records = 0;          ///< live records recovered
  std::uint64_t events = 0;           ///< their events
  std::uint64_t corrupt_records = 0;  ///< skipped: flipped bytes, garbage
  std::uint64_t torn_records = 0;     ///< skipped: cut short at a segment's end
  std::uint64_t skipped_bytes = 0;
  std::uint64_t format1_records = 0;  ///< of the live records, those written by release 0.1 (JSON payloads)
  bool cursor_reset = false;          ///< the cursor file was unreadable: reading from the oldest segment
  /// Segments that held corrupt or torn records: copied to quarantine/ before their good records
  /// were indexed (the copy keeps the bad bytes for an operator).
  std::vector<std::string> quarantined_copies;
  /// Segments that could not be read at all (an I/O error): moved to quarantine/ whole, so the
  /// daemon starts; an operator moves them back once the cause is fixed.
  std::vector<std::string> quarantined_unreadable;
};

struct spool_append_result {
  enum class status { stored, rejected_full, too_large, io_error };
  status result = status::stored;
  std::uint64_t dropped_records = 0;  ///< drop_oldest: whole oldest records removed to make room
  std::uint64_t dropped_events = 0;
  std::error_code error;    ///< io_error only
  bool compressed = false;  ///< set by the caller that stored an LZ4 payload (for its counters)
  [[nodiscard]] bool stored() const noexcept { return result == status::stored; }
};

/// A record read back: the payload as appended, its event count, and its sequence number (in
/// append order, renumbered at each start) for ack_through.
struct spooled_record {
  std::string payload;
  std::uint32_t event_count = 0;
  std::uint64_t seq = 0;
  core::spool_format format = core::spool_format::json;
};

/// What peek_upto found: the oldest records in order, and whether reading stopped on an I/O error
/// (a segment that cannot be opened, a failed read). An I/O error never consumes anything: the
/// same records are read again on the next call.
struct spool_peek {
  std::vector<spooled_record> records;
  std::error_code io_error;
  /// peek_from past the oldest record: records found corrupt on the way (quarantined, counted) that
  /// stay in the index until acked through; their sequence numbers and event counts.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> corrupt;
};

/// Descriptors of spool files with appends not yet on stable storage, duplicated so that another
/// thread can fdatasync them while the owner goes on appending (group commit). sync_files()
/// syncs and closes them.
struct spool_unsynced {
  std::vector<int> files;
  int dir = -1;  ///< the directory, when a segment was created since the last take
  /// A file that could not be duplicated (no descriptor to spare) was synced at once; its error.
  std::error_code error;
  [[nodiscard]] bool empty() const noexcept { return files.empty() && dir < 0; }
};

/// Files in `dir`: `seg-<20-digit id>.spool` segments and `cursor` (the first unconsumed record's
/// segment id and offset, 24 bytes with a CRC, rewritten in place with one pwrite per ack), and
/// `quarantine/` for what failed its checks. The payload is opaque to the store (the pipeline
/// stores a batch body, LZ4-compressed in format 2); its format is kept in the record's magic.
/// A record is appended with one writev(2) and no fsync (take_unsynced() + sync_files(), or
/// sync()): it survives a process kill, not a power cut. The cursor pwrite is the ack: an acked record is not read
/// again after a restart; a record delivered but not yet acked is (Aforo dedupes by idempotencyKey). A segment is
/// deleted once every record in it is consumed; records live in an in-memory index (24 bytes each). `max_bytes` counts
/// live records; files may hold up to one segment more of consumed records until that segment is deleted. Not
/// thread-safe: one owner (the io_context thread).
class spool_store {
 public:
  /// Creates `dir` if needed, locks it (flock on `cursor`: one store per directory, across
  /// processes too) and recovers existing segments in id order, skipping and counting corrupt or
  /// torn records. Throws std::runtime_error naming the directory when it cannot be created, read,
  /// written or locked (a startup error); never throws for bad data in it.
  explicit spool_store(spool_options opts);
  ~spool_store();
  spool_store(const spool_store&) = delete;
  spool_store& operator=(const spool_store&) = delete;

  /// Appends one record. When it would pass max_bytes: drop_oldest removes whole oldest records
  /// first (reported in the result), reject refuses (rejected_full). A record larger than
  /// max_bytes, or than the framing allows, is too_large. On a write error the segment is cut
  /// back so no partial record remains.
  spool_append_result append(std::string_view payload, std::uint32_t event_count,
                             core::spool_format format = core::spool_format::json);

  /// The oldest record, or nothing when empty or on an I/O error (see peek_upto).
  std::optional<spooled_record> peek();
  /// The oldest records, in order, up to `max_events` events in total (at least one record when
  /// any) and at most `max_records` records. A record whose bytes no longer pass their check
  /// (magic, length, CRC) is corrupt: its bytes are copied to quarantine/, it is counted
  /// (corrupt_on_read, quarantined_records) and skipped. A record that cannot be read (open or
  /// pread failed: EMFILE, EIO...) stops the peek with io_error set and is kept (read_errors).
  spool_peek peek_upto(std::size_t max_events, std::size_t max_records = SIZE_MAX);
  /// As peek_upto, from record `seq` on (the oldest when `seq` is older): the reader of concurrent
  /// delivery, past the records already in flight. A corrupt record past the oldest is quarantined,
  /// counted and reported in `corrupt` (it is consumed when acked through, in order).
  spool_peek peek_from(std::uint64_t seq, std::size_t max_events, std::size_t max_records = SIZE_MAX);
  /// Consumes every record up to and including `seq` (persisting the cursor with one pwrite) and
  /// deletes finished segments. Records already dropped by drop_oldest are simply gone, so acking
  /// a delivered batch after a drop never consumes records that were not delivered.
  std::error_code ack_through(std::uint64_t seq);
  /// Consumes the `n` oldest records. Only safe when no append could have dropped records since
  /// they were peeked; prefer ack_through.
  std::error_code ack(std::size_t n = 1);

  /// fdatasync of every segment with unsynced appends and of the cursor, fsync of the directory.
  std::error_code sync();

  /// Hands over (duplicated) descriptors of what was appended since the last call, for
  /// sync_files() on any thread. Appends after this call are not covered.
  spool_unsynced take_unsynced();
  /// fdatasync of each file, fsync of the directory, then closes them all. The first error, if any.
  /// Thread-safe (touches only the given descriptors).
  static std::error_code sync_files(spool_unsynced& u);
  [[nodiscard]] bool has_unsynced() const noexcept { return active_dirty_ || !closed_dirty_.empty() || dir_dirty_; }

  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::uint64_t records() const noexcept { return index_.size(); }
  [[nodiscard]] std::uint64_t events() const noexcept { return events_; }
  [[nodiscard]] bool empty() const noexcept { return index_.empty(); }
  /// The sequence number of the oldest record (0 when empty).
  [[nodiscard]] std::uint64_t front_seq() const noexcept { return index_.empty() ? 0 : index_.front().seq; }
  /// The sequence number of the newest record (0 when empty).
  [[nodiscard]] std::uint64_t back_seq() const noexcept { return index_.empty() ? 0 : index_.back().seq; }
  [[nodiscard]] const spool_recovery_stats& recovery() const noexcept { return recovery_; }
  [[nodiscard]] std::uint64_t corrupt_on_read() const noexcept { return corrupt_on_read_; }
  [[nodiscard]] std::uint64_t read_errors() const noexcept { return read_errors_; }
  [[nodiscard]] std::uint64_t quarantined_records() const noexcept { return quarantined_records_; }
  /// `{dir}/quarantine`.
  [[nodiscard]] std::string quarantine_dir() const;
  [[nodiscard]] const spool_options& options() const noexcept { return opts_; }

 private:
  struct record_loc {
    std::uint64_t segment;
    std::uint64_t offset;
    std::uint32_t size;  ///< header + payload
    std::uint32_t events;
    std::uint64_t seq;
  };

  void recover();
  std::string segment_path(std::uint64_t id) const;
  std::error_code open_active();
  enum class read_status { ok, corrupt, io_error };
  read_status read(const record_loc& loc, spooled_record& out, std::string& raw, std::error_code& ec);
  void quarantine_record(const record_loc& loc, std::string_view raw);
  std::string quarantine_path(const std::string& name);
  void pop_front();
  std::error_code write_cursor(std::uint64_t segment, std::uint64_t offset);
  std::error_code persist_and_collect();

  spool_options opts_;
  std::deque<record_loc> index_;
  std::deque<std::uint64_t> segments_;  ///< segment ids on disk, ascending
  std::uint64_t bytes_ = 0;
  std::uint64_t events_ = 0;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_seq_ = 1;
  std::uint64_t cursor_segment_ = 0;  ///< first unconsumed position
  std::uint64_t cursor_offset_ = 0;
  int active_fd_ = -1;
  std::uint64_t active_id_ = 0;
  std::uint64_t active_size_ = 0;
  int read_fd_ = -1;
  std::uint64_t read_id_ = 0;
  int cursor_fd_ = -1;
  int dir_fd_ = -1;
  bool active_dirty_ = false;      ///< appends to the active segment since take_unsynced
  std::vector<int> closed_dirty_;  ///< dup'd fds of rotated segments with unsynced appends
  bool dir_dirty_ = false;         ///< a segment was created since take_unsynced
  spool_recovery_stats recovery_;
  std::uint64_t corrupt_on_read_ = 0;
  std::uint64_t read_errors_ = 0;
  std::uint64_t quarantined_records_ = 0;
};

}  // namespace aforo::io
