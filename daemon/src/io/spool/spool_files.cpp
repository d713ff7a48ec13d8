// The spool store's files; see spool_files.hpp.
#include "io/spool/spool_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>

namespace aforo::io::spool_files {

std::optional<std::uint64_t> segment_id(std::string_view name) {
  if (name.size() != segment_prefix.size() + segment_digits + segment_suffix.size() ||
      name.substr(0, segment_prefix.size()) != segment_prefix ||
      name.substr(name.size() - segment_suffix.size()) != segment_suffix) {
    return std::nullopt;
  }
  std::uint64_t id = 0;
  const char* first = name.data() + segment_prefix.size();
  const auto [ptr, ec] = std::from_chars(first, first + segment_digits, id);
  if (ec != std::errc{} || ptr != first + segment_digits) return std::nullopt;
  return id;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::error_code write_new_file(const std::string& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return last_error();
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const auto err = n < 0 ? last_error() : std::make_error_code(std::errc::io_error);
      ::close(fd);
      return err;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  std::error_code err;
  if (::fdatasync(fd) != 0) err = last_error();
  ::close(fd);
  return err;
}

std::optional<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0) data.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

}  // namespace aforo::io::spool_files
