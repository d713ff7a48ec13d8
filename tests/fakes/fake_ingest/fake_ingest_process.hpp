// For integration tests: starts aforo-fake-ingest as a child process, reads its address, and drives
// its /_control API. Header-only; compiled into integration_tests (which defines
// AFORO_FAKE_INGEST_BIN), not into the fake itself.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <rapidjson/document.h>

#include "io/http/http_client.hpp"
#include "support/testkit.hpp"

namespace aforo::fake {

/// Runs io::http_client requests to completion on a private io_context. Keeps the client (and its
/// kept-alive connections) between calls. Tests only; one thread.
class blocking_client {
 public:
  explicit blocking_client(io::client_options opts = {}) : client_(ioc_, std::move(opts)) {}

  io::client_result send(io::client_request req) {
    std::optional<io::client_result> out;
    client_.async_request(std::move(req), [&out](io::client_result r) { out = std::move(r); });
    ioc_.restart();
    while (!out && ioc_.run_one() != 0) {
    }
    if (!out) throw std::logic_error("http client finished without completing the request");
    return std::move(*out);
  }

  io::client_result send(std::string method, std::string url, std::string body = {},
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
    io::client_request req;
    req.method = std::move(method);
    req.url = std::move(url);
    req.body = std::move(body);
    req.headers = std::move(headers);
    return send(std::move(req));
  }

  io::http_client& client() { return client_; }

 private:
  boost::asio::io_context ioc_;
  io::http_client client_;
};

struct fake_ingest_options {
  std::string api_key = "test-key-0001";
  std::string tenant = "tenant-1";
  bool bearer = false;
  std::string tls_cert;  ///< with tls_key: serve HTTPS
  std::string tls_key;
  std::string record;               ///< --record FILE
  bool count_only = false;          ///< --count-only
  std::size_t max_events = 0;       ///< --max-events (0 = the fake's default, Aforo's 1000); more is answered 413
  std::uint32_t rtt_ms = 0;         ///< --rtt-ms: every answer after this round trip
  std::uint32_t jitter_ms = 0;      ///< --jitter-ms
  std::uint32_t max_in_flight = 0;  ///< --max-in-flight: 429 past this many requests in progress
  int refuse_lz4 = 0;               ///< --refuse-lz4 415|400: refuse Content-Encoding: lz4 (0: decode it)
};

/// A running aforo-fake-ingest on 127.0.0.1 and a free port; killed on destruction.
class fake_ingest_process {
 public:
  explicit fake_ingest_process(const fake_ingest_options& o = {}) : control_(control_options()) {
#ifndef AFORO_FAKE_INGEST_BIN
    throw std::runtime_error("aforo-fake-ingest was not built");
#else
    std::vector<std::string> argv{AFORO_FAKE_INGEST_BIN, "--listen", "127.0.0.1:0"};
    auto add = [&argv](const char* flag, const std::string& v) {
      if (v.empty()) return;
      argv.emplace_back(flag);
      argv.push_back(v);
    };
    add("--api-key", o.api_key);
    add("--tenant", o.tenant);
    add("--tls-cert", o.tls_cert);
    add("--tls-key", o.tls_key);
    add("--record", o.record);
    if (o.bearer) add("--auth", "bearer");
    if (o.count_only) argv.emplace_back("--count-only");
    if (o.max_events != 0) add("--max-events", std::to_string(o.max_events));
    if (o.rtt_ms != 0) add("--rtt-ms", std::to_string(o.rtt_ms));
    if (o.jitter_ms != 0) add("--jitter-ms", std::to_string(o.jitter_ms));
    if (o.max_in_flight != 0) add("--max-in-flight", std::to_string(o.max_in_flight));
    if (o.refuse_lz4 != 0) add("--refuse-lz4", std::to_string(o.refuse_lz4));
    proc_ = std::make_unique<testkit::process>(argv);
    static const std::regex re(R"(listening on (https?://127\.0\.0\.1:[0-9]+))");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::smatch m;
    for (;;) {
      const std::string out = proc_->output();
      if (std::regex_search(out, m, re)) {
        base_url_ = m[1].str();
        break;
      }
      if (!proc_->running() || std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("aforo-fake-ingest did not start:\n" + out);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
#endif
  }

  /// "http://127.0.0.1:PORT" (or https).
  [[nodiscard]] const std::string& base_url() const { return base_url_; }
  [[nodiscard]] std::string ingest_url() const { return base_url_ + "/v1/ingest/batch"; }
  [[nodiscard]] testkit::process& proc() { return *proc_; }

  /// A control call on the fake's kept-alive control connection (spared by refuse(true)).
  io::client_result control(std::string method, const std::string& path, std::string body = {}) {
    auto r = control_.send(std::move(method), base_url_ + path, std::move(body));
    if (!r.ok() || r.status != 200)
      throw std::runtime_error("fake ingest control " + path + " failed: " + r.error_message + " " + r.body);
    return r;
  }
  void set_faults(std::string steps_json) { control("POST", "/_control/faults", std::move(steps_json)); }
  void refuse(bool on) { control("POST", "/_control/refuse", on ? R"({"on":true})" : R"({"on":false})"); }
  void reset() { control("POST", "/_control/reset"); }
  /// Refuse lz4 from now on with 415 or 400, or take it again (0).
  void refuse_lz4(int status) {
    control("POST", "/_control/refuse_lz4", R"({"status":)" + std::to_string(status) + "}");
  }
  rapidjson::Document stats() { return parse(control("GET", "/_control/stats").body); }
  rapidjson::Document received() { return parse(control("GET", "/_control/received").body); }

 private:
  static io::client_options control_options() {
    io::client_options o;
    o.verify_peer = false;  // control traffic to our own self-signed test server only
    o.request_timeout = std::chrono::seconds(10);
    return o;
  }
  static rapidjson::Document parse(const std::string& body) {
    rapidjson::Document d;
    d.Parse(body.c_str());
    if (d.HasParseError()) throw std::runtime_error("fake ingest answered malformed JSON: " + body);
    return d;
  }

  std::unique_ptr<testkit::process> proc_;
  std::string base_url_;
  blocking_client control_;
};

}  // namespace aforo::fake
