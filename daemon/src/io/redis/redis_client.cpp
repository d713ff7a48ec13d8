// Asynchronous Redis client: the connection (TCP, TLS over TCP or a unix socket) is driven by Asio;
// hiredis is only the codec (io/redis/redis_codec), so TLS needs no hiredis_ssl (Debian 12 ships
// hiredis 0.14 without it). Commands queued FIFO with one deadline timer, reconnect with backoff.
#include "io/redis/redis_client.hpp"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <stdexcept>
#include <variant>

#include "io/http/tls_context.hpp"
#include "io/redis/redis_codec.hpp"
#include "io/redis/redis_tls.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::io {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

const char* to_string(redis_error e) {
  switch (e) {
    case redis_error::none:
      return "none";
    case redis_error::not_connected:
      return "not_connected";
    case redis_error::timeout:
      return "timeout";
    case redis_error::connection_lost:
      return "connection_lost";
  }
  return "unknown";
}

namespace {

using tcp = asio::ip::tcp;
using tls_stream = redis_tls_stream;

// One connection: its transport, the reply parser and the bytes waiting to be written. Kept alive by
// the handlers of its operations in flight; the client drops it (closing the socket) when it fails.
struct redis_conn {
  std::shared_ptr<asio::ssl::context> tls_ctx;  // outlives the stream's SSL object
  std::variant<tcp::socket, asio::local::stream_protocol::socket, tls_stream> io;
  redis_reply_parser replies;
  std::array<char, 16 * 1024> in{};
  std::string out;      // encoded commands not handed to a write yet
  std::string writing;  // the bytes of the write in flight
  bool write_busy = false;

  redis_conn(asio::io_context& ioc, const redis_endpoint& ep, std::shared_ptr<asio::ssl::context> ctx)
      : tls_ctx(std::move(ctx)), io(std::in_place_type<tcp::socket>, ioc) {
    if (!ep.unix_path.empty()) {
      io.emplace<asio::local::stream_protocol::socket>(ioc);
    } else if (ep.tls) {
      io.emplace<tls_stream>(ioc, *tls_ctx);
    }
  }
  ~redis_conn() = default;
  redis_conn(const redis_conn&) = delete;
  redis_conn& operator=(const redis_conn&) = delete;

  tcp::socket& tcp_socket() {
    if (auto* s = std::get_if<tls_stream>(&io)) return s->next_layer();
    return std::get<tcp::socket>(io);
  }

  template <class Handler>
  void read_some(Handler&& h) {
    std::visit([&](auto& s) { s.async_read_some(asio::buffer(in), std::forward<Handler>(h)); }, io);
  }

  template <class Handler>
  void write(Handler&& h) {
    std::visit([&](auto& s) { asio::async_write(s, asio::buffer(writing), std::forward<Handler>(h)); }, io);
  }

  // Closes the socket: operations in flight complete with operation_aborted. No TLS close_notify:
  // the connection is abandoned, not ended politely.
  void shutdown() {
    boost::system::error_code ignored;
    std::visit([&](auto& s) { s.lowest_layer().close(ignored); }, io);
  }
};

}  // namespace

struct redis_client::impl : std::enable_shared_from_this<impl> {
  enum class phase { idle, resolving, connecting, tls_handshaking, handshaking, ready, backoff };

  struct pending {
    redis_callback cb;
    clock_type::time_point deadline;
    bool internal = false;  // the connection's own AUTH/SELECT/PING: handled inline
  };

  asio::io_context& ioc;
  redis_client_options opt;
  std::shared_ptr<asio::ssl::context> tls_ctx;  // rediss:// only
  core::entitlements::redis_link link;
  phase ph = phase::idle;
  std::shared_ptr<redis_conn> conn;   // the current connection attempt or connection
  asio::steady_timer retry_timer;     // connect timeout, then backoff
  asio::steady_timer deadline_timer;  // the oldest command's deadline
  tcp::resolver resolver;
  std::uint64_t retry_gen = 0, deadline_gen = 0;
  bool deadline_armed = false;
  std::deque<pending> queue;  // FIFO, as Redis answers
  std::size_t handshake_left = 0;
  bool closing = false;  // failing the queue of a connection being dropped
  bool destroying = false;
  std::function<void(bool)> state_fn;
  util::gauge_metric& up_gauge;
  util::counter_metric& connects;

  impl(asio::io_context& io, redis_client_options o)
      : ioc(io),
        opt(std::move(o)),
        tls_ctx(make_tls_context(opt)),
        link(opt.backoff_initial, opt.backoff_max),
        retry_timer(io),
        deadline_timer(io),
        resolver(io),
        up_gauge(util::metrics().gauge("aforo_sidecar_redis_up", "1 when the Redis edge cache answers, else 0")),
        connects(util::metrics().counter("aforo_sidecar_redis_connects_total", "Connections established to Redis")) {}

  static std::shared_ptr<asio::ssl::context> make_tls_context(const redis_client_options& o) {
    if (!o.endpoint.tls) return nullptr;
    try {
      return make_client_tls_context(o.tls_ca_file, ca_trust::file_or_system);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("cache.redis_ca_file: ") + e.what());
    }
  }

  static util::counter_metric& error_counter(std::string_view kind) {
    return util::metrics().counter(
        "aforo_sidecar_redis_errors_total",
        "Redis commands that failed, by kind (not_connected, timeout, connection_lost, reply)",
        "kind=\"" + std::string(kind) + "\"");
  }

  std::string where() const {
    return opt.endpoint.unix_path.empty() ? opt.endpoint.host + ":" + std::to_string(opt.endpoint.port)
                                          : "unix:" + opt.endpoint.unix_path;
  }

  const std::string& server_name() const {
    return opt.tls_server_name.empty() ? opt.endpoint.host : opt.tls_server_name;
  }

  // ---- connecting -------------------------------------------------------------------------

  void arm_retry(std::chrono::milliseconds after, void (impl::*fn)()) {
    const auto gen = ++retry_gen;
    retry_timer.expires_after(after);
    retry_timer.async_wait([w = weak_from_this(), gen, fn](const boost::system::error_code& ec) {
      auto self = w.lock();
      if (ec || !self || gen != self->retry_gen) return;
      ((*self).*fn)();
    });
  }

  void connect() {
    if (destroying) return;
    arm_retry(opt.connect_timeout, &impl::connect_timed_out);
    auto c = std::make_shared<redis_conn>(ioc, opt.endpoint, tls_ctx);
    conn = c;
    if (!c->replies.usable()) {
      close(redis_error::connection_lost, "out of memory");
      return;
    }
    if (!opt.endpoint.unix_path.empty()) {
      ph = phase::connecting;
      std::get<asio::local::stream_protocol::socket>(c->io).async_connect(
          asio::local::stream_protocol::endpoint(opt.endpoint.unix_path),
          [w = weak_from_this(), c](const boost::system::error_code& ec) {
            if (auto self = w.lock(); self && self->conn == c) self->transport_connected(c, ec);
          });
      return;
    }
    ph = phase::resolving;
    resolver.async_resolve(
        opt.endpoint.host, std::to_string(opt.endpoint.port),
        [w = weak_from_this(), c](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
          auto self = w.lock();
          if (!self || self->conn != c || self->ph != phase::resolving) return;
          if (ec || results.empty()) {
            self->close(redis_error::connection_lost,
                        "cannot resolve " + self->opt.endpoint.host + ": " + ec.message());
            return;
          }
          self->ph = phase::connecting;
          asio::async_connect(c->tcp_socket(), results,
                              [w, c](const boost::system::error_code& cec, const tcp::endpoint&) {
                                auto s = w.lock();
                                if (s && s->conn == c) s->transport_connected(c, cec);
                              });
        });
  }

  void connect_timed_out() {
    if (conn && ph != phase::ready && ph != phase::idle && ph != phase::backoff) {
      close(redis_error::timeout, "connect to " + where() + " timed out");
    }
  }

  void transport_connected(const std::shared_ptr<redis_conn>& c, const boost::system::error_code& ec) {
    if (ph != phase::connecting) return;
    if (ec) {
      close(redis_error::connection_lost, "cannot connect to " + where() + ": " + ec.message());
      return;
    }
    if (opt.endpoint.unix_path.empty()) {
      boost::system::error_code ignored;
      c->tcp_socket().set_option(tcp::no_delay(true), ignored);
    }
    auto* tls = std::get_if<tls_stream>(&c->io);
    if (tls == nullptr) {
      session(c);
      return;
    }
    ph = phase::tls_handshaking;
    if (const auto error = prepare_redis_tls(*tls, server_name()); !error.empty()) {
      close(redis_error::connection_lost, "TLS setup for " + where() + " failed: " + error);
      return;
    }
    tls->async_handshake(
        asio::ssl::stream_base::client, [w = weak_from_this(), c](const boost::system::error_code& hec) {
          auto self = w.lock();
          if (!self || self->conn != c || self->ph != phase::tls_handshaking) return;
          if (hec) {
            self->close(redis_error::connection_lost, redis_tls_failure(std::get<tls_stream>(c->io), hec, self->where(),
                                                                        self->server_name(), self->opt.tls_ca_file));
            return;
          }
          self->session(c);
        });
  }

  // The transport is up: read replies from now on, and send AUTH / SELECT / PING.
  void session(const std::shared_ptr<redis_conn>& c) {
    read(c);
    handshake();
  }

  void handshake() {
    ph = phase::handshaking;
    std::vector<std::vector<std::string>> cmds;
    if (!opt.endpoint.password.empty()) {
      if (opt.endpoint.user.empty()) {
        cmds.push_back({"AUTH", opt.endpoint.password});
      } else {
        cmds.push_back({"AUTH", opt.endpoint.user, opt.endpoint.password});
      }
    }
    if (opt.endpoint.db != 0) cmds.push_back({"SELECT", std::to_string(opt.endpoint.db)});
    cmds.push_back({"PING"});  // connected means Redis answers, not just that the port accepted
    handshake_left = cmds.size();
    for (auto& c : cmds) {
      std::string what = c[0];
      send(
          std::move(c),
          [this, what](redis_result r) {
            // Once one step failed and the connection is closing, the rest fail too: keep the first cause
            // (e.g. "AUTH failed: WRONGPASS ..."), not "PING failed: connection_lost".
            if (ph != phase::handshaking || closing) return;
            if (!r.ok_reply()) {
              const std::string why = !r.ok() ? to_string(r.error) : r.reply.str;
              close(redis_error::connection_lost, what + " failed: " + why);
              return;
            }
            if (--handshake_left == 0) became_ready();
          },
          true);
    }
  }

  void became_ready() {
    ph = phase::ready;
    ++retry_gen;  // the connect timeout no longer applies
    retry_timer.cancel();
    connects.inc();
    up_gauge.set(1);
    if (link.on_connected()) {
      util::log::info("redis connected (" + where() + (opt.endpoint.tls ? ", TLS" : "") + ")");
      notify(true);
    }
  }

  // ---- reading and writing ----------------------------------------------------------------

  void read(const std::shared_ptr<redis_conn>& c) {
    c->read_some([w = weak_from_this(), c](const boost::system::error_code& ec, std::size_t n) {
      auto self = w.lock();
      if (!self || self->conn != c) return;
      if (ec) {
        const bool closed = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
        self->close(redis_error::connection_lost, closed
                                                      ? std::string("Redis closed the connection")
                                                      : "reading from " + self->where() + " failed: " + ec.message());
        return;
      }
      if (!c->replies.feed(c->in.data(), n)) {
        self->close(redis_error::connection_lost, "protocol error: " + c->replies.error());
        return;
      }
      for (;;) {
        redis_value value;
        const auto step = c->replies.next(value);
        if (step == redis_reply_parser::step::error) {
          self->close(redis_error::connection_lost, "protocol error: " + c->replies.error());
          return;
        }
        if (step == redis_reply_parser::step::need_more) break;
        if (self->queue.empty()) {
          self->close(redis_error::connection_lost, "protocol error: a reply to no command");
          return;
        }
        pending p = std::move(self->queue.front());
        self->queue.pop_front();
        self->finish(std::move(p), redis_result{redis_error::none, std::move(value)});
        if (self->conn != c) return;  // a handshake step failed and dropped the connection
      }
      self->read(c);
    });
  }

  void write(const std::shared_ptr<redis_conn>& c) {
    c->writing.clear();
    std::swap(c->writing, c->out);
    c->write_busy = true;
    c->write([w = weak_from_this(), c](const boost::system::error_code& ec, std::size_t) {
      c->write_busy = false;
      auto self = w.lock();
      if (!self || self->conn != c) return;
      if (ec) {
        self->close(redis_error::connection_lost, "writing to " + self->where() + " failed: " + ec.message());
        return;
      }
      if (!c->out.empty()) self->write(c);
    });
  }

  // ---- failing ----------------------------------------------------------------------------

  // Drops the connection (or the attempt): every command in flight fails with `why`, then Redis is
  // unavailable for `reason` unless the client is stopping.
  void close(redis_error why, const std::string& reason) {
    if (auto c = std::move(conn)) c->shutdown();
    resolver.cancel();
    ++deadline_gen;
    deadline_armed = false;
    deadline_timer.cancel();
    closing = true;
    fail_queue(why);
    closing = false;
    if (destroying || ph == phase::idle) return;
    failure(reason.empty() ? std::string("connection closed") : reason);
  }

  void failure(const std::string& reason) {
    const bool was_up = ph == phase::ready;
    ph = phase::backoff;
    up_gauge.set(0);
    const auto a = link.on_failure();
    if (a.log) util::log::warn("redis unavailable: " + reason + "; answering from the in-memory cache");
    if (was_up) notify(false);
    arm_retry(a.retry_in, &impl::connect);
  }

  void fail_queue(redis_error e) {
    while (!queue.empty()) {
      pending p = std::move(queue.front());
      queue.pop_front();
      finish(std::move(p), redis_result{e, {}});
    }
  }

  void notify(bool up) {
    if (!state_fn) return;
    asio::post(ioc, [w = weak_from_this(), up] {
      if (auto self = w.lock(); self && self->state_fn) self->state_fn(up);
    });
  }

  // ---- commands ---------------------------------------------------------------------------

  void send(std::vector<std::string> args, redis_callback cb, bool internal = false) {
    if (!conn || (ph != phase::ready && !internal)) {
      error_counter("not_connected").inc();
      asio::post(ioc, [cb = std::move(cb)] { cb(redis_result{redis_error::not_connected, {}}); });
      return;
    }
    if (!append_redis_command(conn->out, args)) {
      error_counter("not_connected").inc();
      asio::post(ioc, [cb = std::move(cb)] { cb(redis_result{redis_error::not_connected, {}}); });
      return;
    }
    queue.push_back(pending{std::move(cb), clock_type::now() + opt.command_timeout, internal});
    if (!deadline_armed) arm_deadline(queue.back().deadline);
    if (!conn->write_busy) write(conn);
  }

  void arm_deadline(clock_type::time_point at) {
    deadline_armed = true;
    const auto gen = ++deadline_gen;
    deadline_timer.expires_at(at);
    deadline_timer.async_wait([w = weak_from_this(), gen](const boost::system::error_code& ec) {
      auto self = w.lock();
      if (ec || !self || gen != self->deadline_gen) return;
      self->deadline_armed = false;
      self->check_deadline();
    });
  }

  void check_deadline() {
    if (queue.empty() || !conn) return;
    if (queue.front().deadline <= clock_type::now()) {
      close(redis_error::timeout,
            "no reply within " + std::to_string(opt.command_timeout.count()) + " ms (cache.redis_timeout)");
      return;
    }
    arm_deadline(queue.front().deadline);
  }

  void finish(pending p, redis_result r) {
    if (!r.ok()) {
      error_counter(to_string(r.error)).inc();
    } else if (r.reply.is_error()) {
      error_counter("reply").inc();
    }
    if (p.internal) {
      p.cb(std::move(r));
      return;
    }
    asio::post(ioc, [cb = std::move(p.cb), r = std::move(r)]() mutable { cb(std::move(r)); });
  }
};

redis_client::redis_client(asio::io_context& ioc, redis_client_options options)
    : impl_(std::make_shared<impl>(ioc, std::move(options))) {}

redis_client::~redis_client() {
  auto& m = *impl_;
  m.destroying = true;
  m.ph = impl::phase::idle;
  m.queue.clear();  // dropped without being called
  if (m.conn) m.conn->shutdown();
  m.conn.reset();
  m.retry_timer.cancel();
  m.deadline_timer.cancel();
  m.resolver.cancel();
}

void redis_client::start() {
  if (impl_->ph != impl::phase::idle) return;
  impl_->connect();
}

void redis_client::stop() {
  auto& m = *impl_;
  m.ph = impl::phase::idle;
  ++m.retry_gen;
  m.retry_timer.cancel();
  m.resolver.cancel();
  if (m.conn) m.close(redis_error::connection_lost, "stopped");
  m.up_gauge.set(0);
}

void redis_client::command(std::vector<std::string> args, redis_callback cb) {
  impl_->send(std::move(args), std::move(cb));
}

bool redis_client::connected() const { return impl_->ph == impl::phase::ready; }

core::entitlements::redis_link_state redis_client::state() const { return impl_->link.state(); }

void redis_client::on_state_change(std::function<void(bool up)> fn) { impl_->state_fn = std::move(fn); }

}  // namespace aforo::io
