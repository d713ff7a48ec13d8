// FIFO disk spool: segment files, an in-memory index of live records, a cursor file for consumption.
#include "io/spool/spool_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/pipeline/spool_record.hpp"

namespace aforo::io {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view segment_prefix = "seg-";
constexpr std::string_view segment_suffix = ".spool";
constexpr std::size_t segment_digits = 20;
constexpr std::uint32_t cursor_magic = 0x43505341u;  // "ASPC"
constexpr std::size_t cursor_bytes = 24;

std::error_code last_error() { return {errno, std::generic_category()}; }

// Little-endian fields of `bytes` width.
void put_le(char* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}
std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

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

/// Reads a whole file; nullopt on error.
std::optional<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0) data.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

}  // namespace

spool_store::spool_store(spool_options opts) : opts_(std::move(opts)) {
  std::error_code ec;
  fs::create_directories(opts_.dir, ec);
  if (ec) throw std::runtime_error("spool directory " + opts_.dir + " cannot be created: " + ec.message());
  if (!fs::is_directory(opts_.dir, ec)) throw std::runtime_error("spool directory " + opts_.dir + " is not a directory");
  dir_fd_ = ::open(opts_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw std::runtime_error("spool directory " + opts_.dir + " cannot be opened: " + std::strerror(errno));
  const std::string cursor_path = (fs::path(opts_.dir) / "cursor").string();
  cursor_fd_ = ::open(cursor_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (cursor_fd_ < 0) {
    const std::string why = std::strerror(errno);
    close_fd(dir_fd_);
    throw std::runtime_error("spool directory " + opts_.dir + " is not writable: " + cursor_path + ": " + why);
  }
  if (::flock(cursor_fd_, LOCK_EX | LOCK_NB) != 0) {
    close_fd(cursor_fd_);
    close_fd(dir_fd_);
    throw std::runtime_error("spool directory " + opts_.dir + " is in use by another aforo-sidecar");
  }
  try {
    recover();
  } catch (...) {
    close_fd(active_fd_);
    close_fd(read_fd_);
    close_fd(cursor_fd_);
    close_fd(dir_fd_);
    throw;
  }
}

spool_store::~spool_store() {
  close_fd(active_fd_);
  close_fd(read_fd_);
  close_fd(cursor_fd_);
  close_fd(dir_fd_);
}

std::string spool_store::segment_path(std::uint64_t id) const {
  char name[64];
  std::snprintf(name, sizeof name, "seg-%020llu.spool", static_cast<unsigned long long>(id));
  return (fs::path(opts_.dir) / name).string();
}

void spool_store::recover() {
  // The cursor: the first unconsumed record. Unreadable means read everything that is left.
  char c[cursor_bytes];
  const ssize_t got = ::pread(cursor_fd_, c, cursor_bytes, 0);
  bool have_cursor = false;
  if (got == static_cast<ssize_t>(cursor_bytes)) {
    if (get_le(c, 4) == cursor_magic && get_le(c + 4, 4) == core::crc32c({c + 8, 16})) {
      cursor_segment_ = get_le(c + 8, 8);
      cursor_offset_ = get_le(c + 16, 8);
      have_cursor = true;
    }
  }
  recovery_.cursor_reset = got > 0 && !have_cursor;

  std::vector<std::uint64_t> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(opts_.dir, ec)) {
    if (const auto id = segment_id(entry.path().filename().string())) ids.push_back(*id);
  }
  if (ec) throw std::runtime_error("spool directory " + opts_.dir + " cannot be listed: " + ec.message());
  std::sort(ids.begin(), ids.end());

  for (const std::uint64_t id : ids) {
    next_id_ = std::max(next_id_, id + 1);
    if (have_cursor && id < cursor_segment_) {
      ::unlink(segment_path(id).c_str());  // consumed before the last exit
      continue;
    }
    segments_.push_back(id);
    ++recovery_.segments;
    const auto data = read_file(segment_path(id));
    if (!data) throw std::runtime_error("spool segment " + segment_path(id) + " cannot be read: " + std::strerror(errno));
    const auto decoded = core::decode_spool_records(*data);
    recovery_.corrupt_records += decoded.corrupt_records;
    recovery_.torn_records += decoded.torn_records;
    recovery_.skipped_bytes += decoded.skipped_bytes;
    for (const auto& r : decoded.records) {
      if (have_cursor && id == cursor_segment_ && r.offset < cursor_offset_) continue;
      index_.push_back({id, r.offset, static_cast<std::uint32_t>(r.size), r.event_count, next_seq_++});
      bytes_ += r.size;
      events_ += r.event_count;
    }
  }
  if (have_cursor) next_id_ = std::max(next_id_, cursor_segment_ + 1);
  recovery_.records = index_.size();
  recovery_.events = events_;
  // Old segments are never appended to; drop the ones with nothing left to read.
  if (const auto err = persist_and_collect()) {
    throw std::runtime_error("spool directory " + opts_.dir + " is not writable: " + err.message());
  }
}

std::error_code spool_store::open_active() {
  close_fd(active_fd_);
  const std::uint64_t id = next_id_++;
  const std::string path = segment_path(id);
  active_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (active_fd_ < 0) return last_error();
  active_id_ = id;
  active_size_ = 0;
  segments_.push_back(id);
  return {};
}

spool_append_result spool_store::append(std::string_view payload, std::uint32_t event_count) {
  spool_append_result res;
  const std::uint64_t size = core::spool_header_bytes + payload.size();
  if (payload.size() > core::spool_max_payload || size > opts_.max_bytes) {
    res.result = spool_append_result::status::too_large;
    return res;
  }
  if (bytes_ + size > opts_.max_bytes) {
    if (opts_.when_full == config::when_full_policy::reject) {
      res.result = spool_append_result::status::rejected_full;
      return res;
    }
    while (!index_.empty() && bytes_ + size > opts_.max_bytes) {
      ++res.dropped_records;
      res.dropped_events += index_.front().events;
      pop_front();
    }
    (void)persist_and_collect();  // a failed cursor write only means a possible repeat after restart
  }
  if (active_fd_ < 0 || (active_size_ > 0 && active_size_ + size > opts_.segment_bytes)) {
    if (const auto err = open_active()) {
      res.result = spool_append_result::status::io_error;
      res.error = err;
      return res;
    }
  }
  const auto header = core::encode_spool_header(payload, event_count);
  iovec iov[2] = {{const_cast<char*>(header.data()), header.size()},
                  {const_cast<char*>(payload.data()), payload.size()}};
  std::uint64_t written = 0;
  while (written < size) {
    // Advance the iovecs past what a short write already took.
    iovec rest[2];
    int n_iov = 0;
    std::uint64_t skip = written;
    for (const auto& v : iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      rest[n_iov++] = {static_cast<char*>(v.iov_base) + skip, v.iov_len - skip};
      skip = 0;
    }
    const ssize_t n = ::writev(active_fd_, rest, n_iov);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      res.result = spool_append_result::status::io_error;
      res.error = n < 0 ? last_error() : std::make_error_code(std::errc::io_error);
      if (::ftruncate(active_fd_, static_cast<off_t>(active_size_)) != 0) {
        close_fd(active_fd_);  // cannot cut back: start a new segment; recovery will skip the tail
      }
      return res;
    }
    written += static_cast<std::uint64_t>(n);
  }
  index_.push_back({active_id_, active_size_, static_cast<std::uint32_t>(size), event_count, next_seq_++});
  active_size_ += size;
  bytes_ += size;
  events_ += event_count;
  return res;
}

std::optional<spooled_record> spool_store::read(const record_loc& loc) {
  if (read_fd_ < 0 || read_id_ != loc.segment) {
    close_fd(read_fd_);
    read_fd_ = ::open(segment_path(loc.segment).c_str(), O_RDONLY | O_CLOEXEC);
    if (read_fd_ < 0) return std::nullopt;
    read_id_ = loc.segment;
  }
  if (loc.size < core::spool_header_bytes) return std::nullopt;
  // Header and payload in one preadv, the payload straight into its own string (no move afterwards).
  std::array<char, core::spool_header_bytes> header;
  std::string payload(loc.size - core::spool_header_bytes, '\0');
  std::size_t got = 0;
  while (got < loc.size) {
    iovec iov[2];
    int n_iov = 0;
    if (got < header.size()) iov[n_iov++] = {header.data() + got, header.size() - got};
    const std::size_t in_payload = got < header.size() ? 0 : got - header.size();
    iov[n_iov++] = {payload.data() + in_payload, payload.size() - in_payload};
    const ssize_t n = ::preadv(read_fd_, iov, n_iov, static_cast<off_t>(loc.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    got += static_cast<std::size_t>(n);
  }
  // The header this payload would be written with, byte for byte: the magic, the length, the CRC
  // (decode_one_spool_record's checks) and the event count it carries.
  const auto event_count = static_cast<std::uint32_t>(get_le(header.data() + 8, 4));
  if (payload.size() > core::spool_max_payload || core::encode_spool_header(payload, event_count) != header) {
    return std::nullopt;
  }
  return spooled_record{std::move(payload), event_count, loc.seq};
}

std::optional<spooled_record> spool_store::peek() {
  auto v = peek_upto(1, 1);
  if (v.empty()) return std::nullopt;
  return std::move(v.front());
}

std::vector<spooled_record> spool_store::peek_upto(std::size_t max_events, std::size_t max_records) {
  std::vector<spooled_record> out;
  std::size_t events = 0;
  bool dropped = false;
  for (std::size_t i = 0; i < index_.size() && out.size() < max_records;) {
    const record_loc loc = index_[i];
    if (!out.empty() && events + loc.events > max_events) break;
    auto rec = read(loc);
    if (!rec) {
      if (i != 0) break;  // handled when it reaches the front
      ++corrupt_on_read_;
      pop_front();
      dropped = true;
      continue;
    }
    events += rec->event_count;
    out.push_back(std::move(*rec));
    ++i;
  }
  if (dropped) (void)persist_and_collect();
  return out;
}

void spool_store::pop_front() {
  const record_loc loc = index_.front();
  index_.pop_front();
  bytes_ -= loc.size;
  events_ -= loc.events;
  cursor_segment_ = loc.segment;
  cursor_offset_ = loc.offset + loc.size;
}

std::error_code spool_store::ack(std::size_t n) {
  n = std::min<std::size_t>(n, index_.size());
  if (n == 0) return {};
  for (std::size_t i = 0; i < n; ++i) pop_front();
  return persist_and_collect();
}

std::error_code spool_store::ack_through(std::uint64_t seq) {
  if (index_.empty() || index_.front().seq > seq) return {};
  while (!index_.empty() && index_.front().seq <= seq) pop_front();
  return persist_and_collect();
}

std::error_code spool_store::write_cursor(std::uint64_t segment, std::uint64_t offset) {
  char c[cursor_bytes];
  put_le(c, cursor_magic, 4);
  put_le(c + 8, segment, 8);
  put_le(c + 16, offset, 8);
  put_le(c + 4, core::crc32c({c + 8, 16}), 4);
  if (::pwrite(cursor_fd_, c, cursor_bytes, 0) != static_cast<ssize_t>(cursor_bytes)) return last_error();
  return {};
}

std::error_code spool_store::persist_and_collect() {
  // The next record to read, or the end of what was consumed when nothing is left.
  std::uint64_t seg = cursor_segment_, off = cursor_offset_;
  if (!index_.empty()) {
    seg = index_.front().segment;
    off = index_.front().offset;
  }
  const auto err = write_cursor(seg, off);
  if (err) return err;
  cursor_segment_ = seg;
  cursor_offset_ = off;
  // Delete segments before the head; with nothing left, every closed segment.
  while (!segments_.empty()) {
    const std::uint64_t id = segments_.front();
    const bool consumed = index_.empty() ? (active_fd_ < 0 || id != active_id_) : id < seg;
    if (!consumed) break;
    if (read_fd_ >= 0 && read_id_ == id) close_fd(read_fd_);
    ::unlink(segment_path(id).c_str());
    segments_.pop_front();
  }
  return {};
}

std::error_code spool_store::sync() {
  if (active_fd_ >= 0 && ::fdatasync(active_fd_) != 0) return last_error();
  if (::fdatasync(cursor_fd_) != 0) return last_error();
  if (::fsync(dir_fd_) != 0) return last_error();
  return {};
}

}  // namespace aforo::io
