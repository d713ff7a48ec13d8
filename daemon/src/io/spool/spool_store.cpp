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

#include "core/pipeline/custody_policy.hpp"
#include "core/pipeline/spool_record.hpp"
#include "io/safe_dir.hpp"
#include "io/spool/spool_files.hpp"

namespace aforo::io {
namespace {

namespace fs = std::filesystem;

}  // namespace

using namespace spool_files;

spool_store::spool_store(spool_options opts) : opts_(std::move(opts)) {
  if (const auto why = prepare_private_dir(opts_.dir, "buffer.spool_dir"); !why.empty()) {
    throw std::runtime_error("spool directory refused: " + why);
  }
  if (const auto why = unsafe_dir_reason(quarantine_dir(), "buffer.spool_dir"); !why.empty()) {
    throw std::runtime_error("spool quarantine directory refused: " + why);
  }
  dir_fd_ = ::open(opts_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd_ < 0)
    throw std::runtime_error("spool directory " + opts_.dir + " cannot be opened: " + std::strerror(errno));
  const std::string cursor_path = (fs::path(opts_.dir) / "cursor").string();
  cursor_fd_ = ::open(cursor_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
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
  for (int& fd : closed_dirty_) close_fd(fd);
  close_fd(active_fd_);
  close_fd(read_fd_);
  close_fd(cursor_fd_);
  close_fd(dir_fd_);
}

std::string spool_store::quarantine_dir() const { return (fs::path(opts_.dir) / "quarantine").string(); }

std::string spool_store::quarantine_path(const std::string& name) {
  std::error_code ec;
  // A quarantine/ that is not safe is left alone: the rename or copy into it then fails and says so.
  if (const auto why = prepare_private_dir(quarantine_dir(), "buffer.spool_dir"); !why.empty()) {
    return (fs::path(quarantine_dir()) / name).string();
  }
  std::string path = (fs::path(quarantine_dir()) / name).string();
  // Never overwrite an earlier copy (a segment id repeats across a reset spool).
  for (int n = 1; fs::exists(fs::symlink_status(path, ec)); ++n) {
    path = (fs::path(quarantine_dir()) / (name + "." + std::to_string(n))).string();
  }
  return path;
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
    const std::string path = segment_path(id);
    const auto data = read_file(path);
    if (!data) {
      // An I/O error is not corruption: the segment is kept whole, aside, and the daemon starts.
      const std::string why = std::strerror(errno);
      const std::string dest = quarantine_path(fs::path(path).filename().string());
      if (::rename(path.c_str(), dest.c_str()) == 0) {
        recovery_.quarantined_unreadable.push_back(dest + " (" + why + ")");
        continue;
      }
      throw std::runtime_error("spool segment " + path + " cannot be read (" + why + ") nor moved to " + dest + ": " +
                               std::strerror(errno));
    }
    segments_.push_back(id);
    ++recovery_.segments;
    const auto decoded = core::decode_spool_records(*data);
    recovery_.corrupt_records += decoded.corrupt_records;
    recovery_.torn_records += decoded.torn_records;
    recovery_.skipped_bytes += decoded.skipped_bytes;
    if (decoded.corrupt_records != 0 || decoded.torn_records != 0) {
      const std::string dest = quarantine_path(fs::path(path).filename().string());
      if (const auto err = write_new_file(dest, *data)) {
        recovery_.quarantined_copies.push_back(dest + " (copy failed: " + err.message() + ")");
      } else {
        recovery_.quarantined_copies.push_back(dest);
      }
    }
    for (const auto& r : decoded.records) {
      if (have_cursor && id == cursor_segment_ && r.offset < cursor_offset_) continue;
      index_.push_back({id, r.offset, static_cast<std::uint32_t>(r.size), r.event_count, next_seq_++});
      bytes_ += r.size;
      events_ += r.event_count;
      if (r.format == core::spool_format::json) ++recovery_.format1_records;
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
  if (active_fd_ >= 0 && active_dirty_) {
    // Its unsynced tail must still reach stable storage with the next group commit.
    const int dup = ::fcntl(active_fd_, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return last_error();
    closed_dirty_.push_back(dup);
  }
  const std::uint64_t id = next_id_;
  const std::string path = segment_path(id);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return last_error();
  ++next_id_;
  close_fd(active_fd_);
  active_fd_ = fd;
  active_id_ = id;
  active_size_ = 0;
  active_dirty_ = false;
  dir_dirty_ = true;
  segments_.push_back(id);
  return {};
}

spool_append_result spool_store::append(std::string_view payload, std::uint32_t event_count,
                                        core::spool_format format) {
  spool_append_result res;
  const std::uint64_t size = core::spool_header_bytes + payload.size();
  const auto admission = core::admit_to_spool(bytes_, payload.size(), opts_.max_bytes, opts_.when_full);
  if (admission == core::spool_admission::too_large) {
    res.result = spool_append_result::status::too_large;
    return res;
  }
  if (admission == core::spool_admission::reject_full) {
    res.result = spool_append_result::status::rejected_full;
    return res;
  }
  if (admission == core::spool_admission::drop_oldest) {
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
  const auto header = core::encode_spool_header(payload, event_count, format);
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
  active_dirty_ = true;
  active_size_ += size;
  bytes_ += size;
  events_ += event_count;
  return res;
}

spool_store::read_status spool_store::read(const record_loc& loc, spooled_record& out, std::string& raw,
                                           std::error_code& ec) {
  raw.clear();  // a segment that is gone quarantines nothing, not the previous record's bytes
  if (read_fd_ < 0 || read_id_ != loc.segment) {
    close_fd(read_fd_);
    read_fd_ = ::open(segment_path(loc.segment).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (read_fd_ < 0) {
      ec = last_error();
      // A segment that is gone (ENOENT) or replaced by a link will not come back: its records are
      // lost, which is what corruption means here. Anything else may pass (EMFILE, EIO): retry.
      return errno == ENOENT || errno == ELOOP ? read_status::corrupt : read_status::io_error;
    }
    read_id_ = loc.segment;
  }
  // Header and payload in one pread, straight into one buffer.
  raw.resize(loc.size);
  std::size_t got = 0;
  while (got < loc.size) {
    const ssize_t n = ::pread(read_fd_, raw.data() + got, loc.size - got, static_cast<off_t>(loc.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = last_error();
      close_fd(read_fd_);  // reopened on the retry
      return read_status::io_error;
    }
    if (n == 0) break;  // the file is shorter than the record: cut after it was written
    got += static_cast<std::size_t>(n);
  }
  raw.resize(got);
  const auto rec = core::decode_one_spool_record(raw);
  if (rec.size != loc.size || rec.event_count != loc.events) return read_status::corrupt;
  out.payload.assign(rec.payload.data(), rec.payload.size());
  out.event_count = rec.event_count;
  out.seq = loc.seq;
  out.format = rec.format;
  return read_status::ok;
}

void spool_store::quarantine_record(const record_loc& loc, std::string_view raw) {
  ++quarantined_records_;
  char name[96];
  std::snprintf(name, sizeof name, "record-%020llu-%llu.bin", static_cast<unsigned long long>(loc.segment),
                static_cast<unsigned long long>(loc.offset));
  (void)write_new_file(quarantine_path(name), raw);  // best effort: the count and the log line remain
}

std::optional<spooled_record> spool_store::peek() {
  auto v = peek_upto(1, 1);
  if (v.records.empty()) return std::nullopt;
  return std::move(v.records.front());
}

spool_peek spool_store::peek_upto(std::size_t max_events, std::size_t max_records) {
  return peek_from(0, max_events, max_records);
}

spool_peek spool_store::peek_from(std::uint64_t seq, std::size_t max_events, std::size_t max_records) {
  spool_peek out;
  std::size_t events = 0;
  bool dropped = false;
  std::string raw;
  // Sequence numbers are consecutive in the index (appends at the back, consumption at the front).
  std::size_t i = 0;
  if (!index_.empty() && seq > index_.front().seq) {
    i = static_cast<std::size_t>(std::min<std::uint64_t>(seq - index_.front().seq, index_.size()));
  }
  const bool from_front = i == 0;
  while (i < index_.size() && out.records.size() < max_records) {
    const record_loc loc = index_[i];
    if (!out.records.empty() && events + loc.events > max_events) break;
    spooled_record rec;
    std::error_code ec;
    const auto st = read(loc, rec, raw, ec);
    if (st == read_status::io_error) {
      ++read_errors_;
      out.io_error = ec;
      break;  // nothing consumed: the same records are read again on the next call
    }
    if (st == read_status::corrupt) {
      if (from_front && i != 0) break;  // handled when it reaches the front
      ++corrupt_on_read_;
      quarantine_record(loc, raw);
      if (i == 0) {
        pop_front();
        dropped = true;
        continue;
      }
      out.corrupt.emplace_back(loc.seq, loc.events);
      ++i;
      continue;
    }
    events += rec.event_count;
    out.records.push_back(std::move(rec));
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
  auto u = take_unsynced();
  std::error_code err = sync_files(u);
  if (active_fd_ >= 0 && ::fdatasync(active_fd_) != 0 && !err) err = last_error();
  if (::fdatasync(cursor_fd_) != 0 && !err) err = last_error();
  if (::fsync(dir_fd_) != 0 && !err) err = last_error();
  return err;
}

spool_unsynced spool_store::take_unsynced() {
  spool_unsynced u;
  u.files = std::move(closed_dirty_);
  closed_dirty_.clear();
  if (active_dirty_ && active_fd_ >= 0) {
    const int dup = ::fcntl(active_fd_, F_DUPFD_CLOEXEC, 0);
    // Without a descriptor to spare, sync here and now rather than not at all.
    if (dup >= 0)
      u.files.push_back(dup);
    else if (::fdatasync(active_fd_) != 0)
      u.error = last_error();
  }
  active_dirty_ = false;
  if (dir_dirty_) {
    u.dir = ::fcntl(dir_fd_, F_DUPFD_CLOEXEC, 0);
    if (u.dir < 0 && ::fsync(dir_fd_) != 0 && !u.error) u.error = last_error();
    dir_dirty_ = false;
  }
  return u;
}

std::error_code spool_store::sync_files(spool_unsynced& u) {
  std::error_code err = u.error;
  for (int& fd : u.files) {
    if (::fdatasync(fd) != 0 && !err) err = last_error();
    close_fd(fd);
  }
  u.files.clear();
  if (u.dir >= 0) {
    if (::fsync(u.dir) != 0 && !err) err = last_error();
    close_fd(u.dir);
  }
  return err;
}

}  // namespace aforo::io
