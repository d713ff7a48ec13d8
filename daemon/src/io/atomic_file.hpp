// Small state files written so that a crash or power loss leaves either the old or the new content,
// never a mix: a temporary in the same directory, fsync, rename over the target, fsync of the
// directory. Opened with O_NOFOLLOW | O_CLOEXEC, so a symlink planted at the path is refused.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aforo::io {

/// Replaces `path` with `data` atomically, creating its directory (mode 0700) when missing. The
/// directory must be a safe one (io/safe_dir.hpp; `dir_key` names its config key in the message). The
/// file gets `mode` (0600 by default; the umask may only narrow it). Returns an empty string on success,
/// else why it failed (the target is then unchanged). Blocking I/O.
std::string write_file_atomically(const std::string& path, std::string_view data, mode_t mode = 0600,
                                  std::string_view dir_key = "its config key");

/// A regular file read whole, without following a symlink at `path`.
struct read_file_result {
  std::optional<std::string> data;  ///< nullopt when the file cannot be read (see error)
  bool missing = false;             ///< ENOENT: no such file (not an error for a first start)
  std::string error;
  std::int64_t mtime_ms = 0;  ///< the file's modification time, Unix epoch milliseconds
};

/// Reads `path` (O_NOFOLLOW | O_CLOEXEC); refuses what is not a regular file or is over max_bytes.
read_file_result read_file_nofollow(const std::string& path, std::size_t max_bytes);

/// Sets the modification time of `path` to now (not following a symlink); false when it failed.
bool touch_file(const std::string& path);

}  // namespace aforo::io
