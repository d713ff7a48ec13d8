// The usage pipeline (docs/design/ingest-contract.md, resilience.md): POST /v1/ingest/batch and /v1/ingest
// take custody of validated events (memory buffer or disk spool), and a deliverer sends them to Aforo ingest.
#pragma once

#include <memory>

#include "app/service.hpp"
#include "core/pipeline/event_validation.hpp"
#include "io/http/http_client.hpp"

namespace aforo::io {
class ingest_thread;
}  // namespace aforo::io

namespace aforo::app {

class discovery_service;
class ingest_status;
class margin_service;
class pipeline_custody;
class pipeline_deliverer;
class pipeline_sender;
class spool_commit;
struct pipeline_metrics;

/// POST /v1/ingest/batch (`{"events":[...]}`, at most server.max_batch_events) and POST /v1/ingest
/// (one event object). Answers 202 `{"accepted":N,"failed":M,"errors":[...]}` (invalid events are
/// refused one by one), 400 for malformed JSON, 413 for too many events (the server answers 413 for
/// bytes over server.max_body), 503 + Retry-After when the spool is full with when_full reject or
/// cannot be written. With durability disk the 202 is sent after the batch is in the spool file
/// and, with buffer.fsync always, after a group-committed fdatasync (503 if that fails).
/// SIGTERM (stop): the memory buffer and the batch in flight go to the spool, which is synced.
/// Threading: io thread, except the parse of a posted body and the compression of a batch for
/// Aforo, which run on the ingest thread (server.ingest_thread) and come back to the io thread.
class pipeline_service final : public service {
 public:
  /// Opens and recovers the spool (corrupt or torn records are skipped and counted, never fatal).
  /// Throws std::runtime_error when the spool directory is unusable (a startup error).
  /// Not owned, each outlives this: delivery outcomes go into `status` (which the handshake service
  /// reports to /v1/handshake and /readyz); accepted events go to the margin guard, which prices
  /// them before custody and records the cost once custody took them, and to discovery, which
  /// observes them before custody (both read the events' fields, valid during the call only).
  pipeline_service(context& ctx, ingest_status& status, margin_service& margin, discovery_service& discovery);
  ~pipeline_service() override;

  void register_routes(io::router& routes) override;
  void start() override;
  void reload(const config::sidecar_config& next) override;
  void stop(std::function<void()> done) override;
  bool persist_now() override;
  /// "delivery": the concurrency limit, its maximum, requests in flight and the lowest round trip seen;
  /// "compression": {"configured","effective"} (effective "none" after ingest refused lz4).
  void handshake_fields(std::map<std::string, std::string>& fields) const override;

  /// The handshake's key check, sent on the pipeline's kept-alive ingest connection.
  void probe_ingest(std::string body, io::http_client::completion done);
  /// The handshake's encoding check (pipeline_sender::probe_compression).
  void probe_compression();

 private:
  void handle(io::http_request& req, const io::respond_fn& respond, bool single);
  /// Custody and the answer for a parsed body (io thread).
  void take(core::ingest_parse_result parsed, const io::respond_fn& respond);

  context& ctx_;
  std::unique_ptr<pipeline_metrics> metrics_;
  std::unique_ptr<pipeline_custody> custody_;
  std::unique_ptr<pipeline_sender> sender_;
  std::unique_ptr<pipeline_deliverer> deliverer_;
  std::unique_ptr<spool_commit> commit_;
  bool stopped_ = false;
  bool persisted_ = false;
  std::size_t lost_ = 0;
  margin_service& margin_;
  discovery_service& discovery_;
  std::unique_ptr<io::ingest_thread> thread_;  // last: joined first, while what its jobs reach still lives
};

}  // namespace aforo::app
