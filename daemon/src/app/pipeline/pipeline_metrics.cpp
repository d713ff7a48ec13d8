// The usage pipeline's metric series; see pipeline_metrics.hpp.
#include "app/pipeline/pipeline_metrics.hpp"

namespace aforo::app {
namespace {

util::counter_metric& c(const char* name, const char* help, const std::string& labels = {}) {
  return util::metrics().counter(name, help, labels);
}

constexpr const char* rejected_help =
    "Usage events refused by POST /v1/ingest/batch and /v1/ingest, by reason (invalid, spool_full, spool_error).";
constexpr const char* refused_help = "Usage requests refused whole (nothing taken), by reason.";
constexpr const char* spool_skipped_help = "Spool records skipped because they failed their check, by kind.";
constexpr const char* compression_help =
    "The encoding of ingest requests now (1): lz4, or none (configured, or after ingest refused lz4).";
constexpr const char* quarantine_help =
    "Spool data set aside in {spool_dir}/quarantine: records that failed their check on read, segments with "
    "corrupt or unreadable bytes at startup.";

}  // namespace

pipeline_metrics::pipeline_metrics()
    : received(c("aforo_sidecar_events_received_total", "Usage events received in parsed request bodies.")),
      accepted(c("aforo_sidecar_events_accepted_total", "Usage events taken into custody (answered 202).")),
      rejected_invalid(c("aforo_sidecar_events_rejected_total", rejected_help, R"(reason="invalid")")),
      rejected_full(c("aforo_sidecar_events_rejected_total", rejected_help, R"(reason="spool_full")")),
      rejected_error(c("aforo_sidecar_events_rejected_total", rejected_help, R"(reason="spool_error")")),
      refused_malformed(c("aforo_sidecar_usage_requests_refused_total", refused_help, R"(reason="malformed")")),
      refused_too_many(c("aforo_sidecar_usage_requests_refused_total", refused_help, R"(reason="too_many_events")")),
      delivered(c("aforo_sidecar_events_delivered_total", "Usage events delivered to Aforo ingest (2xx).")),
      duplicates(c("aforo_sidecar_events_duplicates_total", "Delivered events Aforo reported as duplicates.")),
      ingest_failed(c("aforo_sidecar_events_ingest_failed_total",
                      "Events Aforo refused one by one inside a 2xx answer (logged, not retried).")),
      retries(c("aforo_sidecar_delivery_retries_total", "Batch resends after a transient ingest failure.")),
      dead_letter_errors(c("aforo_sidecar_dead_letter_write_errors_total",
                           "Dead-letter writes that failed; the events stay in the spool and are retried.")),
      spool_read_errors(c("aforo_sidecar_spool_read_errors_total",
                          "Spool reads that failed for an I/O reason (EMFILE, EIO...); retried with backoff, nothing "
                          "consumed.")),
      quarantined_records(c("aforo_sidecar_spool_quarantined_total", quarantine_help, R"(kind="record")")),
      quarantined_segments(c("aforo_sidecar_spool_quarantined_total", quarantine_help, R"(kind="segment")")),
      ingest_splits(c("aforo_sidecar_ingest_splits_total",
                      "Ingest requests answered 413 and split in halves (down to one event).")),
      spool_syncs(c("aforo_sidecar_spool_syncs_total", "Group commits: fdatasync of the spool's new appends.")),
      spool_written(c("aforo_sidecar_spool_written_bytes_total",
                      "Bytes appended to the disk spool (record headers and LZ4-compressed batch bodies).")),
      spool_sync_errors(c("aforo_sidecar_spool_sync_errors_total",
                          "Group commits that failed (write-back errors); the batches concerned were answered 503.")),
      raw_bytes(c("aforo_sidecar_batch_bytes_raw_total", "Ingest batch body bytes before compression.")),
      wire_bytes(c("aforo_sidecar_batch_bytes_compressed_total", "Ingest batch body bytes as sent on the wire.")),
      spilled(c("aforo_sidecar_events_spilled_total", "Events moved from the memory buffer to the disk spool.")),
      corrupt_records(c("aforo_sidecar_spool_skipped_records_total", spool_skipped_help, R"(kind="corrupt")")),
      torn_records(c("aforo_sidecar_spool_skipped_records_total", spool_skipped_help, R"(kind="torn")")),
      corrupt_events(c("aforo_sidecar_spool_skipped_records_total", spool_skipped_help, R"(kind="corrupt_on_read")")),
      io_thread_work(c("aforo_sidecar_ingest_thread_bypassed_total",
                       "Ingest requests parsed and batches compressed on the io thread because the ingest thread "
                       "was behind (CPU contention; server.ingest_thread_nice).")),
      encoding_refused(c("aforo_sidecar_ingest_compression_refused_total",
                         "Ingest requests refused for their lz4 encoding (415, or 400 naming it); their events are "
                         "sent again uncompressed.")),
      compression_lz4(util::metrics().gauge("aforo_sidecar_ingest_compression", compression_help, R"(encoding="lz4")")),
      compression_none(
          util::metrics().gauge("aforo_sidecar_ingest_compression", compression_help, R"(encoding="none")")),
      concurrency_limit(util::metrics().gauge(
          "aforo_sidecar_ingest_concurrency_limit",
          "Ingest requests allowed in flight at once now (adaptive: learned up to batch.max_concurrency).")),
      in_flight(util::metrics().gauge("aforo_sidecar_ingest_in_flight", "Ingest requests in flight now.")),
      ingest_rtt(util::metrics().histogram("aforo_sidecar_ingest_request_duration_seconds",
                                           "Time from sending a batch to ingest's answer (any status), seconds.",
                                           {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})) {
  for (const char* r : {"spool_full", "dead_letter_rotated", "shutdown_spool_full"}) dropped(r);
  for (const char* r : {"rejected_batch", "too_large", "event_failed", "success_false", "undecodable"})
    dead_lettered(r);
}

util::counter_metric& pipeline_metrics::dead_lettered(const std::string& reason) {
  auto it = dead_lettered_.find(reason);
  if (it != dead_lettered_.end()) return *it->second;
  auto& m = c("aforo_sidecar_events_dead_lettered_total",
              "Events ingest refused for good, written to the dead-letter file, by reason.",
              "reason=\"" + util::escape_label(reason) + "\"");
  dead_lettered_.emplace(reason, &m);
  return m;
}

util::counter_metric& pipeline_metrics::ingest_request(const std::string& status) {
  auto it = by_status_.find(status);
  if (it != by_status_.end()) return *it->second;
  auto& m =
      c("aforo_sidecar_ingest_requests_total", "Requests to Aforo ingest by HTTP status, network_error or timeout.",
        "status=\"" + util::escape_label(status) + "\"");
  by_status_.emplace(status, &m);
  return m;
}

util::counter_metric& pipeline_metrics::dropped(const std::string& reason) {
  auto it = dropped_.find(reason);
  if (it != dropped_.end()) return *it->second;
  auto& m = c("aforo_sidecar_events_dropped_total",
              "Accepted events dropped: spool_full (when_full drop_oldest), dead_letter_rotated (past "
              "buffer.dead_letter_max_bytes), shutdown_spool_full, by reason.",
              "reason=\"" + util::escape_label(reason) + "\"");
  dropped_.emplace(reason, &m);
  return m;
}

}  // namespace aforo::app
