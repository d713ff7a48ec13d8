// The memory buffer and disk spool of the usage pipeline; see pipeline_custody.hpp.
#include "app/pipeline/pipeline_custody.hpp"

#include <algorithm>
#include <ctime>

#include "core/pipeline/batch_split.hpp"
#include "io/lz4_frame.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "core/pipeline/custody_policy.hpp"

namespace aforo::app {
namespace {

using namespace std::chrono_literals;

io::spool_options spool_options_of(const config::buffer_config& b) {
  io::spool_options o;
  o.dir = b.spool_dir;
  o.segment_bytes = b.segment_bytes;
  o.max_bytes = b.spool_max_bytes;
  o.when_full = b.when_full;
  return o;
}

std::string utc_now() {
  const auto t = std::chrono::system_clock::to_time_t(util::wall_now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string body_of(const std::vector<core::accepted_event>& events, std::size_t from, std::size_t to) {
  std::size_t bytes = 0;
  for (std::size_t i = from; i < to; ++i) bytes += events[i].json.size() + 1;
  core::batch_body_builder b(bytes);
  for (std::size_t i = from; i < to; ++i) b.add_event(events[i].json);
  return b.finish();
}

constexpr auto drop_log_every = 10s;
/// A decompressed spool record is at most this (a record holds at most one request's events).
constexpr std::size_t max_record_body = 256u << 20;

}  // namespace

pipeline_custody::pipeline_custody(const config::sidecar_config& cfg, pipeline_metrics& metrics, clock::time_point now)
    : metrics_(metrics),
      memory_mode_(cfg.buffer.durability == config::durability_mode::memory),
      batch_events_(std::clamp<std::size_t>(cfg.batch.max_events, 1, 1000)),
      backlog_events_(std::clamp<std::size_t>(cfg.batch.backlog_events, 1, 1000)),
      window_limit_(std::uint64_t{std::max<std::uint32_t>(cfg.batch.max_concurrency, 1)} *
                    std::max(batch_events_, backlog_events_)),
      flush_interval_(cfg.batch.flush_interval),
      spool_(spool_options_of(cfg.buffer)),
      dead_letter_(io::dead_letter_file::default_dir(cfg.buffer.spool_dir, cfg.buffer.dead_letter_dir),
                   cfg.buffer.dead_letter_max_bytes) {
  if (memory_mode_) {
    core::batcher::options o;
    o.max_batch_events = batch_events_;
    o.flush_interval = flush_interval_;
    o.max_buffered_events = cfg.buffer.max_events;
    memory_ = std::make_unique<core::batcher>(o);
  }
  const auto& r = spool_.recovery();
  metrics_.corrupt_records.inc(r.corrupt_records);
  metrics_.torn_records.inc(r.torn_records);
  if (r.corrupt_records != 0 || r.torn_records != 0) {
    (r.corrupt_records != 0 ? util::log::error : util::log::warn)(
        "spool " + cfg.buffer.spool_dir + ": skipped " + std::to_string(r.corrupt_records) + " corrupt and " +
        std::to_string(r.torn_records) + " torn record(s) (" + std::to_string(r.skipped_bytes) + " bytes)");
  }
  for (const auto& q : r.quarantined_copies) {
    metrics_.quarantined_segments.inc();
    util::log::error("spool: a segment with bad records was copied to " + q + " (its good records are delivered)");
  }
  for (const auto& q : r.quarantined_unreadable) {
    metrics_.quarantined_segments.inc();
    util::log::error("spool: a segment that cannot be read was moved to " + q +
                     "; once the cause is fixed, move it back into " + cfg.buffer.spool_dir +
                     " and restart to deliver its events");
  }
  if (r.cursor_reset)
    util::log::warn("spool " + cfg.buffer.spool_dir + ": cursor unreadable; reading from the oldest segment");
  if (!spool_.empty()) {
    util::log::info("spool " + cfg.buffer.spool_dir + ": recovered " + std::to_string(spool_.events()) + " events in " +
                    std::to_string(spool_.records()) + " records from " + std::to_string(r.segments) + " segment(s)" +
                    (r.format1_records != 0 ? " (" + std::to_string(r.format1_records) + " in format 1)" : "") +
                    "; delivering them first");
    pending_since_ = now - flush_interval_;  // due at once
  }
  if (cfg.buffer.when_full == config::when_full_policy::drop_oldest) {
    util::log::warn("buffer.when_full is drop_oldest: a full spool deletes the oldest acknowledged events");
  }
}

io::spool_append_result pipeline_custody::store(std::string_view body, std::uint32_t events, clock::time_point now) {
  // Format 2: the body as one LZ4 frame (~5x smaller for event JSON); format 1 if that fails.
  io::spool_append_result r;
  if (io::lz4_compress_frame(body, wire_).ok) {
    r = spool_.append(wire_, events, core::spool_format::lz4);
    r.compressed = true;
  } else {
    r = spool_.append(body, events, core::spool_format::json);
  }
  note_drops(r, now);
  if (r.stored()) {
    metrics_.spool_written.inc(core::spool_header_bytes + (r.compressed ? wire_.size() : body.size()));
    if (!pending_since_) pending_since_ = now;
    if (rejecting_) {
      rejecting_ = false;
      util::log::info("spool has room again: accepting events");
    }
  } else if (r.result == io::spool_append_result::status::rejected_full ||
             r.result == io::spool_append_result::status::too_large) {
    if (!rejecting_) {
      rejecting_ = true;
      util::log::warn("spool full (" + std::to_string(spool_.bytes()) + " of " +
                      std::to_string(spool_.options().max_bytes) +
                      " bytes): refusing new events with 503 (when_full reject)");
    }
  } else {
    util::log::error("spool write failed: " + r.error.message() + "; the events were not taken");
  }
  return r;
}

void pipeline_custody::note_drops(const io::spool_append_result& r, clock::time_point now) {
  if (r.dropped_events == 0) return;
  metrics_.dropped("spool_full").inc(r.dropped_events);
  drops_unlogged_ += r.dropped_events;
  if (last_drop_log_ == clock::time_point{} || now - last_drop_log_ >= drop_log_every) {
    util::log::error("spool full (" + std::to_string(spool_.options().max_bytes) + " bytes): dropped the " +
                     std::to_string(drops_unlogged_) + " oldest acknowledged event(s) (when_full drop_oldest)");
    drops_unlogged_ = 0;
    last_drop_log_ = now;
  }
}

pipeline_custody::take_outcome pipeline_custody::take(const std::vector<core::accepted_event>& events,
                                                      clock::time_point now) {
  take_outcome out;
  const std::size_t n = events.size();
  if (n == 0) return out;
  const auto split = core::split_custody(memory_mode_, memory_mode_ ? memory_->room() : 0, n);
  const std::size_t keep_in_memory = split.to_memory;
  if (split.to_spool > 0) {
    // durability disk: the whole request; memory: what does not fit spills to disk.
    const auto r = store(body_of(events, keep_in_memory, n), static_cast<std::uint32_t>(n - keep_in_memory), now);
    if (!r.stored()) {
      out.result = r.result == io::spool_append_result::status::io_error ? take_result::error : take_result::full;
      return out;
    }
    out.spooled = true;
    if (memory_mode_) {
      metrics_.spilled.inc(n - keep_in_memory);
      if (!spilling_) {
        spilling_ = true;
        util::log::warn("spilling to disk: the memory buffer is full (" + std::to_string(memory_->size()) + " events)");
      }
    }
  }
  for (std::size_t i = 0; i < keep_in_memory; ++i) memory_->push(std::string(events[i].json), now);
  return out;
}

void pipeline_custody::note_read_error(const std::error_code& ec, clock::time_point now) {
  const auto wait = read_backoff_.next();
  if (!read_retry_at_) {
    util::log::error(
        "spool read failed (" + ec.message() + "); nothing is lost: retrying with backoff up to " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(read_backoff_.policy().cap).count()) + "s");
  }
  read_retry_at_ = now + wait;
}

bool pipeline_custody::has_unsent() const noexcept {
  return !spool_.empty() && spool_.back_seq() >= std::max(send_seq_, spool_.front_seq());
}

std::uint64_t pipeline_custody::unsent_events() const noexcept {
  // Records dropped by drop_oldest may still count in the window: then this is low, never high.
  const auto out = window_.open_events();
  return spool_.events() > out ? spool_.events() - out : 0;
}

void pipeline_custody::note_cut(const pipeline_batch& b, std::uint32_t record_events) {
  window_.sent(b.last_seq, record_events);
  if (b.slice_end != 0 && !b.slice_is_last) {
    send_seq_ = b.last_seq;
    send_skip_ = b.slice_end;
  } else {
    send_seq_ = b.last_seq + 1;
    send_skip_ = 0;
  }
  if (!has_unsent()) pending_since_.reset();
}

std::optional<pipeline_batch> pipeline_custody::cut_from_spool(clock::time_point now) {
  // Behind (more than a batch waiting): bigger batches, so that delivery catches up at a round trip
  // per backlog_events instead of per max_events (a remote ingest's round trip bounds the rate).
  std::size_t cap = request_events();
  if (unsent_events() > cap) cap = std::min(std::max(cap, backlog_events_), learned_cap_);
  // The next slice of a record already split: no read, decompression or parse again.
  if (send_skip_ != 0 && head_split_.seq == send_seq_) return cut_slice(send_skip_, cap);
  send_skip_ = 0;
  auto peek = spool_.peek_from(send_seq_, cap);
  count_spool_checks();
  // Corrupt records past the oldest (quarantined, counted by the store): consumed in their turn.
  for (const auto& [seq, events] : peek.corrupt) {
    window_.sent(seq, events);
    window_.delivered(seq, events);
    send_seq_ = std::max(send_seq_, seq + 1);
  }
  if (!peek.corrupt.empty()) ack_delivered();
  if (peek.records.empty()) {
    if (peek.io_error)
      note_read_error(peek.io_error, now);
    else if (!has_unsent())
      pending_since_.reset();
    return std::nullopt;
  }
  if (read_retry_at_) {
    util::log::info("spool readable again");
    read_retry_at_.reset();
    read_backoff_.reset();
  }
  // Bodies as JSON: format 2 records are decompressed. A corrupt record between two good ones was
  // reported in `corrupt`; the batch stops before it, so that its records are consecutive.
  std::vector<std::string> bodies;
  bodies.reserve(peek.records.size());
  for (std::size_t i = 0; i < peek.records.size(); ++i) {
    auto& rec = peek.records[i];
    if (i != 0 && rec.seq != peek.records[i - 1].seq + 1) break;
    if (rec.format == core::spool_format::lz4) {
      std::string body;
      if (!io::lz4_decompress_frame(rec.payload, body, max_record_body).ok) {
        if (bodies.empty()) {
          // Passed its CRC yet does not decompress: kept for an operator, never resent.
          pipeline_batch bad;
          bad.from_spool = true;
          bad.body = std::move(rec.payload);
          bad.events = rec.event_count;
          bad.first_seq = bad.last_seq = rec.seq;
          note_cut(bad, rec.event_count);
          util::log::error("spool: a record of " + std::to_string(rec.event_count) +
                           " events does not decompress; written to " + dead_letter_.path());
          if (dead_letter(bad, 0, "spool record does not decompress", "undecodable")) return cut_from_spool(now);
          send_seq_ = rec.seq;  // the dead-letter file failed: read again next time
          return std::nullopt;
        }
        break;
      }
      bodies.push_back(std::move(body));
    } else {
      bodies.push_back(std::move(rec.payload));
    }
  }
  const auto& first = peek.records.front();
  pipeline_batch b;
  b.from_spool = true;
  b.first_seq = first.seq;
  if (first.event_count > cap) {
    // A record larger than a batch goes in slices; the window acks it once every slice is delivered.
    head_split_.seq = 0;
    head_split_.body = std::move(bodies.front());
    if (auto events = core::split_batch_body(head_split_.body); events && events->size() == first.event_count) {
      head_split_.seq = first.seq;
      head_split_.events = std::move(*events);
      return cut_slice(0, cap);
    }
    bodies.front() = std::move(head_split_.body);
    // Not a body this pipeline wrote: sent as it is.
  }
  if (bodies.size() == 1) {
    b.body = std::move(bodies.front());
    b.events = first.event_count;
    b.last_seq = first.seq;
  } else {
    core::batch_body_builder builder;
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      if (!builder.add_body(bodies[i], peek.records[i].event_count)) break;  // another shape: sent on its own next
      b.last_seq = peek.records[i].seq;
    }
    if (builder.events() == 0) {
      b.body = std::move(bodies.front());
      b.events = first.event_count;
      b.last_seq = first.seq;
    } else {
      b.events = builder.events();
      b.body = builder.finish();
    }
  }
  window_.sent(b.first_seq, first.event_count);
  for (std::size_t i = 1; i < peek.records.size() && peek.records[i].seq <= b.last_seq; ++i) {
    window_.sent(peek.records[i].seq, peek.records[i].event_count);
  }
  send_seq_ = b.last_seq + 1;
  send_skip_ = 0;
  if (!has_unsent()) pending_since_.reset();
  return b;
}

pipeline_batch pipeline_custody::cut_slice(std::uint32_t skip, std::size_t cap) {
  const auto& events = head_split_.events;
  const std::size_t end = std::min<std::size_t>(skip + cap, events.size());
  pipeline_batch b;
  b.from_spool = true;
  b.body = core::join_events(events, skip, end);
  b.events = static_cast<std::uint32_t>(end - skip);
  b.first_seq = b.last_seq = head_split_.seq;
  b.slice_end = static_cast<std::uint32_t>(end);
  b.slice_is_last = end == events.size();
  note_cut(b, static_cast<std::uint32_t>(events.size()));
  if (b.slice_is_last) head_split_ = {};  // every slice is out: the copy is no longer needed
  return b;
}

std::optional<pipeline_batch> pipeline_custody::next_due(clock::time_point now, bool force) {
  if (has_unsent()) {
    if (window_full()) return std::nullopt;  // a delivery opens it; memory waits behind (FIFO)
    if (!(read_retry_at_ && now < *read_retry_at_ && !force) && (force || spool_due(now))) {
      if (auto b = cut_from_spool(now)) return b;
    }
    if (has_unsent()) return std::nullopt;  // unreadable for now: memory waits behind it (FIFO)
  }
  if (memory_ && spool_.empty()) {  // disk first: memory waits until the spool's batches are delivered
    auto cut = force ? memory_->take_any() : memory_->take_ready(now);
    if (cut) {
      pipeline_batch b;
      b.events = static_cast<std::uint32_t>(cut->events.size());
      b.body = cut->body();
      return b;
    }
  }
  return std::nullopt;
}

std::optional<pipeline_custody::clock::time_point> pipeline_custody::next_deadline() const {
  std::optional<clock::time_point> at;
  if (has_unsent()) {
    if (window_full()) return std::nullopt;
    if (read_retry_at_) return *read_retry_at_;
    if (spool_due(clock::time_point::min())) return clock::time_point::min();
    at = *pending_since_ + flush_interval_;
  }
  if (memory_ && spool_.empty()) {  // else a delivery from the spool comes first and wakes the deliverer
    if (auto m = memory_->next_deadline(); m && (!at || *m < *at)) at = m;
  }
  return at;
}

void pipeline_custody::delivered(const pipeline_batch& b) {
  if (!b.from_spool) return;
  if (b.slice_end != 0) {
    window_.delivered(b.last_seq, b.events);
  } else {
    for (auto seq = b.first_seq; seq <= b.last_seq; ++seq) window_.delivered(seq, UINT32_MAX);
  }
  ack_delivered();
}

void pipeline_custody::ack_delivered() {
  if (auto through = window_.take_ackable()) {
    if (auto ec = spool_.ack_through(*through)) util::log::error("spool ack failed: " + ec.message());
  }
  if (spool_.empty()) {
    spilling_ = false;
    pending_since_.reset();
  }
}

bool pipeline_custody::spool_due(clock::time_point now) const {
  // In memory mode the spool only holds a backlog (spilled or undeliverable): always due.
  return memory_mode_ || unsent_events() >= request_events() || !pending_since_ ||
         now >= *pending_since_ + flush_interval_;
}

bool pipeline_custody::keep(const pipeline_batch& b) {
  if (b.from_spool) return true;  // in the spool until delivered: the caller sends it again
  const auto r = store(b.body, b.events, clock::now());
  if (r.stored()) metrics_.spilled.inc(b.events);
  return r.stored();
}

bool pipeline_custody::dead_letter(const pipeline_batch& b, int status, std::string_view response,
                                   std::string_view reason) {
  const std::string now = utc_now();
  if (auto ec = dead_letter_.append(b.body, b.events, status, now, response, reason)) {
    metrics_.dead_letter_errors.inc();
    util::log::error("dead-letter file " + dead_letter_.path() + " cannot be written (" + ec.message() +
                     "): " + std::to_string(b.events) + " refused events stay in the spool and are retried later");
    return false;
  }
  note_dead_letter_rotation();
  metrics_.dead_lettered(std::string(reason)).inc(b.events);
  delivered(b);  // never resent
  return true;
}

bool pipeline_custody::dead_letter_events(const std::vector<io::dead_letter_entry>& entries) {
  if (entries.empty()) return true;
  if (auto ec = dead_letter_.append(entries)) {
    metrics_.dead_letter_errors.inc();
    util::log::error("dead-letter file " + dead_letter_.path() + " cannot be written (" + ec.message() +
                     "): " + std::to_string(entries.size()) +
                     " event(s) ingest refused stay in the spool and are retried later");
    return false;
  }
  note_dead_letter_rotation();
  for (const auto& e : entries) metrics_.dead_lettered(std::string(e.reason)).inc(e.events);
  return true;
}

void pipeline_custody::note_dead_letter_rotation() {
  const auto deleted = dead_letter_.deleted_events();
  if (deleted > dl_deleted_seen_) {
    metrics_.dropped("dead_letter_rotated").inc(deleted - dl_deleted_seen_);
    util::log::error("dead-letter files passed buffer.dead_letter_max_bytes: the oldest rotation was deleted (" +
                     std::to_string(deleted - dl_deleted_seen_) + " events); replay or archive them sooner");
    dl_deleted_seen_ = deleted;
  }
}

void pipeline_custody::limit_request_events(std::uint32_t events) {
  const std::size_t half = std::max<std::size_t>(1, events / 2);
  if (half < learned_cap_) {
    learned_cap_ = half;
    util::log::warn("ingest refused a request of " + std::to_string(events) +
                    " events as too large (413): requests now carry at most " + std::to_string(half) +
                    " (until a restart or SIGHUP)");
  }
}

pipeline_custody::persist_result pipeline_custody::persist_memory() {
  persist_result res;
  if (memory_) {
    while (auto cut = memory_->take_any()) {
      const auto n = static_cast<std::uint32_t>(cut->events.size());
      const auto r = store(cut->body(), n, clock::now());
      if (r.stored()) {
        res.moved += n;
      } else {
        res.lost += n;
        metrics_.dropped("shutdown_spool_full").inc(n);
        util::log::error("shutdown: " + std::to_string(n) + " buffered events could not be written to the spool");
      }
    }
  }
  sync();
  return res;
}

void pipeline_custody::sync() {
  if (auto ec = spool_.sync()) util::log::error("spool sync failed: " + ec.message());
}

void pipeline_custody::reload(const config::sidecar_config& cfg) {
  batch_events_ = std::clamp<std::size_t>(cfg.batch.max_events, 1, 1000);
  backlog_events_ = std::clamp<std::size_t>(cfg.batch.backlog_events, 1, 1000);
  learned_cap_ = 1000;
  flush_interval_ = cfg.batch.flush_interval;
}

void pipeline_custody::count_spool_checks() {
  if (const auto n = spool_.corrupt_on_read(); n > corrupt_reads_seen_) {
    metrics_.corrupt_events.inc(n - corrupt_reads_seen_);
    corrupt_reads_seen_ = n;
  }
  if (const auto n = spool_.quarantined_records(); n > quarantined_seen_) {
    metrics_.quarantined_records.inc(n - quarantined_seen_);
    util::log::error("spool: " + std::to_string(n - quarantined_seen_) +
                     " record(s) failed their check when read back; their bytes are in " + spool_.quarantine_dir());
    quarantined_seen_ = n;
  }
  if (const auto n = spool_.read_errors(); n > read_errors_seen_) {
    metrics_.spool_read_errors.inc(n - read_errors_seen_);
    read_errors_seen_ = n;
  }
}

}  // namespace aforo::app
