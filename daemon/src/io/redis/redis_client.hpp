// Asynchronous Redis client on the daemon's io_context: the connection (TCP, TLS or a unix socket) is
// driven by Asio (never blocking the loop), hiredis only encodes commands and parses replies;
// pipelined commands with a per-command timeout, and a connection that reconnects with exponential
// backoff. Errors are values in redis_result.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/redis_link.hpp"
#include "io/redis/redis_url.hpp"

namespace boost::asio {
class io_context;
}

namespace aforo::io {

/// A reply as Redis sent it.
struct redis_value {
  enum class kind : std::uint8_t { nil, integer, string, status, error, array };
  kind type = kind::nil;
  std::int64_t integer = 0;
  std::string str;                    ///< string, status or error text
  std::vector<redis_value> elements;  ///< array items

  [[nodiscard]] bool is_error() const { return type == kind::error; }
  [[nodiscard]] bool is_nil() const { return type == kind::nil; }
};

/// Why a command has no reply.
enum class redis_error : std::uint8_t {
  none,             ///< `reply` holds Redis's answer (which may itself be an error reply)
  not_connected,    ///< not sent: Redis is unavailable (the command certainly did not run)
  timeout,          ///< sent, no reply within the command timeout (it may have run)
  connection_lost,  ///< sent, the connection dropped before the reply (it may have run)
};

[[nodiscard]] const char* to_string(redis_error e);

struct redis_result {
  redis_error error = redis_error::none;
  redis_value reply;
  [[nodiscard]] bool ok() const { return error == redis_error::none; }
  /// Transport success and not an error reply.
  [[nodiscard]] bool ok_reply() const { return ok() && !reply.is_error(); }
};

/// Called exactly once per command, on the io thread, never from inside command().
using redis_callback = std::function<void(redis_result)>;

struct redis_client_options {
  redis_endpoint endpoint;
  /// With endpoint.tls: the PEM CA bundle the server certificate must chain to (cache.redis_ca_file);
  /// empty = the system trust store. An unreadable file makes the constructor throw.
  std::string tls_ca_file;
  /// With endpoint.tls: the name sent as SNI and checked against the certificate
  /// (cache.redis_tls_server_name); empty = endpoint.host (an IP literal is checked as an IP SAN).
  std::string tls_server_name;
  std::chrono::milliseconds command_timeout{250};   ///< cache.redis_timeout; also bounds AUTH/SELECT
  std::chrono::milliseconds connect_timeout{1000};  ///< DNS + TCP connect + TLS + AUTH/SELECT/PING
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
};

/// One connection to Redis, owned by the io thread; every member must be called on it.
///
/// States: connecting -> connected -> unavailable -> (backoff) -> connecting ... A failed
/// connect, a dropped connection or a command timeout makes Redis unavailable: every command in
/// flight fails (timeout / connection_lost), new ones fail at once with not_connected, and a
/// reconnect is tried after 100 ms, 200 ms, ... up to 5 s. One log line per state change
/// ("redis connected", "redis unavailable: <reason>; answering from the in-memory cache").
/// With TLS a certificate that does not verify (unknown CA, wrong name, expired) is a failed connect
/// like any other, its reason naming the certificate problem.
/// Metrics: aforo_sidecar_redis_up, aforo_sidecar_redis_errors_total{kind}, aforo_sidecar_redis_connects_total.
/// A command timeout drops the connection because Redis answers in order: later replies cannot
/// arrive before the late one, so waiting on the same connection would only stall them.
class redis_client {
 public:
  /// Throws std::runtime_error when options.tls_ca_file cannot be loaded (startup only).
  redis_client(boost::asio::io_context& ioc, redis_client_options options);
  /// Frees the connection; callbacks still pending are dropped without being called.
  ~redis_client();
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  /// Starts connecting (idempotent).
  void start();
  /// Disconnects for good: pending commands fail with connection_lost, no reconnect.
  void stop();

  /// Sends a command (each argument one bulk string, binary safe). Pipelined with the others.
  void command(std::vector<std::string> args, redis_callback cb);

  [[nodiscard]] bool connected() const;
  [[nodiscard]] core::entitlements::redis_link_state state() const;
  /// Called on the io thread after every state change (true = connected).
  void on_state_change(std::function<void(bool up)> fn);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace aforo::io
