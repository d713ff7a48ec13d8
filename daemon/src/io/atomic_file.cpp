// Atomic state files; see atomic_file.hpp.
#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/safe_dir.hpp"

namespace aforo::io {

namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

bool write_all(int fd, std::string_view data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

std::string write_file_atomically(const std::string& path, std::string_view data, mode_t mode,
                                  std::string_view dir_key) {
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty()) {
    if (auto why = prepare_private_dir(dir.string(), dir_key); !why.empty()) return why;
  }
  const std::string tmp = path + ".tmp";
  (void)::unlink(tmp.c_str());  // a leftover of a crash; O_EXCL below refuses anything planted since
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return "cannot open " + tmp + ": " + errno_text();
  if (!write_all(fd, data)) {
    const std::string why = errno_text();
    ::close(fd);
    (void)::unlink(tmp.c_str());
    return "cannot write " + tmp + ": " + why;
  }
  if (::fsync(fd) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    (void)::unlink(tmp.c_str());
    return "cannot sync " + tmp + ": " + why;
  }
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    (void)::unlink(tmp.c_str());
    return "cannot close " + tmp + ": " + why;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    (void)::unlink(tmp.c_str());
    return "cannot rename " + tmp + ": " + why;
  }
  // The rename itself is durable only once the directory is synced.
  const std::string d = dir.empty() ? std::string(".") : dir.string();
  const int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return "cannot open directory " + d + ": " + errno_text();
  const bool synced = ::fsync(dfd) == 0;
  const std::string why = synced ? std::string{} : errno_text();
  ::close(dfd);
  if (!synced) return "cannot sync directory " + d + ": " + why;
  return {};
}

read_file_result read_file_nofollow(const std::string& path, std::size_t max_bytes) {
  read_file_result r;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    r.missing = errno == ENOENT;
    r.error = "cannot open " + path + ": " + errno_text();
    return r;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    r.error = "cannot stat " + path + ": " + errno_text();
    ::close(fd);
    return r;
  }
  if (!S_ISREG(st.st_mode)) {
    r.error = path + " is not a regular file";
    ::close(fd);
    return r;
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    r.error = path + " is larger than " + std::to_string(max_bytes) + " bytes";
    ::close(fd);
    return r;
  }
  r.mtime_ms = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::read(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = "cannot read " + path + ": " + errno_text();
      ::close(fd);
      return r;
    }
    if (n == 0) break;  // shrank while being read: the checksum of the caller's format tells
    off += static_cast<std::size_t>(n);
  }
  data.resize(off);
  ::close(fd);
  r.data = std::move(data);
  return r;
}

bool touch_file(const std::string& path) {
  return ::utimensat(AT_FDCWD, path.c_str(), nullptr, AT_SYMLINK_NOFOLLOW) == 0;
}

}  // namespace aforo::io
