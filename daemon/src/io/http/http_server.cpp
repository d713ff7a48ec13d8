// Listener and session, one template for TCP and unix sockets. Beast's basic_parser reads each
// request straight into the connection's http_request; each response is a Beast message the connection
// reuses (http_wire), serialized by Beast and written at once when the socket takes it. A request whose body is
// already buffered, a response the socket takes whole and a keep-alive turn cost no extra completion,
// timer operation or allocation. Errors are error_code values; nothing here throws after startup.
#include "io/http/http_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <algorithm>
#include <list>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "io/http/http_wire.hpp"
#include "io/http/listen_address.hpp"
#include "io/http/request_parser.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using unix_proto = asio::local::stream_protocol;
using error_code = boost::system::error_code;

namespace {

struct server_metrics {
  util::counter_metric& requests = util::metrics().counter(
      "aforo_sidecar_http_requests_total", "HTTP requests read by the sidecar's server");
  util::counter_metric& bad_requests = util::metrics().counter(
      "aforo_sidecar_http_rejected_total", "HTTP requests rejected before routing", R"(reason="malformed")");
  util::counter_metric& too_large = util::metrics().counter(
      "aforo_sidecar_http_rejected_total", "HTTP requests rejected before routing", R"(reason="body_too_large")");
  util::counter_metric& header_too_large = util::metrics().counter(
      "aforo_sidecar_http_rejected_total", "HTTP requests rejected before routing", R"(reason="header_too_large")");
  util::counter_metric& unsafe_header = util::metrics().counter(
      "aforo_sidecar_http_unsafe_header_dropped_total",
      "Response header values dropped because they held control characters");
  util::gauge_metric& connections = util::metrics().gauge(
      "aforo_sidecar_http_connections", "Open connections to the sidecar's server");
  util::counter_metric& accepted = util::metrics().counter(
      "aforo_sidecar_http_connections_total", "Connections accepted by the sidecar's server");
  util::counter_metric& refused = util::metrics().counter(
      "aforo_sidecar_http_connections_refused_total",
      "Connections accepted past server.max_connections and closed at once with a 503");
  util::counter_metric& accept_errors = util::metrics().counter(
      "aforo_sidecar_http_accept_errors_total",
      "Failed accepts (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...); the listener backs off 10ms doubling to 1s");
};

server_metrics& smetrics() {
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
// (a full fd table would otherwise make accept fail at once, in a hot loop); a success resets it.
constexpr std::chrono::milliseconds first_accept_backoff{10};
constexpr std::chrono::milliseconds last_accept_backoff{1000};
// Accept errors are logged at most once per this interval, with the count since the last line.
constexpr std::chrono::seconds accept_log_interval{10};

/// One bound socket and the timer of its accept backoff.
template <class Protocol>
struct listener {
  acceptor_of<Protocol> acceptor;
  timer_type retry;
  std::chrono::milliseconds backoff{0};  // the next wait after a failed accept; 0 after a success

  explicit listener(asio::io_context& ioc) : acceptor(ioc.get_executor()), retry(ioc.get_executor()) {}
  void close() {
    error_code ec;
    acceptor.close(ec);
    retry.cancel();
  }
};

}  // namespace

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

namespace {

// One connection. Everything runs on the io thread. A request's life: begin_request (fresh parser, read
// deadline) -> process (parse what is buffered, read more) -> serve (route) -> respond -> write; when
// the response goes out at once, process carries on with the next request without a round trip through
// the io_context.
template <class Protocol>
class session : public session_base, public std::enable_shared_from_this<session<Protocol>> {
 public:
  using socket_type = socket_of<Protocol>;

  session(socket_type&& socket, std::shared_ptr<http_server::state> st)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), state_(std::move(st)),
        registered_(state_->session_opened(this)) {}

  ~session() override { state_->session_closed(registered_); }

  void run() {
    // Writes are tried at once (write_some) and fall back to async_write only when the socket is full.
    error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) return close();
    // Each response leaves in one write; Nagle would only hold back a pipelined answer or the one after
    // "100 Continue" until the client's delayed ACK.
    if constexpr (std::is_same_v<Protocol, tcp>) socket_.set_option(tcp::no_delay(true), ec);
    start_request();
  }

  void shutdown_if_idle() override {
    if (!busy_) {
      error_code ec;
      socket_.shutdown(socket_type::shutdown_both, ec);
      socket_.cancel(ec);
    }
  }

 private:
  // Pipelined requests served in a row before yielding to the other connections.
  static constexpr int max_inline_requests = 16;

  void start_request() {
    if (state_->stopping) return close();
    begin_request();
    process();
  }

  void begin_request() {
    parser_.emplace(req_);
    parser_->body_limit(state_->limits.max_body);
    parser_->header_limit(static_cast<std::uint32_t>(state_->limits.max_header));
    busy_ = false;
    header_done_ = false;
    body_deadline_ = false;
    arm(state_->limits.read_timeout);  // the request line and headers, or an idle keep-alive connection
  }

  // Parses what the buffer holds and serves every complete request in it. Returns once a read is
  // pending, or a response is still on its way (its completion calls after_response).
  void process() {
    for (int served = 0;;) {
      if (!parser_->is_done()) {
        if (buffer_.size() == 0) return read_more();
        error_code ec;
        buffer_.consume(parser_->put(buffer_.data(), ec));
        if (ec == http::error::need_more) return read_more();
        if (ec) return on_read_error(ec);
        if (!header_done_ && parser_->is_header_done() && !on_header()) return;
        continue;
      }
      if (!serve()) return;
      if (++served == max_inline_requests) {
        asio::post(socket_.get_executor(), [self = this->shared_from_this()] { self->process(); });
        return;
      }
    }
  }

  void read_more() {
    if (header_done_ && !body_deadline_) {
      // The body gets its own read_timeout from the end of the header, as the header had from its start.
      body_deadline_ = true;
      arm(state_->limits.read_timeout);
    }
    socket_.async_read_some(buffer_.prepare(beast::read_size(buffer_, 65536)),
                            [self = this->shared_from_this()](error_code ec, std::size_t n) {
                              self->on_read_some(ec, n);
                            });
  }

  void on_read_some(error_code ec, std::size_t n) {
    buffer_.commit(n);
    if (timed_out_ && ec != asio::error::eof) return on_read_error(beast::error::timeout);
    if (ec == asio::error::eof) {
      if (!parser_->got_some()) return on_read_error(http::error::end_of_stream);
      parser_->put_eof(ec);  // a request cut short: partial_message
      if (ec) return on_read_error(ec);
    } else if (ec) {
      return on_read_error(ec);
    }
    process();
  }

  // The header is complete. Returns false when it took the connection over (100 Continue, 413).
  bool on_header() {
    header_done_ = true;
    busy_ = true;
    if (!parser_->expects_continue()) return true;
    // Answer "100 Continue" so clients that wait for it (curl with large bodies) send the body at once.
    if (const auto length = parser_->content_length(); length && *length > state_->limits.max_body) {
      smetrics().too_large.inc();
      send_error(413, "payload_too_large",
                 "request body exceeds the limit of " + std::to_string(state_->limits.max_body) + " bytes");
      return false;
    }
    continue_.emplace(http::status::continue_, parser_->http_version());
    arm(state_->limits.read_timeout);
    http::async_write(socket_, *continue_, [self = this->shared_from_this()](error_code ec, std::size_t) {
      if (ec || self->timed_out_) return self->close();
      self->body_deadline_ = true;
      self->arm(self->state_->limits.read_timeout);
      self->process();
    });
    return false;
  }

  void on_read_error(error_code ec) {
    const bool started = parser_ && parser_->got_some();
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
      return close();
    }
    if (ec == beast::error::timeout) {
      if (!started) return close();  // an idle keep-alive connection: not an error
      smetrics().bad_requests.inc();
      return send_error(408, "request_timeout", "the request was not received in time");
    }
    if (ec == http::error::body_limit) {
      smetrics().too_large.inc();
      return send_error(413, "payload_too_large",
                        "request body exceeds the limit of " + std::to_string(state_->limits.max_body) + " bytes");
    }
    if (ec == http::error::header_limit) {
      smetrics().header_too_large.inc();
      return send_error(431, "header_too_large", "request headers exceed the limit of " +
                                                      std::to_string(state_->limits.max_header) + " bytes");
    }
    smetrics().bad_requests.inc();
    if (ec == http::error::partial_message || ec == asio::error::eof)
      return send_error(400, "bad_request", "truncated request");
    return send_error(400, "bad_request", "malformed HTTP request: " + ec.message());
  }

  // A complete request: routes it. Returns true when its response already went out and the next
  // request has begun.
  bool serve() {
    smetrics().requests.inc();
    version_ = parser_->http_version();
    keep_alive_ = parser_->keep_alive();
    disarm();  // read_timeout bounds reads and writes, not the handler's own work
    in_dispatch_ = true;
    sent_in_dispatch_ = false;
    state_->routes.dispatch(req_, [self = this->shared_from_this()](http_response r) { self->respond(std::move(r)); });
    in_dispatch_ = false;
    if (!sent_in_dispatch_) return false;
    if (!sent_keep_alive_) {
      close();
      return false;
    }
    begin_request();
    return true;
  }

  void respond(http_response r) {
    if (state_->ioc.get_executor().running_in_this_thread()) return write(std::move(r));
    asio::post(socket_.get_executor(),
               [self = this->shared_from_this(), r = std::move(r)]() mutable { self->write(std::move(r)); });
  }

  void send_error(int status, std::string_view code, std::string message) {
    busy_ = true;
    keep_alive_ = false;
    version_ = 11;
    auto r = http_response::error(status, code, message);
    r.close = true;
    write(std::move(r));
  }

  void write(http_response r) {
    const bool keep = keep_alive_ && !r.close && !state_->stopping;
    sent_keep_alive_ = keep;
    if (const auto unsafe = prepare_response(res_, std::move(r), version_, keep)) smetrics().unsafe_header.inc(unsafe);
    // The socket is non-blocking: Beast writes what it takes now, and the serializer remembers where it
    // stopped if the send buffer fills.
    serializer_.emplace(res_);
    error_code ec;
    http::write(socket_, *serializer_, ec);
    if (!ec) return sent();
    if (ec != asio::error::would_block && ec != asio::error::try_again) return close();
    // The socket's send buffer is full: the rest goes out asynchronously, under read_timeout.
    arm(state_->limits.read_timeout);
    http::async_write(socket_, *serializer_, [self = this->shared_from_this()](error_code wec, std::size_t) {
                        self->disarm();
                        if (wec || self->timed_out_) return self->close();
                        self->after_response();
                      });
  }

  void sent() {
    if (in_dispatch_) {
      sent_in_dispatch_ = true;  // serve() carries on once the handler returns
      return;
    }
    after_response();
  }

  void after_response() {
    if (!sent_keep_alive_) return close();
    start_request();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    disarm();
    timer_.cancel();
    error_code ec;
    socket_.shutdown(socket_type::shutdown_send, ec);
    socket_.close(ec);
  }

  // Read timeout: the read or write in progress must end by deadline_ (time_point::max(): none, e.g.
  // while a handler works). Setting it costs one clock read; the connection's one timer is re-armed only
  // when it fires before the deadline (at most once per read_timeout), instead of a timer wait started
  // and cancelled around every read and write.
  void arm(std::chrono::milliseconds timeout) {
    timed_out_ = false;
    deadline_ = deadline_clock::now() + timeout;
    if (!timer_waiting_ || deadline_ < timer_.expiry()) wait_timer();  // earlier: a lowered read_timeout
  }

  void disarm() { deadline_ = deadline_clock::time_point::max(); }

  void wait_timer() {
    timer_waiting_ = true;
    timer_.expires_at(deadline_);  // cancels a wait for a later expiry
    timer_.async_wait([weak = this->weak_from_this()](error_code ec) {
      if (auto self = weak.lock()) self->on_timer(ec);
    });
  }

  void on_timer(error_code ec) {
    if (ec == asio::error::operation_aborted) return;  // replaced by an earlier expiry, or closed
    const auto now = deadline_clock::now();
    if (timer_.expiry() > now) return;  // re-armed after this wait completed: that wait is in charge
    timer_waiting_ = false;
    if (closed_ || deadline_ == deadline_clock::time_point::max()) return;
    if (now < deadline_) return wait_timer();
    // Timed out: the pending read or write completes with operation_aborted and sees timed_out_. The
    // socket stays open so a request cut short can still be answered 408.
    timed_out_ = true;
    disarm();
    socket_.cancel(ec);
  }

  socket_type socket_;
  timer_type timer_;
  std::shared_ptr<http_server::state> state_;
  std::list<session_base*>::iterator registered_;  // this session in state_->sessions
  beast::flat_buffer buffer_;
  http_request req_;                      // the request being read or served, reused
  std::optional<request_parser> parser_;  // a fresh parser per request (Beast's cannot be reset)
  beast_response res_;                    // the response being written, reused
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::optional<http::response<http::empty_body>> continue_;
  deadline_clock::time_point deadline_ = deadline_clock::time_point::max();
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool sent_keep_alive_ = true;    // the response written last keeps the connection
  bool busy_ = false;              // a request is past its header: stop() lets it finish
  bool header_done_ = false;
  bool body_deadline_ = false;     // the body's read_timeout has been set
  bool in_dispatch_ = false;
  bool sent_in_dispatch_ = false;  // the handler answered and the response went out before it returned
  bool timer_waiting_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
};

// What a connection past server.max_connections gets before the close: sent with one non-blocking
// write, before the request is read (a client that already sent its request may see a reset instead).
constexpr std::string_view refusal =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "Content-Length: 84\r\n"
    "\r\n"
    R"({"error":{"code":"too_many_connections","message":"server.max_connections reached"}})";
static_assert(refusal.size() - refusal.find("\r\n\r\n") - 4 == 84, "Content-Length");

template <class Protocol>
void refuse(socket_of<Protocol>& socket) {
  smetrics().refused.inc();
  error_code ec;
  socket.non_blocking(true, ec);
  if (!ec) socket.write_some(asio::buffer(refusal.data(), refusal.size()), ec);
  socket.shutdown(socket_of<Protocol>::shutdown_send, ec);
  socket.close(ec);
}

// Errors that concern the one connection being accepted, not the listener: accept again at once.
bool connection_error(const error_code& ec) {
  return ec == asio::error::connection_aborted || ec == asio::error::connection_reset ||
         ec == asio::error::would_block || ec == asio::error::try_again || ec == asio::error::interrupted;
}

template <class Protocol>
void do_accept(listener<Protocol>& l, std::shared_ptr<http_server::state> st) {
  // One io thread runs everything, so sessions need no strand (a strand per connection cost ~20% of
  // the CPU at saturation in bench/check and bench/pipeline).
  l.acceptor.async_accept([&l, st](error_code ec, socket_of<Protocol> socket) {
    if (st->stopping || !l.acceptor.is_open() || ec == asio::error::operation_aborted) return;
    if (!ec) {
      l.backoff = std::chrono::milliseconds{0};
      if (st->sessions.size() >= st->limits.max_connections) {
        refuse(socket);
      } else {
        std::make_shared<session<Protocol>>(std::move(socket), st)->run();
      }
      return do_accept<Protocol>(l, st);
    }
    if (connection_error(ec)) {
      st->accept_failed(ec, std::chrono::milliseconds{0});
      return do_accept<Protocol>(l, st);
    }
    // EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: the pending connection stays in the backlog, so accepting
    // again at once would fail again at once. Wait, longer each time, until a descriptor frees up.
    l.backoff = l.backoff.count() == 0 ? first_accept_backoff : std::min(l.backoff * 2, last_accept_backoff);
    st->accept_failed(ec, l.backoff);
    l.retry.expires_after(l.backoff);
    l.retry.async_wait([&l, st](error_code wec) {
      if (wec || st->stopping || !l.acceptor.is_open()) return;
      do_accept<Protocol>(l, st);
    });
  });
}

}  // namespace

http_server::http_server(asio::io_context& ioc, const router& routes, server_limits limits)
    : state_(std::make_shared<state>(ioc, routes, limits)) {}

http_server::~http_server() {
  state_->close_listeners();
  for (const auto& p : state_->unix_paths) ::unlink(p.c_str());
}

std::string http_server::listen(const std::string& address, std::uint32_t socket_mode) {
  error_code ec;
  const listen_address where = parse_listen_address(address);
  if (!where.unix_path.empty()) {
    const std::string& path = where.unix_path;
    ::unlink(path.c_str());
    auto l = std::make_unique<listener<unix_proto>>(state_->ioc);
    auto& acc = l->acceptor;
    acc.open(unix_proto(), ec);
    if (!ec) acc.bind(unix_proto::endpoint(path), ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("listen " + address + ": " + ec.message());
    if (::chmod(path.c_str(), static_cast<mode_t>(socket_mode)) != 0)
      throw std::runtime_error("listen " + address + ": cannot set socket permissions");
    state_->unix_listeners.push_back(std::move(l));
    state_->unix_paths.push_back(path);
    return "unix:" + path;
  }

  const auto& ip = where.ip;
  if (!ip.is_loopback())
    util::log::warn("listening on " + address +
                    ", which is not a loopback address: anyone who can reach it can ask for decisions and "
                    "submit usage; keep the sidecar on 127.0.0.1 or a unix socket unless a firewall guards it");
  const tcp::endpoint ep(ip, where.port);
  auto l = std::make_unique<listener<tcp>>(state_->ioc);
  auto& acc = l->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("listen " + address + ": " + ec.message());
  const auto bound = acc.local_endpoint(ec);
  state_->tcp_listeners.push_back(std::move(l));
  std::string out = ip.is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  return out + ":" + std::to_string(bound.port());
}

void http_server::start() {
  for (auto& l : state_->tcp_listeners) do_accept<tcp>(*l, state_);
  for (auto& l : state_->unix_listeners) do_accept<unix_proto>(*l, state_);
}

void http_server::stop(std::function<void()> on_drained) {
  auto st = state_;
  st->stopping = true;
  st->on_drained = std::move(on_drained);
  st->close_listeners();
  for (const auto& p : st->unix_paths) ::unlink(p.c_str());
  st->unix_paths.clear();
  // shutdown_if_idle only cancels: no session is destroyed (and leaves the list) during this loop.
  for (auto* s : st->sessions) s->shutdown_if_idle();
  st->notify_if_drained();
}

void http_server::set_limits(server_limits limits) { state_->limits = limits; }

std::size_t http_server::open_connections() const { return state_->sessions.size(); }

}  // namespace aforo::net
