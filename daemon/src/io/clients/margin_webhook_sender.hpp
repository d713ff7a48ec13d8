// Sends the margin guard's level-change webhooks in the background: signed with HMAC-SHA256 over
// "<timestamp>.<body>", retried with backoff, never on the request path.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "core/margin/margin_guard.hpp"
#include "core/margin/webhook_retry.hpp"
#include "util/lifetime.hpp"

namespace boost::asio {
class io_context;
}

namespace aforo::io {
class http_client;
}

namespace aforo::util {
class counter_metric;
}

namespace aforo::io {

/// Lowercase hex of HMAC-SHA256(secret, text) (OpenSSL). Thread-safe.
[[nodiscard]] std::string hmac_sha256_hex(std::string_view secret, std::string_view text);

/// POSTs one JSON body per (change, notify URL) with headers Content-Type: application/json,
/// X-Aforo-Timestamp: <unix s>, X-Aforo-Signature: sha256=<hex HMAC-SHA256 of "<ts>.<body>">
/// (omitted when no secret is configured; a warning is logged at start). When to send again and
/// when to give up is core::margin::webhook_retry's (up to 4 attempts, 1 s, 2 s, 4 s apart, on a
/// network error, 408, 429 or 5xx; other statuses fail at once); each attempt is re-stamped and
/// re-signed. Outcomes are counted in aforo_sidecar_margin_webhooks_total
/// {result="sent|failed|claimed_elsewhere"} (one per change and URL; claimed_elsewhere: left to
/// the sidecar of the cluster that claimed the change, see skip); a failure is logged with the
/// URL's host only.
/// Threading: io thread only; everything runs as completions on the io_context.
class margin_webhook_sender {
 public:
  margin_webhook_sender(boost::asio::io_context& ioc, std::string secret, std::string ca_file);
  ~margin_webhook_sender();

  /// Queues the change for every URL in change.notify; returns at once.
  void send(const core::margin::level_change& change);

  /// Counts the change's webhooks as claimed_elsewhere (another sidecar sends them); sends nothing.
  void skip(const core::margin::level_change& change);

  /// Replaces the signing secret (config reload).
  void set_secret(std::string secret) { secret_ = std::move(secret); }

  /// Cancels retries and in-flight requests (daemon stop).
  void shutdown();

  /// Webhooks not finished yet (attempts in flight or waiting to retry).
  [[nodiscard]] std::size_t in_flight() const { return in_flight_; }

 private:
  struct delivery;
  void perform(const std::shared_ptr<delivery>& d, const core::margin::webhook_step& step, const std::string& why);
  void attempt(const std::shared_ptr<delivery>& d);
  void finish(const std::shared_ptr<delivery>& d, bool sent, const std::string& why);

  boost::asio::io_context& ioc_;
  std::string secret_;
  std::unique_ptr<io::http_client> client_;
  util::counter_metric& sent_;
  util::counter_metric& failed_;
  util::counter_metric& claimed_elsewhere_;
  std::size_t in_flight_ = 0;
  std::set<std::shared_ptr<delivery>> live_;  // waiting for a retry timer
  util::lifetime alive_;
  bool stopped_ = false;
};

}  // namespace aforo::io
