// File versions by stat(2) and whole-file reads; see file_watch.hpp.
#include "io/file_watch.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace aforo::io {

std::optional<file_stamp> stamp_file(const std::string& path, int* error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (error) *error = errno;
    return std::nullopt;
  }
  return file_stamp{static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                    static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

std::optional<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(ss).str();
}

}  // namespace aforo::io
