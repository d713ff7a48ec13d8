// Internal to the HTTP server (http_server.cpp and http_session.hpp, which it alone includes): the
// server's metrics, the socket and timer types bound to the io_context's executor, a listener, and the
// state the server and its sessions share.
#pragma once

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/backoff.hpp"
#include "io/http/http_server.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::io {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using unix_proto = asio::local::stream_protocol;
using error_code = boost::system::error_code;

struct server_metrics {
  util::counter_metric& requests =
      util::metrics().counter("aforo_sidecar_http_requests_total", "HTTP requests read by the sidecar's server");
  util::counter_metric& bad_requests = util::metrics().counter(
      "aforo_sidecar_http_rejected_total", "HTTP requests rejected before routing", R"(reason="malformed")");
  util::counter_metric& too_large = util::metrics().counter(
      "aforo_sidecar_http_rejected_total", "HTTP requests rejected before routing", R"(reason="body_too_large")");
  util::counter_metric& header_too_large = util::metrics().counter(
      "aforo_sidecar_http_rejected_total", "HTTP requests rejected before routing", R"(reason="header_too_large")");
  util::counter_metric& unsafe_header =
      util::metrics().counter("aforo_sidecar_http_unsafe_header_dropped_total",
                              "Response header values dropped because they held control characters");
  util::gauge_metric& connections =
      util::metrics().gauge("aforo_sidecar_http_connections", "Open connections to the sidecar's server");
  util::counter_metric& accepted =
      util::metrics().counter("aforo_sidecar_http_connections_total", "Connections accepted by the sidecar's server");
  util::counter_metric& refused =
      util::metrics().counter("aforo_sidecar_http_connections_refused_total",
                              "Connections accepted past server.max_connections and closed at once with a 503");
  util::counter_metric& accept_errors = util::metrics().counter(
      "aforo_sidecar_http_accept_errors_total",
      "Failed accepts (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...); the listener backs off 10ms doubling to 1s");
};

inline server_metrics& smetrics() {
  static server_metrics m;
  return m;
}

// Every socket, acceptor and timer names the io_context's executor type rather than any_io_executor,
// which would copy and destroy a type-erased executor in every operation.
using executor = asio::io_context::executor_type;
template <class Protocol>
using acceptor_of = asio::basic_socket_acceptor<Protocol, executor>;
template <class Protocol>
using socket_of = asio::basic_stream_socket<Protocol, executor>;
using deadline_clock = std::chrono::steady_clock;
using timer_type = asio::basic_waitable_timer<deadline_clock, asio::wait_traits<deadline_clock>, executor>;

// After a failed accept the listener waits before trying again, doubling from the first to the last
// (core::backoff; a full fd table would otherwise make accept fail at once, in a hot loop); a
// success resets it.
constexpr std::chrono::milliseconds first_accept_backoff{10};
constexpr std::chrono::milliseconds last_accept_backoff{1000};
// Accept errors are logged at most once per this interval, with the count since the last line.
constexpr std::chrono::seconds accept_log_interval{10};

/// One bound socket and the timer of its accept backoff.
template <class Protocol>
struct listener {
  acceptor_of<Protocol> acceptor;
  timer_type retry;
  core::backoff backoff{core::backoff_policy::exponential(first_accept_backoff, last_accept_backoff)};

  explicit listener(asio::io_context& ioc) : acceptor(ioc.get_executor()), retry(ioc.get_executor()) {}
  void close() {
    error_code ec;
    acceptor.close(ec);
    retry.cancel();
  }
};

class session_base {
 public:
  virtual ~session_base() = default;
  virtual void shutdown_if_idle() = 0;
};

struct http_server::state : std::enable_shared_from_this<http_server::state> {
  asio::io_context& ioc;
  const router& routes;
  server_limits limits;
  bool stopping = false;
  std::function<void()> on_drained;
  // The open sessions: each adds itself when it starts and removes itself when it is destroyed, so a
  // finished connection leaves nothing behind.
  std::list<session_base*> sessions;
  std::vector<std::unique_ptr<listener<tcp>>> tcp_listeners;
  std::vector<std::unique_ptr<listener<unix_proto>>> unix_listeners;
  std::vector<std::string> unix_paths;
  // Accept errors not logged yet, and when the last line was logged.
  std::uint64_t unlogged_accept_errors = 0;
  std::optional<deadline_clock::time_point> accept_logged_at;

  state(asio::io_context& io, const router& r, server_limits l) : ioc(io), routes(r), limits(l) {}

  std::list<session_base*>::iterator session_opened(session_base* s) {
    smetrics().connections.add(1);
    smetrics().accepted.inc();
    return sessions.insert(sessions.end(), s);
  }
  void session_closed(std::list<session_base*>::iterator at) {
    sessions.erase(at);
    smetrics().connections.add(-1);
    notify_if_drained();
  }
  /// Once stopping with no connection left, posts on_drained (once).
  void notify_if_drained() {
    if (stopping && on_drained && sessions.empty()) {
      auto cb = std::move(on_drained);
      on_drained = nullptr;
      asio::post(ioc, std::move(cb));
    }
  }
  void close_listeners() {
    for (auto& l : tcp_listeners) l->close();
    for (auto& l : unix_listeners) l->close();
  }

  /// Counts a failed accept and logs it, at most once per accept_log_interval.
  void accept_failed(const error_code& ec, std::chrono::milliseconds retry_in) {
    smetrics().accept_errors.inc();
    ++unlogged_accept_errors;
    const auto now = deadline_clock::now();
    if (accept_logged_at && now - *accept_logged_at < accept_log_interval) return;
    std::string line = "accept failed: " + ec.message();
    if (unlogged_accept_errors > 1) {
      line += " (" + std::to_string(unlogged_accept_errors) + " failed accepts since the last such line)";
    }
    if (retry_in.count() > 0) line += "; next accept in " + std::to_string(retry_in.count()) + "ms";
    util::log::warn(line);
    unlogged_accept_errors = 0;
    accept_logged_at = now;
  }
};

}  // namespace aforo::io
