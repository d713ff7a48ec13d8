// The startup handshake with Aforo ingest (is the API key accepted?) and the ingest state that
// /v1/handshake and /readyz report (ingest_status, built by the daemon graph): the handshake's probes
// and the pipeline's deliveries both feed it, and it writes the user-facing lines (`handshake ok`,
// `ERROR invalid API key (401)`...).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "app/service.hpp"
#include "core/pipeline/handshake.hpp"
#include "io/http/http_client.hpp"
#include "util/lifetime.hpp"

namespace aforo::app {

// The state and the probe's verdicts are core's (core/pipeline/handshake.hpp).
using core::ingest_state;
using core::judge_probe;
using core::probe_verdict;
using core::to_string;

/// The text after "ERROR " for a request that got no HTTP answer: "network timeout to <host>",
/// "TLS failure to <host>: <reason>" or "ingest unreachable at <host>: <reason>".
[[nodiscard]] std::string describe_unreachable(io::client_result::error_kind kind, const std::string& host,
                                               const std::string& message);

/// "invalid API key (401)" (or 403).
[[nodiscard]] std::string describe_unauthorized(int status);

/// The ingest state, owned here only (core::ingest_state_tracker decides). Deliveries and probes
/// report what they saw; this writes the lines: ERROR on a change of problem (401 on every report:
/// the callers report it at most once per retry.unauthorized_probe). Threading: io thread only.
class ingest_status {
 public:
  explicit ingest_status(std::string tenant_id) : tenant_(std::move(tenant_id)) {}

  [[nodiscard]] ingest_state state() const noexcept { return tracker_.state(); }
  /// The key was accepted at least once (by a probe or a delivered batch) since start.
  [[nodiscard]] bool confirmed() const noexcept { return tracker_.confirmed(); }

  /// Ingest at `host` accepted the key. The first time logs `handshake ok (ingest <host>, tenant <id>)`.
  void accepted(const std::string& host);
  /// Ingest refused the key with 401/403: logs `ERROR invalid API key (<status>)`.
  void unauthorized(int status);
  /// No HTTP answer: logs the describe_unreachable line when it differs from the last one.
  void unreachable(io::client_result::error_kind kind, const std::string& host, const std::string& message);

 private:
  std::string tenant_;
  core::ingest_state_tracker tracker_;
};

/// Sends one request to the ingest origin with the auth headers (the pipeline's kept-alive
/// connection); the handshake posts its probe through it.
using ingest_probe_fn = std::function<void(std::string body, io::http_client::completion done)>;

/// The startup handshake and POST /v1/test-event. At start it POSTs `{"events":[]}` to
/// aforo.ingest_url: no side effect (no event), and Aforo authenticates before it validates, so the
/// answer tells whether the key is accepted (see judge_probe). Once the key is accepted it posts the
/// same empty batch as an LZ4 frame (batch.compression lz4): a refusal of the encoding makes the
/// pipeline fall back to uncompressed before its first batch (pipeline_sender::probe_compression). Until the key is
/// confirmed (by a probe or by a delivered batch) it probes again with backoff: when is core::handshake_reprobe's, this
/// service performs its steps with a timer and the probe function. /v1/handshake "ingest" and
/// /readyz "ingest" come from the ingest_status it is given. /readyz stays ready whatever the ingest state:
/// decisions do not need ingest and events wait in the spool, so taking Kong's sidecar out of
/// service for a bad key would only lose traffic; the state is in the body for the operator.
class handshake_service final : public service {
 public:
  /// `status`: the ingest state this reports and its probes feed (the pipeline's deliveries feed it
  /// too); not owned, it outlives this. `probe`: how probes are sent (none = no startup handshake).
  /// `encoding_probe`: checks that ingest takes the configured encoding (an empty lz4 batch); called
  /// once, when the probe has confirmed the key, so that a refusal of lz4 is known before the
  /// first batch. Both probes must stay usable until this service is stopped.
  handshake_service(context& ctx, ingest_status& status, ingest_probe_fn probe, std::function<void()> encoding_probe);
  ~handshake_service() override;

  void register_routes(io::router& routes) override;
  void start() override;
  void stop(std::function<void()> done) override;
  void readiness(status_report& r) const override;
  void handshake_fields(std::map<std::string, std::string>& fields) const override;

 private:
  void perform(const core::handshake_step& step);
  void on_probe(const io::client_result& r);

  context& ctx_;
  ingest_status& status_;
  ingest_probe_fn probe_;
  std::function<void()> encoding_probe_;
  boost::asio::steady_timer timer_;
  std::unique_ptr<io::http_client> test_client_;  // POST /v1/test-event
  core::handshake_reprobe reprobe_;
  bool stopping_ = false;
  util::lifetime alive_;
};

}  // namespace aforo::app
