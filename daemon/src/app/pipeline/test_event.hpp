// "Send a Test Event": one synthetic event straight to Aforo's /v1/ingest/test, for
// `aforo-sidecar test-event` and POST /v1/test-event, reporting exactly what ingest answered.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/secrets.hpp"
#include "io/http/http_client.hpp"
#include "io/http/http_types.hpp"

namespace aforo::app {

/// Aforo's test endpoint for an ingest URL: a path ending in `/batch` gets that last segment replaced
/// by `test` (`https://ingest.aforo.ai/v1/ingest/batch` -> `https://ingest.aforo.ai/v1/ingest/test`);
/// any other path is replaced by `/v1/ingest/test` on the same origin. The query is dropped.
[[nodiscard]] std::string test_event_url(std::string_view ingest_url);

/// The synthetic event: customerId "aforo-test", metricName "api_calls", quantity 1, occurredAt
/// `now` (UTC, ms), idempotencyKey "test:<id>", metadata {gateway:"kong", test:true}.
[[nodiscard]] std::string test_event_body(std::chrono::system_clock::time_point now, std::string_view id);

/// A random 32-hex-digit id.
[[nodiscard]] std::string random_test_id();

/// Replaces every occurrence of `secret` in `text` by config::redact(secret) (last 4 characters).
[[nodiscard]] std::string redact_in(std::string text, const std::string& secret);

/// What the test event ended with.
struct test_event_result {
  std::string url;
  std::string event_body;  ///< what was sent
  bool answered = false;   ///< ingest answered with an HTTP status
  int status = 0;          ///< when answered
  std::string body;        ///< ingest's answer (API key redacted), when answered
  std::string error_code;  ///< "" when accepted; "unauthorized", "rejected", "network_timeout", "tls_failure",
                           ///< "ingest_unreachable"
  std::string cause;       ///< the log text: "invalid API key (401)", "network timeout to <host>", ...
  [[nodiscard]] bool accepted() const { return answered && status >= 200 && status < 300; }
};

/// Builds the result from the client's answer (pure; the API key is redacted from the body).
[[nodiscard]] test_event_result judge_test_event(std::string url, std::string event_body, const io::client_result& r,
                                                 const std::string& api_key);

/// Sends the test event with `client` (uncompressed JSON, the auth headers, retry.timeout);
/// `done` runs once on the io thread.
void send_test_event(io::http_client& client, const config::sidecar_config& cfg, const config::secrets& sec,
                     std::function<void(test_event_result)> done);

/// POST /v1/test-event's answer: 200 when ingest accepted the event, else 502; the body is
/// `{"ingest_status":N|null,"ingest_body":<JSON or string>|null,"url":"...","event":{...}}` plus
/// `"error":{"code","message"}` when not accepted.
[[nodiscard]] io::http_response test_event_response(const test_event_result& r);

/// `aforo-sidecar test-event`: sends the event, prints the URL, ingest's status and body to stdout
/// and the ERROR cause to stderr. Returns 0 when ingest answered 2xx, 1 otherwise.
int run_test_event_command(const config::sidecar_config& cfg, const config::secrets& sec);

}  // namespace aforo::app
