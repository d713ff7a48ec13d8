// Dead-letter file writer: JSON lines built with RapidJSON, appended with one write(2) and fdatasync,
// rotated in four files within a byte bound.
#include "io/dead_letter.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "io/atomic_file.hpp"
#include "io/safe_dir.hpp"

namespace aforo::io {
namespace {
namespace rj = rapidjson;
namespace fs = std::filesystem;
constexpr std::size_t max_response_bytes = 4096;
constexpr int rotations = 3;

std::error_code last_error() { return {errno, std::generic_category()}; }

std::error_code write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

/// `text` is one JSON object (checked with the iterative reader: no recursion, no document).
bool is_json_object(std::string_view text) {
  if (text.empty() || text.front() != '{') return false;
  rj::MemoryStream is(text.data(), text.size());
  rj::BaseReaderHandler<> h;
  rj::Reader r;
  return !r.Parse<rj::kParseIterativeFlag>(is, h).IsError();
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

/// Events recorded in a dead-letter file: the sum of its lines' "events" fields (written by format()
/// right after "status", so the first `,"events":` of a line is the line's own).
std::uint64_t events_in(const std::string& path, std::uint64_t max_bytes) {
  const auto file = read_file_nofollow(path, max_bytes);
  if (!file.data) return 0;
  std::uint64_t n = 0;
  std::string_view rest = *file.data;
  while (!rest.empty()) {
    const auto eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
    const auto at = line.find(",\"events\":");
    if (at == std::string_view::npos) continue;
    std::uint64_t v = 0;
    std::from_chars(line.data() + at + 10, line.data() + line.size(), v);
    n += v;
  }
  return n;
}

}  // namespace

std::string dead_letter_file::default_dir(std::string_view spool_dir, std::string_view dead_letter_dir) {
  if (!dead_letter_dir.empty()) return std::string(dead_letter_dir);
  return (fs::path(spool_dir) / "dead-letter").string();
}

dead_letter_file::dead_letter_file(std::string dir, std::uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(std::max<std::uint64_t>(max_bytes, 4096)) {
  if (const auto why = prepare_private_dir(dir_, "buffer.dead_letter_dir"); !why.empty()) {
    throw std::runtime_error("dead-letter directory refused: " + why);
  }
  path_ = (fs::path(dir_) / "dead-letter.jsonl").string();
  if (const auto err = open_current()) {
    throw std::runtime_error("dead-letter file " + path_ + " cannot be opened: " + err.message());
  }
  for (int i = 1; i <= rotations; ++i) rotated_bytes_ += file_size(path_ + "." + std::to_string(i));
}

dead_letter_file::~dead_letter_file() {
  if (fd_ >= 0) ::close(fd_);
}

std::error_code dead_letter_file::open_current() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return last_error();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const auto err = last_error();
    ::close(fd);
    return err;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
  return {};
}

std::uint64_t dead_letter_file::bytes() const noexcept { return size_ + rotated_bytes_; }

std::error_code dead_letter_file::rotate() {
  const std::string oldest = path_ + "." + std::to_string(rotations);
  if (const auto n = file_size(oldest); n != 0 || fs::exists(fs::symlink_status(oldest))) {
    deleted_events_ += events_in(oldest, max_bytes_);
    ++deleted_files_;
    if (::unlink(oldest.c_str()) != 0) return last_error();
  }
  for (int i = rotations - 1; i >= 1; --i) {
    const std::string from = path_ + "." + std::to_string(i);
    if (::rename(from.c_str(), (path_ + "." + std::to_string(i + 1)).c_str()) != 0 && errno != ENOENT) {
      return last_error();
    }
  }
  if (::rename(path_.c_str(), (path_ + ".1").c_str()) != 0) return last_error();
  if (const auto err = open_current()) return err;
  rotated_bytes_ = 0;
  for (int i = 1; i <= rotations; ++i) rotated_bytes_ += file_size(path_ + "." + std::to_string(i));
  // The renames are on stable storage before anything is written to the new file.
  const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::string dead_letter_file::format(const std::vector<dead_letter_entry>& entries) {
  std::string out;
  char stamp[32] = "";
  for (const auto& entry : entries) {
    dead_letter_entry e = entry;
    if (e.timestamp.empty()) {
      if (stamp[0] == '\0') {
        const std::time_t t = std::time(nullptr);
        std::tm tm{};
        gmtime_r(&t, &tm);
        std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
      }
      e.timestamp = stamp;
    }
    rj::StringBuffer buf;
    rj::Writer<rj::StringBuffer> w(buf);
    w.StartObject();
    w.Key("time");
    w.String(e.timestamp.data(), static_cast<rj::SizeType>(e.timestamp.size()));
    w.Key("reason");
    w.String(e.reason.data(), static_cast<rj::SizeType>(e.reason.size()));
    w.Key("status");
    w.Int(e.status);
    w.Key("events");
    w.Uint(e.events);
    w.Key("response");
    const auto resp = e.response.substr(0, max_response_bytes);
    w.String(resp.data(), static_cast<rj::SizeType>(resp.size()));
    w.Key("batch");
    if (is_json_object(e.batch_body) && e.batch_body.find('\n') == std::string_view::npos) {
      w.RawValue(e.batch_body.data(), e.batch_body.size(), rj::kObjectType);  // compact already: one line
    } else {
      w.String(e.batch_body.data(), static_cast<rj::SizeType>(e.batch_body.size()));
    }
    w.EndObject();
    out.append(buf.GetString(), buf.GetSize());
    out.push_back('\n');
  }
  return out;
}

std::error_code dead_letter_file::append(const std::vector<dead_letter_entry>& entries) {
  if (entries.empty()) return {};
  const std::string lines = format(entries);
  if (size_ != 0 && size_ + lines.size() > max_bytes_ / (rotations + 1)) {
    if (const auto err = rotate()) return err;
  }
  if (fd_ < 0) {
    if (const auto err = open_current()) return err;
  }
  const auto before = size_;
  if (auto err = write_all(fd_, lines)) {
    // Cut back what part of the lines went in, so a retry does not leave a broken line.
    if (::ftruncate(fd_, static_cast<off_t>(before)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    return err;
  }
  size_ += lines.size();
  if (::fdatasync(fd_) != 0) return last_error();
  return {};
}

std::error_code dead_letter_file::append(std::string_view batch_body, std::uint32_t event_count, int status,
                                         std::string_view timestamp, std::string_view response_body,
                                         std::string_view reason) {
  return append({dead_letter_entry{batch_body, event_count, status, reason, timestamp, response_body}});
}

std::error_code dead_letter_file::sync() {
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) return last_error();
  return {};
}

}  // namespace aforo::io
