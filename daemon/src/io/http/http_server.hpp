// The sidecar's HTTP/1.1 server (Boost.Beast): listeners on TCP and unix sockets, keep-alive
// sessions with a timeout before every read, body and header limits, a connection cap, a backoff on
// accept errors (EMFILE and the like), and a graceful drain.
// Beast stays inside the .cpp files; this header only names the io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/http/router.hpp"

namespace boost::asio {
class io_context;
}

namespace aforo::io {

struct server_limits {
  std::uint64_t max_body = 4 * 1024 * 1024;       ///< bytes; larger bodies get 413 and a close
  std::uint64_t max_header = 16 * 1024;           ///< bytes of request line + headers; larger get 431
  std::chrono::milliseconds read_timeout{30000};  ///< before every read and write, incl. keep-alive idle
  std::size_t max_connections = 1024;             ///< open at once; an accepted connection past it gets 503 and a close
};

/// Threading: every member and every handler runs on the io_context's thread; `respond` may be called
/// from another thread (it is dispatched onto the session's executor).
class http_server {
 public:
  http_server(boost::asio::io_context& ioc, const router& routes, server_limits limits);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds one address: "HOST:PORT", "[V6]:PORT" or "unix:/path" (an existing socket file is replaced
  /// and chmod'ed to socket_mode). Returns the bound address, e.g. "127.0.0.1:41234".
  /// Throws std::runtime_error with a clear message on failure (startup only).
  std::string listen(const std::string& address, std::uint32_t socket_mode);

  /// Starts accepting on every bound listener.
  void start();

  /// Stops accepting, closes idle connections, lets requests in flight finish (their connections close
  /// after the response), then calls on_drained once, on the io thread.
  void stop(std::function<void()> on_drained);

  /// New limits apply to requests read from now on, and max_connections to connections accepted from
  /// now on (SIGHUP reload; connections open past a lowered cap are not closed).
  void set_limits(server_limits limits);

  [[nodiscard]] std::size_t open_connections() const;

  struct state;  ///< implementation detail, shared with the sessions (http_server.cpp)

 private:
  std::shared_ptr<state> state_;
};

}  // namespace aforo::io
