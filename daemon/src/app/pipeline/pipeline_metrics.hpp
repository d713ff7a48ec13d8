// The usage pipeline's Prometheus series (aforo_sidecar_*): looked up once, updated lock-free.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "util/metrics.hpp"

namespace aforo::app {

/// Threading: counters are atomic; `ingest_request` and `dropped` register lazily and must be called
/// on the io thread.
struct pipeline_metrics {
  pipeline_metrics();

  util::counter_metric& received;              ///< events in parsed request bodies (valid or not)
  util::counter_metric& accepted;              ///< events taken into custody (202)
  util::counter_metric& rejected_invalid;      ///< events refused one by one by the field rules
  util::counter_metric& rejected_full;         ///< valid events refused with 503 (spool full, when_full reject)
  util::counter_metric& rejected_error;        ///< valid events refused with 503 (spool write error)
  util::counter_metric& refused_malformed;     ///< requests refused whole: malformed JSON / not a batch
  util::counter_metric& refused_too_many;      ///< requests refused whole: more events than allowed
  util::counter_metric& delivered;             ///< events Aforo answered 2xx for (accepted + duplicates)
  util::counter_metric& duplicates;            ///< of those, reported as duplicates by Aforo
  util::counter_metric& ingest_failed;         ///< per-event failures in Aforo's 2xx answers (not retried)
  util::counter_metric& retries;               ///< resends of a batch after a transient failure
  util::counter_metric& dead_letter_errors;    ///< dead-letter writes that failed (the events stay in the spool)
  util::counter_metric& spool_read_errors;     ///< spool reads that failed for an I/O reason (retried, nothing lost)
  util::counter_metric& quarantined_records;   ///< spool records that failed their check on read, copied to quarantine/
  util::counter_metric& quarantined_segments;  ///< spool segments copied or moved to quarantine/ at startup
  util::counter_metric& ingest_splits;         ///< ingest requests answered 413 and split in halves
  util::counter_metric& spool_syncs;           ///< group commits (fdatasync of the spool)
  util::counter_metric& spool_written;         ///< bytes appended to the spool (headers + LZ4 payloads)
  util::counter_metric& spool_sync_errors;     ///< group commits that failed (the batches concerned got 503)
  util::counter_metric& raw_bytes;             ///< batch bodies before compression
  util::counter_metric& wire_bytes;            ///< batch bodies as sent (after compression)
  util::counter_metric& spilled;               ///< events moved from memory to the disk spool
  util::counter_metric& corrupt_records;       ///< spool records skipped: corrupt
  util::counter_metric& torn_records;          ///< spool records skipped: cut short
  util::counter_metric& corrupt_events;        ///< events of spool records that failed their check on read
  util::counter_metric&
      io_thread_work;  ///< requests parsed / batches compressed on the io thread: the ingest thread was behind
  util::counter_metric& encoding_refused;  ///< ingest requests refused for their lz4 encoding (sent again uncompressed)
  util::gauge_metric& compression_lz4;     ///< 1 while batches go out as lz4, else 0
  util::gauge_metric& compression_none;    ///< 1 while batches go out uncompressed, else 0
  util::gauge_metric& concurrency_limit;   ///< ingest requests allowed in flight now (adaptive)
  util::gauge_metric& in_flight;           ///< ingest requests in flight now
  util::histogram_metric& ingest_rtt;      ///< seconds from sending a batch to ingest's answer

  /// aforo_sidecar_ingest_requests_total{status="202"|"503"|"network_error"|"timeout"}.
  util::counter_metric& ingest_request(const std::string& status);
  /// aforo_sidecar_events_dropped_total{reason=...}: spool_full (drop_oldest), dead_letter_rotated,
  /// shutdown_spool_full.
  util::counter_metric& dropped(const std::string& reason);
  /// aforo_sidecar_events_dead_lettered_total{reason=...}: rejected_batch, too_large, event_failed,
  /// success_false, undecodable.
  util::counter_metric& dead_lettered(const std::string& reason);

 private:
  std::map<std::string, util::counter_metric*> by_status_;
  std::map<std::string, util::counter_metric*> dropped_;
  std::map<std::string, util::counter_metric*> dead_lettered_;
};

}  // namespace aforo::app
