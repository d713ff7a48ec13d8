// The memory buffer and disk spool of the usage pipeline; see pipeline_custody.hpp.
#include "app/pipeline_custody.hpp"

#include <algorithm>
#include <ctime>

#include "util/log.hpp"

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
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
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

}  // namespace

pipeline_custody::pipeline_custody(const config::sidecar_config& cfg, pipeline_metrics& metrics, clock::time_point now)
    : metrics_(metrics),
      memory_mode_(cfg.buffer.durability == config::durability_mode::memory),
      batch_events_(std::clamp<std::size_t>(cfg.batch.max_events, 1, 1000)),
      flush_interval_(cfg.batch.flush_interval),
      spool_(spool_options_of(cfg.buffer)),
      dead_letter_(io::dead_letter_file::default_dir(cfg.buffer.spool_dir, cfg.buffer.dead_letter_dir)) {
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
    util::log::warn("spool " + cfg.buffer.spool_dir + ": skipped " + std::to_string(r.corrupt_records) +
                    " corrupt and " + std::to_string(r.torn_records) + " torn record(s) (" +
                    std::to_string(r.skipped_bytes) + " bytes)");
  }
  if (r.cursor_reset) util::log::warn("spool " + cfg.buffer.spool_dir + ": cursor unreadable; reading from the oldest segment");
  if (!spool_.empty()) {
    util::log::info("spool " + cfg.buffer.spool_dir + ": recovered " + std::to_string(spool_.events()) + " events in " +
                    std::to_string(spool_.records()) + " records from " + std::to_string(r.segments) +
                    " segment(s); delivering them first");
    pending_since_ = now - flush_interval_;  // due at once
  }
}

io::spool_append_result pipeline_custody::store(std::string_view body, std::uint32_t events, clock::time_point now) {
  auto r = spool_.append(body, events);
  note_drops(r, now);
  if (r.stored()) {
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
                      std::to_string(spool_.options().max_bytes) + " bytes): refusing new events with 503 (when_full reject)");
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
    util::log::warn("spool full (" + std::to_string(spool_.options().max_bytes) + " bytes): dropped the " +
                    std::to_string(drops_unlogged_) + " oldest event(s) (when_full drop_oldest)");
    drops_unlogged_ = 0;
    last_drop_log_ = now;
  }
}

pipeline_custody::take_result pipeline_custody::take(const std::vector<core::accepted_event>& events,
                                                     clock::time_point now) {
  const std::size_t n = events.size();
  if (n == 0) return take_result::taken;
  std::size_t keep_in_memory = memory_mode_ ? std::min(memory_->room(), n) : 0;
  if (keep_in_memory < n) {
    // durability disk: the whole request; memory: what does not fit spills to disk.
    const auto r = store(body_of(events, keep_in_memory, n), static_cast<std::uint32_t>(n - keep_in_memory), now);
    if (!r.stored()) {
      return r.result == io::spool_append_result::status::io_error ? take_result::error : take_result::full;
    }
    if (memory_mode_) {
      metrics_.spilled.inc(n - keep_in_memory);
      if (!spilling_) {
        spilling_ = true;
        util::log::warn("spilling to disk: the memory buffer is full (" + std::to_string(memory_->size()) + " events)");
      }
    }
  }
  for (std::size_t i = 0; i < keep_in_memory; ++i) memory_->push(std::string(events[i].json), now);
  return take_result::taken;
}

std::optional<pipeline_batch> pipeline_custody::next_due(clock::time_point now, bool force) {
  if (!spool_.empty()) {
    // In memory mode the spool only holds a backlog (spilled or undeliverable): always due.
    if (force || spool_due(now)) {
      auto records = spool_.peek_upto(batch_events_);
      count_corrupt_reads();
      if (records.size() == 1) {
        // One record is a whole body already (what the builder would rebuild byte for byte, or a
        // record of another shape, sent as it is): no copy.
        pipeline_batch b;
        b.from_spool = true;
        b.body = std::move(records.front().payload);
        b.events = records.front().event_count;
        b.last_seq = records.front().seq;
        if (spool_.events() == b.events) pending_since_.reset();
        return b;
      }
      if (!records.empty()) {
        pipeline_batch b;
        b.from_spool = true;
        core::batch_body_builder builder;
        for (const auto& rec : records) {
          if (builder.add_body(rec.payload, rec.event_count)) {
            b.last_seq = rec.seq;
          } else {
            break;  // not a body this pipeline wrote; sent on its own next time
          }
        }
        if (builder.events() == 0) {
          // A lone record of another shape: send it as it is.
          b.body = std::move(records.front().payload);
          b.events = records.front().event_count;
          b.last_seq = records.front().seq;
        } else {
          b.events = builder.events();
          b.body = builder.finish();
        }
        if (spool_.events() == b.events) pending_since_.reset();
        return b;
      }
      pending_since_.reset();
    }
  }
  if (memory_) {
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
  if (!spool_.empty()) {
    if (spool_due(clock::time_point::min())) return clock::time_point::min();
    at = *pending_since_ + flush_interval_;
  }
  if (memory_) {
    if (auto m = memory_->next_deadline(); m && (!at || *m < *at)) at = m;
  }
  return at;
}

void pipeline_custody::delivered(const pipeline_batch& b) {
  if (!b.from_spool) return;
  if (auto ec = spool_.ack_through(b.last_seq)) util::log::error("spool ack failed: " + ec.message());
  if (spool_.empty()) {
    spilling_ = false;
    pending_since_.reset();
  }
}

bool pipeline_custody::spool_due(clock::time_point now) const {
  // In memory mode the spool only holds a backlog (spilled or undeliverable): always due. Records
  // not counted by pending_since_ (a batch that failed and went back) are due as well.
  return memory_mode_ || spool_.events() >= batch_events_ || !pending_since_ ||
         now >= *pending_since_ + flush_interval_;
}

bool pipeline_custody::keep(const pipeline_batch& b) {
  if (b.from_spool) {
    pending_since_.reset();  // back in line: due at once
    return true;
  }
  const auto r = store(b.body, b.events, clock::now());
  if (r.stored()) metrics_.spilled.inc(b.events);
  return r.stored();
}

void pipeline_custody::dead_letter(const pipeline_batch& b, int status, std::string_view response) {
  if (auto ec = dead_letter_.append(b.body, b.events, status, utc_now(), response)) {
    metrics_.dropped("dead_letter_error").inc(b.events);
    util::log::error("dead-letter file " + dead_letter_.path() + " cannot be written (" + ec.message() + "): " +
                     std::to_string(b.events) + " refused events are lost");
  } else {
    metrics_.dead_lettered.inc(b.events);
  }
  delivered(b);  // never resent
}

std::size_t pipeline_custody::persist_memory() {
  std::size_t moved = 0;
  if (memory_) {
    while (auto cut = memory_->take_any()) {
      const auto n = static_cast<std::uint32_t>(cut->events.size());
      const auto r = store(cut->body(), n, clock::now());
      if (r.stored()) {
        moved += n;
      } else {
        metrics_.dropped("shutdown_spool_full").inc(n);
        util::log::error("shutdown: " + std::to_string(n) + " buffered events could not be written to the spool");
      }
    }
  }
  sync();
  return moved;
}

void pipeline_custody::sync() {
  if (auto ec = spool_.sync()) util::log::error("spool sync failed: " + ec.message());
}

void pipeline_custody::reload(const config::sidecar_config& cfg) {
  batch_events_ = std::clamp<std::size_t>(cfg.batch.max_events, 1, 1000);
  flush_interval_ = cfg.batch.flush_interval;
}

void pipeline_custody::count_corrupt_reads() {
  const auto now_seen = spool_.corrupt_on_read();
  if (now_seen > corrupt_reads_seen_) {
    metrics_.corrupt_events.inc(now_seen - corrupt_reads_seen_);
    util::log::warn("spool: " + std::to_string(now_seen - corrupt_reads_seen_) +
                    " record(s) failed their check when read back and were skipped");
    corrupt_reads_seen_ = now_seen;
  }
}

}  // namespace aforo::app
