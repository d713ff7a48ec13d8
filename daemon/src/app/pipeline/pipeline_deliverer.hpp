// The delivery loop of the usage pipeline: cuts due batches (spool first, then memory), sends several
// at once within an adaptive concurrency limit, and applies core::decide_delivery to each: retry with backoff, keep in
// the spool, dead-letter, split in halves after 413, re-probe after 401/403; a batch whose lz4 encoding ingest refused
// is sent again at once, uncompressed (the sender has fallen back; nothing is dead-lettered for it). Events ingest
// refuses one by one go to the dead-letter file before the batch is acked. Logs the state-change lines of
// docs/design/log-lines.md#daemon once per change.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "app/pipeline/handshake_service.hpp"
#include "app/pipeline/pipeline_custody.hpp"
#include "app/pipeline/pipeline_metrics.hpp"
#include "app/pipeline/pipeline_sender.hpp"
#include "core/pipeline/concurrency_limit.hpp"
#include "core/pipeline/delivery_flight.hpp"
#include "core/pipeline/retry_policy.hpp"
#include "util/clock.hpp"
#include "util/lifetime.hpp"

namespace aforo::app {

/// Several deliveries in flight at once (batch.max_concurrency, adaptive by default): over a
/// network round trip, one request at a time bounds delivery at batch size / RTT. Each batch out is
/// a flight with its own parts (after 413 splits), attempts and backoff; a flight that fails waits
/// for its own retry while the others go on, and custody acks spool records in order only (its
/// window bounds how far the others run ahead). The limit follows core::concurrency_limit: up while
/// round trips stay near the lowest seen, halved on timeouts, 429, 5xx and network errors, every
/// new request held back by a Retry-After. No new batch is cut while ingest is failing (no 2xx
/// since the last failure): waiting flights are retried, oldest first, within the limit.
/// Threading: io thread only.
class pipeline_deliverer {
 public:
  using clock = util::steady_clock;

  /// Delivery outcomes are reported into `status` (the one owner of the ingest state, which writes
  /// the ERROR lines for 401 and for an unreachable ingest).
  pipeline_deliverer(boost::asio::io_context& ioc, pipeline_custody& custody, pipeline_sender& sender,
                     pipeline_metrics& metrics, const config::sidecar_config& cfg, ingest_status& status);
  ~pipeline_deliverer();

  /// New events were taken: sends at once when a batch is due, else arms the flush timer.
  void kick();
  /// Stops sending: cancels timers, aborts the requests in flight and hands memory batches that were
  /// out back to the spool. Nothing is sent afterwards.
  void stop();
  /// batch.*, retry.* apply live (batch.max_concurrency and adaptive_concurrency at restart).
  void reload(const config::sidecar_config& cfg);

  /// For /v1/handshake and tests.
  struct state {
    std::uint32_t limit = 0;
    std::uint32_t max = 0;
    std::uint32_t in_flight = 0;
    std::optional<std::chrono::milliseconds> min_rtt;
  };
  [[nodiscard]] state current() const;

 private:
  /// A batch out to ingest: being sent, or waiting for its retry (its parts, attempts and times in
  /// core::delivery_flight).
  struct flight {
    pipeline_batch batch;
    core::delivery_flight state;
  };

  void pump();
  void send(flight& f, clock::time_point now);
  void on_report(flight& f, send_report rep);
  /// What the flight's request carries: the whole batch, or the front part after 413 splits.
  [[nodiscard]] static const std::string& sending_body(const flight& f);
  void on_delivered(flight& f, const send_report& rep);
  /// Writes the events the envelope refused to the dead-letter file; false when that failed.
  bool keep_refused(const flight& f, const send_report& rep);
  void on_too_large(flight& f, const send_report& rep);
  /// The part (or the batch) in flight is done: on to the next part, or the batch is delivered.
  void part_done(flight& f);
  /// The batch cannot go on now: a memory batch goes to the spool, a spool batch waits until `at`.
  void hold(flight& f, clock::time_point at);
  void on_failure(flight& f, const send_report& rep, const core::retry_decision& d);
  /// Dead-letters what the flight sends now; false (and held) when the dead-letter file failed.
  void dead_letter_sending(flight& f, int status, const send_report& rep, std::string_view reason,
                           clock::time_point retry_at);
  void arm(clock::time_point at);
  void log_event_failures(const core::ingest_ack& ack, std::uint32_t events);
  void publish();

  pipeline_custody& custody_;
  pipeline_sender& sender_;
  pipeline_metrics& metrics_;
  ingest_status& status_;
  core::retry_settings retry_;
  bool memory_mode_;
  core::concurrency_limit limit_;
  std::uint32_t max_concurrency_;
  boost::asio::steady_timer timer_;
  std::optional<clock::time_point> armed_for_;
  std::list<flight> flights_;  // in the order they were cut
  std::uint32_t in_flight_ = 0;
  bool stopping_ = false;
  bool failing_ = false;           // since the last 2xx
  clock::time_point resume_at_{};  // a held memory batch went to the spool: no new batch before this
  std::string last_problem_;       // the last failure logged, to log changes only
  clock::time_point last_event_failure_log_{};
  std::uint64_t unlogged_event_failures_ = 0;
  std::mt19937_64 rng_;
  util::lifetime alive_;  // completions check it: the deliverer may be gone
};

}  // namespace aforo::app
