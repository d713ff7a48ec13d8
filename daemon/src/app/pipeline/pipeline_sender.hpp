// Sends one batch body to Aforo ingest (docs/design/ingest-contract.md#delivery): LZ4 frame, auth headers,
// keep-alive, and turns the answer into a core::delivery_outcome plus Aforo's 202 envelope.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "app/pipeline/pipeline_metrics.hpp"
#include "config/config.hpp"
#include "config/secrets.hpp"
#include "core/pipeline/encoding_fallback.hpp"
#include "core/pipeline/ingest_ack.hpp"
#include "core/pipeline/retry_policy.hpp"
#include "io/http/http_client.hpp"

namespace boost::asio {
class io_context;
}

namespace aforo::io {
class ingest_thread;
}  // namespace aforo::io

namespace aforo::app {

/// What one ingest request ended with.
struct send_report {
  core::delivery_outcome outcome;
  std::optional<core::ingest_ack> ack;  ///< Aforo's envelope, on 2xx when it parsed
  std::string response_body;            ///< the answer's body (kept for the dead-letter file)
  std::string host;                     ///< the ingest host, for log lines
  std::string error_message;            ///< network errors: what failed (safe to log)
  io::client_result::error_kind error = io::client_result::error_kind::none;  ///< network errors: which
  bool compressed = false;                                                    ///< the request went out as an lz4 frame
  /// Ingest refused the request's lz4 encoding (core::is_encoding_refusal): the sender has fallen back
  /// to uncompressed; send the same body again (it is not poison).
  bool encoding_refused = false;
};

/// A pool of kept-alive connections to the ingest origin (one io::http_client each, created as
/// needed, up to batch.max_concurrency): each send goes out on a connection that is idle, so that
/// several batches are in flight at once; the handshake's probe has a connection of its own.
/// Counts ingest_requests{status}, raw and wire bytes. Threading: io thread only; with an ingest
/// thread (use_thread), a batch is compressed there while the io thread goes on answering checks.
class pipeline_sender {
 public:
  /// Throws std::runtime_error when aforo.ca_file cannot be loaded (startup).
  pipeline_sender(boost::asio::io_context& ioc, const config::sidecar_config& cfg, const config::secrets& sec,
                  pipeline_metrics& metrics);

  /// Compresses (the effective encoding, see effective_compression) and posts `body` to
  /// aforo.ingest_url; `done` runs exactly once, later, on the io thread (with outcome network_error
  /// when the client was shut down). An answer that refuses lz4 sets send_report::encoding_refused.
  void send(const std::string& body, std::function<void(send_report)> done);

  /// POSTs `body` uncompressed with the auth headers to aforo.ingest_url on the same connection,
  /// counting nothing: the startup handshake's key check (handshake_service.hpp).
  void probe(std::string body, io::http_client::completion done);

  /// Compresses batches on `t` (not owned; it must outlive the sends) instead of the io thread.
  void use_thread(io::ingest_thread* t) { thread_ = t; }

  /// The startup handshake's encoding check (batch.compression lz4 only): POSTs `{"events":[]}` as
  /// an LZ4 frame with Content-Encoding: lz4 on the probe's connection; a refusal of the encoding
  /// falls back to uncompressed at once (one WARN), before any batch goes out. Counts nothing else.
  void probe_compression();

  /// batch.compression and batch.compression_retry apply live.
  void set_compression(config::compression c, std::chrono::milliseconds retry_interval);

  /// What batches go out as now: "lz4", or "none" (configured, or fallen back after ingest refused lz4).
  [[nodiscard]] const char* effective_compression() const noexcept;
  /// batch.compression as configured: "lz4" | "none".
  [[nodiscard]] const char* configured_compression() const noexcept;

  /// Aborts the requests in flight and closes the connections.
  void shutdown();

  /// Connections opened so far (each kept alive for reuse), for tests and the handshake.
  [[nodiscard]] std::uint64_t connections_opened() const;

 private:
  /// Posts `body` (already compressed when `compressed`) with the auth headers on connection `slot`.
  void post(std::size_t slot, std::string body, bool compressed, std::function<void(send_report)> done);
  /// What an answer to an lz4 request says about the encoding: true when ingest refused it (the
  /// fallback is applied and logged here, once per change).
  bool judge_encoding(const io::client_result& r);
  void publish_compression();
  /// An idle connection of the pool, reserved (a new one when every connection is busy).
  std::size_t reserve();

  boost::asio::io_context& ioc_;
  io::client_options client_options_;
  std::vector<std::unique_ptr<io::http_client>> clients_;
  std::vector<bool> busy_;
  io::http_client probe_client_;
  pipeline_metrics& metrics_;
  std::string url_;
  std::vector<std::pair<std::string, std::string>> auth_headers_;
  config::compression codec_;         // batch.compression
  core::encoding_fallback fallback_;  // with lz4: whether ingest takes it
  std::string wire_;                  // reused compression buffer (io thread only)
  io::ingest_thread* thread_ = nullptr;
  bool shut_ = false;
};

/// Parses a Retry-After value in seconds ("120"); nothing for dates or garbage.
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(std::string_view v);

}  // namespace aforo::app
