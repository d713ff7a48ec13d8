// Dead-letter file: poison batches that Aforo refused (400/413/422, other 4xx), one JSON line each.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace aforo::io {

/// Appends to `{dir}/dead-letter.jsonl`, one line per batch:
/// `{"time":"<timestamp>","status":400,"events":N,"response":"<ingest's body, cut at 4 KiB>","batch":<the batch body>}`.
/// `batch` is embedded as JSON when it parses as JSON, else as a string. One write(2) per batch,
/// O_APPEND; no fsync (call sync()). Not thread-safe: one owner.
class dead_letter_file {
 public:
  /// Creates `dir` if needed and opens the file. Throws std::runtime_error with the path and the
  /// reason when that fails (a startup error).
  explicit dead_letter_file(std::string dir);
  ~dead_letter_file();
  dead_letter_file(const dead_letter_file&) = delete;
  dead_letter_file& operator=(const dead_letter_file&) = delete;

  /// Appends one line. `timestamp` is written as given (e.g. an ISO-8601 UTC string).
  [[nodiscard]] std::error_code append(std::string_view batch_body, std::uint32_t event_count, int status,
                                       std::string_view timestamp, std::string_view response_body = {});
  [[nodiscard]] std::error_code sync();
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// `{spool_dir}/dead-letter` when `dead_letter_dir` is empty (config buffer.dead_letter_dir).
  [[nodiscard]] static std::string default_dir(std::string_view spool_dir, std::string_view dead_letter_dir);

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace aforo::io
