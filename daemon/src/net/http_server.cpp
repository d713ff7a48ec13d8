// Beast listener and session (the shape of Beast's async server examples), one template for TCP and
// unix sockets. Errors are error_code values; nothing here throws after startup.
#include "net/http_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <optional>
#include <stdexcept>
#include <variant>

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
};

server_metrics& smetrics() {
  static server_metrics m;
  return m;
}

bool safe_header_value(std::string_view v) {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

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
  std::list<std::weak_ptr<session_base>> sessions;
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_acceptors;
  std::vector<std::unique_ptr<unix_proto::acceptor>> unix_acceptors;
  std::vector<std::string> unix_paths;

  state(asio::io_context& io, const router& r, server_limits l) : ioc(io), routes(r), limits(l) {}

  void session_closed() {
    smetrics().connections.add(-1);
    if (stopping && on_drained && open() == 0) {
      auto cb = std::move(on_drained);
      on_drained = nullptr;
      asio::post(ioc, std::move(cb));
    }
  }
  std::size_t open() {
    sessions.remove_if([](const std::weak_ptr<session_base>& w) { return w.expired(); });
    return sessions.size();
  }
};

namespace {

template <class Protocol>
class session : public session_base, public std::enable_shared_from_this<session<Protocol>> {
 public:
  using stream_type = beast::basic_stream<Protocol, asio::any_io_executor, beast::unlimited_rate_policy>;

  session(typename Protocol::socket&& socket, std::shared_ptr<http_server::state> st)
      : stream_(std::move(socket)), state_(std::move(st)) {}

  ~session() override { state_->session_closed(); }

  void run() {
    smetrics().connections.add(1);
    smetrics().accepted.inc();
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->do_read(); });
  }

  void shutdown_if_idle() override {
    if (!busy_) {
      error_code ec;
      stream_.socket().shutdown(Protocol::socket::shutdown_both, ec);
      stream_.cancel();
    }
  }

 private:
  void do_read() {
    if (state_->stopping) return close();
    parser_.emplace();
    parser_->body_limit(state_->limits.max_body);
    parser_->header_limit(static_cast<std::uint32_t>(state_->limits.max_header));
    stream_.expires_after(state_->limits.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (ec) return on_read_error(ec);
    busy_ = true;
    const auto& h = parser_->get();
    const auto expect = h[http::field::expect];
    if (!expect.empty() && beast::iequals(expect, "100-continue")) {
      // Answer "100 Continue" so clients that wait for it (curl with large bodies) send the body at once.
      if (h.has_content_length() && *parser_->content_length() > state_->limits.max_body) {
        smetrics().too_large.inc();
        return send_error(413, "payload_too_large", "request body exceeds the limit of " +
                                                         std::to_string(state_->limits.max_body) + " bytes");
      }
      continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, h.version());
      stream_.expires_after(state_->limits.read_timeout);
      http::async_write(stream_, *continue_, [self = this->shared_from_this()](error_code wec, std::size_t) {
        if (wec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_read(error_code{});
    stream_.expires_after(state_->limits.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
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

  void on_read(error_code ec) {
    if (ec) return on_read_error(ec);
    smetrics().requests.inc();
    auto msg = parser_->release();
    parser_.reset();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();

    http_request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.headers.reserve(8);
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());

    state_->routes.dispatch(req, [self = this->shared_from_this()](http_response r) {
      auto ex = self->stream_.get_executor();
      asio::dispatch(ex, [self = std::move(self), r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
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
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "aforo-sidecar/" AFORO_VERSION);
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) {
      if (!safe_header_value(v) || !safe_header_value(k)) {
        smetrics().unsafe_header.inc();
        continue;
      }
      res->insert(k, v);
    }
    res->body() = std::move(r.body);
    const bool keep = keep_alive_ && !r.close && !state_->stopping;
    res->keep_alive(keep);
    res->prepare_payload();
    res_ = res;
    stream_.expires_after(state_->limits.read_timeout);
    http::async_write(stream_, *res_, [self = this->shared_from_this(), keep](error_code ec, std::size_t) {
      self->res_.reset();
      self->busy_ = false;
      if (ec || !keep) return self->close();
      self->do_read();
    });
  }

  void close() {
    error_code ec;
    stream_.socket().shutdown(Protocol::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  stream_type stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> res_;
  std::shared_ptr<http::response<http::empty_body>> continue_;
  std::shared_ptr<http_server::state> state_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool busy_ = false;
};

template <class Acceptor, class Protocol>
void do_accept(Acceptor& acceptor, std::shared_ptr<http_server::state> st) {
  // One io thread runs everything, so sessions need no strand (a strand per connection cost ~20% of
  // the CPU at saturation in bench/check and bench/pipeline).
  acceptor.async_accept(st->ioc,
                        [&acceptor, st](error_code ec, typename Protocol::socket socket) {
                          if (st->stopping || !acceptor.is_open()) return;
                          if (!ec) {
                            auto s = std::make_shared<session<Protocol>>(std::move(socket), st);
                            st->sessions.push_back(s);
                            s->run();
                          } else if (ec != asio::error::operation_aborted) {
                            util::log::warn("accept failed: " + ec.message());
                          }
                          do_accept<Acceptor, Protocol>(acceptor, st);
                        });
}

bool is_loopback(const asio::ip::address& a) { return a.is_loopback(); }

}  // namespace

http_server::http_server(asio::io_context& ioc, const router& routes, server_limits limits)
    : state_(std::make_shared<state>(ioc, routes, limits)) {}

http_server::~http_server() {
  error_code ec;
  for (auto& a : state_->tcp_acceptors) a->close(ec);
  for (auto& a : state_->unix_acceptors) a->close(ec);
  for (const auto& p : state_->unix_paths) ::unlink(p.c_str());
}

std::string http_server::listen(const std::string& address, std::uint32_t socket_mode) {
  error_code ec;
  if (address.rfind("unix:", 0) == 0) {
    const std::string path = address.substr(5);
    if (path.empty()) throw std::runtime_error("listen " + address + ": empty unix socket path");
    ::unlink(path.c_str());
    auto acc = std::make_unique<unix_proto::acceptor>(state_->ioc);
    acc->open(unix_proto(), ec);
    if (!ec) acc->bind(unix_proto::endpoint(path), ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("listen " + address + ": " + ec.message());
    if (::chmod(path.c_str(), static_cast<mode_t>(socket_mode)) != 0)
      throw std::runtime_error("listen " + address + ": cannot set socket permissions");
    state_->unix_acceptors.push_back(std::move(acc));
    state_->unix_paths.push_back(path);
    return "unix:" + path;
  }

  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    throw std::runtime_error("listen " + address + ": expected HOST:PORT or unix:/path");
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = address.substr(colon + 1);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(port_text, &used);
    if (used != port_text.size() || port > 65535) throw std::invalid_argument("port");
  } catch (const std::exception&) {
    throw std::runtime_error("listen " + address + ": bad port '" + port_text + "'");
  }
  const auto ip = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) throw std::runtime_error("listen " + address + ": '" + host + "' is not an IP address");
  if (!is_loopback(ip))
    util::log::warn("listening on " + address +
                    ", which is not a loopback address: anyone who can reach it can ask for decisions and "
                    "submit usage; keep the sidecar on 127.0.0.1 or a unix socket unless a firewall guards it");
  const tcp::endpoint ep(ip, static_cast<unsigned short>(port));
  auto acc = std::make_unique<tcp::acceptor>(state_->ioc);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("listen " + address + ": " + ec.message());
  const auto bound = acc->local_endpoint(ec);
  state_->tcp_acceptors.push_back(std::move(acc));
  std::string out = ip.is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  return out + ":" + std::to_string(bound.port());
}

void http_server::start() {
  for (auto& a : state_->tcp_acceptors) do_accept<tcp::acceptor, tcp>(*a, state_);
  for (auto& a : state_->unix_acceptors) do_accept<unix_proto::acceptor, unix_proto>(*a, state_);
}

void http_server::stop(std::function<void()> on_drained) {
  auto st = state_;
  st->stopping = true;
  st->on_drained = std::move(on_drained);
  error_code ec;
  for (auto& a : st->tcp_acceptors) a->close(ec);
  for (auto& a : st->unix_acceptors) a->close(ec);
  for (const auto& p : st->unix_paths) ::unlink(p.c_str());
  st->unix_paths.clear();
  for (auto& w : st->sessions)
    if (auto s = w.lock()) s->shutdown_if_idle();
  if (st->open() == 0 && st->on_drained) {
    auto cb = std::move(st->on_drained);
    st->on_drained = nullptr;
    asio::post(st->ioc, std::move(cb));
  }
}

void http_server::set_limits(server_limits limits) { state_->limits = limits; }

std::size_t http_server::open_connections() const { return state_->open(); }

}  // namespace aforo::net
