// Listener and session, one template for TCP and unix sockets. Beast's basic_parser reads each
// request straight into the connection's http_request; each response is a Beast message the connection
// reuses (http_wire), serialized by Beast and written at once when the socket takes it. A request whose body is
// already buffered, a response the socket takes whole and a keep-alive turn cost no extra completion,
// timer operation or allocation. Errors are error_code values; nothing here throws after startup.
// The session is in http_session.hpp, what the listeners and the sessions share in http_server_state.hpp.
#include "io/http/http_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <algorithm>
#include <stdexcept>

#include "io/http/http_server_state.hpp"
#include "io/http/http_session.hpp"
#include "io/http/listen_address.hpp"
#include "util/log.hpp"

namespace aforo::io {

namespace {

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
      l.backoff.reset();
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
    const auto wait = l.backoff.next();
    st->accept_failed(ec, wait);
    l.retry.expires_after(wait);
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

}  // namespace aforo::io
