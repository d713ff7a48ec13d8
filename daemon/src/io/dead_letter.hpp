// Dead-letter file: events ingest refused for good, one JSON line per refused batch or event, each
// write fdatasynced, rotated within a byte bound.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace aforo::io {

/// One line of the dead-letter file.
struct dead_letter_entry {
  std::string_view batch_body;  ///< `{"events":[...]}` (embedded as JSON when it parses, else as a string)
  std::uint32_t events = 0;
  int status = 0;              ///< ingest's HTTP status
  std::string_view reason;     ///< rejected_batch | too_large | event_failed | success_false
  std::string_view timestamp;  ///< written as given (ISO-8601 UTC); empty = now
  std::string_view response;   ///< ingest's answer (its body, or the per-event message), cut at 4 KiB
};

/// Appends to `{dir}/dead-letter.jsonl`, one line per entry:
/// `{"time":"...","reason":"...","status":400,"events":N,"response":"...","batch":{"events":[...]}}`.
/// Every append is one write(2) (O_APPEND) followed by fdatasync: when it returns success the lines
/// are on stable storage; on an error the caller must treat the entries as not written.
/// Bounded: past max_bytes / 4 the file is rotated (`.1`, `.2`, `.3`; the oldest is deleted, its
/// events counted in deleted_events()). Files are opened with O_NOFOLLOW. Not thread-safe: one owner.
class dead_letter_file {
 public:
  /// Creates `dir` if needed and opens the file. Throws std::runtime_error with the path and the
  /// reason when that fails (a startup error).
  explicit dead_letter_file(std::string dir, std::uint64_t max_bytes = 256u << 20);
  ~dead_letter_file();
  dead_letter_file(const dead_letter_file&) = delete;
  dead_letter_file& operator=(const dead_letter_file&) = delete;

  /// Appends the entries (one write, one fdatasync).
  [[nodiscard]] std::error_code append(const std::vector<dead_letter_entry>& entries);
  /// One entry.
  [[nodiscard]] std::error_code append(std::string_view batch_body, std::uint32_t event_count, int status,
                                       std::string_view timestamp, std::string_view response_body = {},
                                       std::string_view reason = "rejected_batch");
  [[nodiscard]] std::error_code sync();
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// Bytes in the current file and its rotations.
  [[nodiscard]] std::uint64_t bytes() const noexcept;
  /// Events in rotations deleted to stay within max_bytes (since start), and the files deleted.
  [[nodiscard]] std::uint64_t deleted_events() const noexcept { return deleted_events_; }
  [[nodiscard]] std::uint64_t deleted_files() const noexcept { return deleted_files_; }

  /// `{spool_dir}/dead-letter` when `dead_letter_dir` is empty (config buffer.dead_letter_dir).
  [[nodiscard]] static std::string default_dir(std::string_view spool_dir, std::string_view dead_letter_dir);
  /// The lines' text for `entries` (exposed for tests and the replay tool's format check).
  [[nodiscard]] static std::string format(const std::vector<dead_letter_entry>& entries);

 private:
  std::error_code open_current();
  std::error_code rotate();

  std::string dir_;
  std::string path_;
  std::uint64_t max_bytes_;
  int fd_ = -1;
  std::uint64_t size_ = 0;           ///< of the current file
  std::uint64_t rotated_bytes_ = 0;  ///< of .1 .. .3
  std::uint64_t deleted_events_ = 0;
  std::uint64_t deleted_files_ = 0;
};

}  // namespace aforo::io
