// Outbound HTTP/1.1 client (Boost.Beast, OpenSSL) for Aforo's ingest and control plane: http:// and
// https:// URLs, certificate and hostname verification, SNI, one kept-alive connection per origin,
// connect and whole-request timeouts. Errors are values in client_result, never exceptions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace aforo::io {

struct client_options {
  /// Extra PEM CA bundle trusted besides the system store (config aforo.ca_file); empty = none.
  std::string ca_file;
  /// Verify the server certificate chain and host name (on unless a test says otherwise).
  bool verify_peer = true;
  /// TCP connect (DNS included) bound, milliseconds (config aforo.connect_timeout).
  std::chrono::milliseconds connect_timeout{5000};
  /// Default bound on one request from its start (queueing and connect included) to the last
  /// response byte, milliseconds (config retry.timeout).
  std::chrono::milliseconds request_timeout{10000};
  /// Sent as User-Agent unless the request sets its own; empty = no header.
  std::string user_agent;
  /// Response bodies over this many bytes fail with error_kind::protocol.
  std::size_t max_response_body = 8 * 1024 * 1024;
};

struct client_request {
  std::string method = "GET";
  std::string url;                                           ///< absolute http:// or https:// URL
  std::vector<std::pair<std::string, std::string>> headers;  ///< may carry secrets: never logged
  std::string body;
  /// Overrides client_options::request_timeout for this request when non-zero.
  std::chrono::milliseconds timeout{0};
};

struct client_result {
  enum class error_kind {
    none,             ///< a response was received (any status)
    invalid_url,      ///< not an absolute http(s) URL
    dns,              ///< the host name did not resolve
    connect_refused,  ///< every address refused the connection
    connect_timeout,  ///< no TCP connection within connect_timeout
    connect_failed,   ///< other connect error (unreachable network, ...)
    tls,              ///< TLS handshake failed: untrusted certificate, wrong host name, protocol
    timeout,          ///< connected, but the response was not complete within the request timeout
    closed,           ///< the server closed the connection before answering (after one retry)
    protocol,         ///< malformed or oversized response
    aborted,          ///< the client was shut down
  };

  error_kind error = error_kind::none;
  std::string error_message;  ///< human readable, safe to log (no headers, no body)
  std::string host;           ///< the URL's host, for log lines such as "network timeout to <host>"
  int status = 0;             ///< HTTP status when error == none
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool reused_connection = false;  ///< answered on a kept-alive connection

  [[nodiscard]] bool ok() const { return error == error_kind::none; }
  /// First response header with this name (case-insensitive), or empty.
  [[nodiscard]] std::string_view header(std::string_view name) const;
};

/// Short stable name of an error kind ("timeout", "tls", ...), for logs and metric labels.
[[nodiscard]] std::string_view to_string(client_result::error_kind k);

/// Threading: construct, call and destroy on the io_context's thread only (the daemon runs one io
/// thread). Completion handlers run on that thread, never inline inside async_request.
/// Requests to one origin (scheme, host, port) share one kept-alive connection and are sent one at a
/// time in call order; different origins proceed in parallel.
class http_client {
 public:
  /// Throws std::runtime_error when ca_file cannot be loaded (startup only).
  http_client(boost::asio::io_context& ioc, client_options opts);
  /// Shuts down: while the io_context keeps running, pending handlers complete with
  /// error_kind::aborted, so whatever they capture must outlive this object or be reference-counted.
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  using completion = std::function<void(client_result)>;

  /// Sends the request; `done` is called exactly once with the response or an error value.
  /// A request on a kept-alive connection that fails before any response byte is retried once on
  /// a fresh connection (the server closed the idle connection); other failures are not retried.
  void async_request(client_request req, completion done);

  /// Closes every connection and completes queued requests with error_kind::aborted.
  void shutdown();

  /// TCP connections opened since construction (tests assert keep-alive reuse with it).
  [[nodiscard]] std::uint64_t connections_opened() const;

  struct origin_worker;
  struct shared_state;

 private:
  std::shared_ptr<shared_state> state_;
  std::map<std::string, std::shared_ptr<origin_worker>> workers_;  // by "scheme://host:port"
};

}  // namespace aforo::io
