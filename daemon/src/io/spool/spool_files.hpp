// The spool store's files, beneath its logic: segment file names, the cursor record's layout, and
// the whole-file reads and writes that recovery and quarantine use. Used by io/spool only.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace aforo::io::spool_files {

inline constexpr std::string_view segment_prefix = "seg-";
inline constexpr std::string_view segment_suffix = ".spool";
inline constexpr std::size_t segment_digits = 20;
inline constexpr std::uint32_t cursor_magic = 0x43505341u;  // "ASPC"
inline constexpr std::size_t cursor_bytes = 24;

inline std::error_code last_error() { return {errno, std::generic_category()}; }

// Little-endian fields of `bytes` width.
inline void put_le(char* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}
inline std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// The id in a segment file name (segment_prefix, segment_digits digits, segment_suffix); nullopt
/// for any other name.
std::optional<std::uint64_t> segment_id(std::string_view name);

/// Closes `fd` when open and sets it to -1.
void close_fd(int& fd);

/// Writes all of `data` to a new file at `path` (O_EXCL) and fdatasyncs it.
std::error_code write_new_file(const std::string& path, std::string_view data);

/// Reads a whole file; nullopt on error (errno set).
std::optional<std::string> read_file(const std::string& path);

}  // namespace aforo::io::spool_files
