// Noticing that a file changed without reading it: its version (inode, size, modification time)
// from one stat(2), compared with the version last read. The services that reload a file when it
// changes (the `file:PATH` snapshot source, the margin guard file) poll it through this on their
// own timers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace aforo::io {

/// One version of a file, identified cheaply (stat only). Symlinks are followed, so a Kubernetes
/// ConfigMap update (its link swapped to a new file) is a new version.
struct file_stamp {
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const file_stamp&) const = default;
};

/// The current version of `path`, or nullopt when it cannot be stat'ed (errno in *error when given).
[[nodiscard]] std::optional<file_stamp> stamp_file(const std::string& path, int* error = nullptr);

/// The whole content of `path` (following symlinks), or nullopt when it cannot be read.
[[nodiscard]] std::optional<std::string> read_whole_file(const std::string& path);

/// A file polled for changes: its path and the version last read. Not thread-safe.
class file_watch {
 public:
  explicit file_watch(std::string path = {}) : path_(std::move(path)) {}

  [[nodiscard]] const std::string& path() const { return path_; }
  /// Watches `path` from now on; none of its versions has been read yet.
  void watch(std::string path) {
    path_ = std::move(path);
    seen_.reset();
  }
  /// The file's version now (stat); nullopt when it cannot be stat'ed (errno in *error when given).
  [[nodiscard]] std::optional<file_stamp> current(int* error = nullptr) const { return stamp_file(path_, error); }
  /// Whether `now` (from current()) differs from the version last read; a missing file differs
  /// from any version read, and a file seen missing again does not differ.
  [[nodiscard]] bool differs(const std::optional<file_stamp>& now) const { return now != seen_; }
  /// The version last read (nullopt: none, or forgotten).
  [[nodiscard]] const std::optional<file_stamp>& seen() const { return seen_; }
  /// Records the version just read.
  void mark_read(std::optional<file_stamp> stamp) { seen_ = stamp; }
  /// Forgets the version read: the next version found differs.
  void forget() { seen_.reset(); }

 private:
  std::string path_;
  std::optional<file_stamp> seen_;
};

}  // namespace aforo::io
