// The delivery loop of the usage pipeline: cuts due batches (spool first, then memory), sends one at
// a time, and applies core::decide_delivery: retry with backoff, keep in the spool, dead-letter,
// split in halves after 413, re-probe after 401/403. Events ingest refuses one by one go to the
// dead-letter file before the batch is acked. Logs the state-change lines of contracts §8 once per change.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "app/ingest_handshake.hpp"
#include "app/pipeline_custody.hpp"
#include "app/pipeline_metrics.hpp"
#include "app/pipeline_sender.hpp"
#include "core/pipeline/retry_policy.hpp"

namespace aforo::app {

/// One delivery in flight at a time, by design: ordering stays FIFO, a failing ingest sees one
/// request per backoff step instead of a storm, and one kept-alive connection suffices (a batch of
/// up to 1000 events per request keeps throughput well above what one Kong node produces).
/// Threading: io thread only.
class pipeline_deliverer {
 public:
  using clock = core::pipeline_clock;

  /// Delivery outcomes are reported into `status` (the one owner of the ingest state, which writes
  /// the ERROR lines for 401 and for an unreachable ingest).
  pipeline_deliverer(boost::asio::io_context& ioc, pipeline_custody& custody, pipeline_sender& sender,
                     pipeline_metrics& metrics, const config::sidecar_config& cfg, ingest_status& status);
  ~pipeline_deliverer();

  /// New events were taken: sends at once when a batch is due, else arms the flush timer.
  void kick();
  /// Stops sending: cancels timers, aborts the request in flight and hands a memory batch that was
  /// in flight back to the spool. Nothing is sent afterwards.
  void stop();
  /// batch.*, retry.* apply live.
  void reload(const config::sidecar_config& cfg);

 private:
  void pump();
  void send_current();
  void on_report(send_report rep);
  /// What the request in flight carries: the whole batch, or the front part after 413 splits.
  [[nodiscard]] const std::string& sending_body() const;
  [[nodiscard]] std::uint32_t sending_events() const;
  void on_delivered(const send_report& rep);
  /// Writes the events the envelope refused to the dead-letter file; false when that failed.
  bool keep_refused(const send_report& rep);
  void on_too_large(const send_report& rep);
  /// The part (or the batch) in flight is done: on to the next part, or the batch is delivered.
  void part_done();
  /// The batch cannot go on now (a dead-letter write failed): back to the spool, retried at `at`.
  void hold(clock::time_point at);
  void on_failure(const send_report& rep, const core::retry_decision& d);
  void arm(clock::time_point at);
  void log_event_failures(const core::ingest_ack& ack, std::uint32_t events);

  pipeline_custody& custody_;
  pipeline_sender& sender_;
  pipeline_metrics& metrics_;
  ingest_status& status_;
  core::retry_settings retry_;
  bool memory_mode_;
  boost::asio::steady_timer timer_;
  std::optional<clock::time_point> armed_for_;
  std::optional<pipeline_batch> current_;   // the batch being sent or waiting for its retry
  struct part {
    std::string body;
    std::uint32_t events = 0;
  };
  std::deque<part> parts_;                  // after a 413: what of current_ is left to send, in order
  std::uint32_t attempt_ = 0;               // sends of current_ so far
  bool in_flight_ = false;
  bool stopping_ = false;
  clock::time_point not_before_{};          // backoff: nothing is sent before this
  bool failing_ = false;                    // since the last 2xx
  std::string last_problem_;                // the last failure logged, to log changes only
  clock::time_point last_event_failure_log_{};
  std::uint64_t unlogged_event_failures_ = 0;
  std::mt19937_64 rng_;
  std::shared_ptr<bool> alive_;             // completions check it: the deliverer may be gone
};

}  // namespace aforo::app
