// Internal to the HTTP server (http_server.cpp alone includes it): one connection, a template for TCP
// and unix sockets; see http_server.cpp for how requests and responses flow.
#pragma once

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
#include <type_traits>

#include "io/http/http_server_state.hpp"
#include "io/http/http_wire.hpp"
#include "io/http/request_parser.hpp"

namespace aforo::io {

namespace beast = boost::beast;
namespace http = beast::http;

// One connection. Everything runs on the io thread. A request's life: begin_request (fresh parser, read
// deadline) -> process (parse what is buffered, read more) -> serve (route) -> respond -> write; when
// the response goes out at once, process carries on with the next request without a round trip through
// the io_context.
template <class Protocol>
class session : public session_base, public std::enable_shared_from_this<session<Protocol>> {
 public:
  using socket_type = socket_of<Protocol>;

  session(socket_type&& socket, std::shared_ptr<http_server::state> st)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        state_(std::move(st)),
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
    socket_.async_read_some(
        buffer_.prepare(beast::read_size(buffer_, 65536)),
        [self = this->shared_from_this()](error_code ec, std::size_t n) { self->on_read_some(ec, n); });
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
      return send_error(431, "header_too_large",
                        "request headers exceed the limit of " + std::to_string(state_->limits.max_header) + " bytes");
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
  bool sent_keep_alive_ = true;  // the response written last keeps the connection
  bool busy_ = false;            // a request is past its header: stop() lets it finish
  bool header_done_ = false;
  bool body_deadline_ = false;  // the body's read_timeout has been set
  bool in_dispatch_ = false;
  bool sent_in_dispatch_ = false;  // the handler answered and the response went out before it returned
  bool timer_waiting_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
};

}  // namespace aforo::io
