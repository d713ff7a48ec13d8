// The fake ingest's transport; see fake_server.hpp. One coroutine per connection.
#include "fake_server.hpp"

#include <optional>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace aforo::fake {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_body = 64 * 1024 * 1024;

tcp::endpoint parse_endpoint(const std::string& addr) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("bad listen address (HOST:PORT): " + addr);
  std::string host = addr.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("bad listen address: " + addr);
  return {ip, static_cast<unsigned short>(std::stoul(addr.substr(colon + 1)))};
}

// Waits for a handler that may answer later (delays): respond() fills the slot and wakes the session.
struct answer_slot {
  explicit answer_slot(asio::any_io_executor ex) : wake(ex, asio::steady_timer::time_point::max()) {}
  std::optional<io::http_response> response;
  asio::steady_timer wake;
};

template <class Stream>
asio::awaitable<void> serve(Stream& stream, const io::router& routes, std::uint64_t id) {
  beast::flat_buffer buffer;
  auto& lowest = beast::get_lowest_layer(stream);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(max_body);
    lowest.expires_after(std::chrono::minutes(5));
    auto [rec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) co_return;
    auto in = parser.release();
    io::http_request req;
    req.method = std::string(in.method_string());
    req.target = std::string(in.target());
    for (const auto& f : in) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.headers.emplace_back(connection_header, std::to_string(id));
    req.body = std::move(in.body());

    auto slot = std::make_shared<answer_slot>(co_await asio::this_coro::executor);
    routes.dispatch(req, [slot](io::http_response r) {
      slot->response = std::move(r);
      slot->wake.cancel();
    });
    if (!slot->response) co_await slot->wake.async_wait(use_tuple);
    if (!slot->response) co_return;  // the server is going away
    auto& r = *slot->response;
    if (r.status == drop_connection_status) co_return;

    http::response<http::string_body> out{static_cast<http::status>(r.status), in.version()};
    out.set(http::field::server, "aforo-fake-ingest");
    if (!r.content_type.empty()) out.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) out.set(k, v);
    out.body() = std::move(r.body);
    out.keep_alive(in.keep_alive() && !r.close);
    out.prepare_payload();
    lowest.expires_after(std::chrono::seconds(30));
    auto [wec, w] = co_await http::async_write(stream, out, use_tuple);
    if (wec || !out.keep_alive()) co_return;
  }
}

}  // namespace

fake_server::fake_server(asio::io_context& ioc, const io::router& routes, const fake_server_options& opts)
    : ioc_(ioc), routes_(routes), endpoint_(parse_endpoint(opts.listen)) {
  if (!opts.tls_cert.empty() || !opts.tls_key.empty()) {
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    error_code ec;
    tls_->use_certificate_chain_file(opts.tls_cert, ec);
    if (ec) throw std::runtime_error("cannot load --tls-cert " + opts.tls_cert + ": " + ec.message());
    tls_->use_private_key_file(opts.tls_key, asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("cannot load --tls-key " + opts.tls_key + ": " + ec.message());
  }
  open_acceptor();
  endpoint_ = acceptor_->local_endpoint();  // the real port when 0 was asked
}

fake_server::~fake_server() {
  if (acceptor_) acceptor_->close();
  auto closers = closers_;
  for (auto& [id, close] : closers) close();
}

std::string fake_server::url() const {
  const auto a = endpoint_.address();
  const std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(endpoint_.port());
}

void fake_server::open_acceptor() {
  auto acc = std::make_shared<tcp::acceptor>(ioc_);
  acc->open(endpoint_.protocol());
  acc->set_option(tcp::acceptor::reuse_address(true));
  acc->bind(endpoint_);
  acc->listen();
  acceptor_ = std::move(acc);
}

void fake_server::start() { accept_next(); }

void fake_server::accept_next() {
  auto acc = acceptor_;
  acc->async_accept([this, acc](error_code ec, tcp::socket sock) {
    if (!acc->is_open() || acc != acceptor_) return;  // refusing: this acceptor was closed
    if (!ec) on_accept(std::move(sock));
    accept_next();
  });
}

void fake_server::on_accept(tcp::socket sock) {
  const std::uint64_t id = ++accepted_;
  if (!tls_) {
    auto stream = std::make_shared<beast::tcp_stream>(std::move(sock));
    closers_[id] = [stream] { beast::close_socket(*stream); };
    asio::co_spawn(ioc_, serve(*stream, routes_, id),
                   [this, id, stream](const std::exception_ptr&) { closers_.erase(id); });
    return;
  }
  auto stream = std::make_shared<beast::ssl_stream<beast::tcp_stream>>(std::move(sock), *tls_);
  closers_[id] = [stream] { beast::close_socket(beast::get_lowest_layer(*stream)); };
  auto run = [](std::shared_ptr<beast::ssl_stream<beast::tcp_stream>> s, const io::router& routes,
                std::uint64_t conn) -> asio::awaitable<void> {
    beast::get_lowest_layer(*s).expires_after(std::chrono::seconds(10));
    auto [ec] = co_await s->async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) co_return;  // e.g. the client rejected our certificate
    co_await serve(*s, routes, conn);
  };
  asio::co_spawn(ioc_, run(stream, routes_, id), [this, id, stream](const std::exception_ptr&) { closers_.erase(id); });
}

bool fake_server::set_refusing(bool on, std::uint64_t spare) {
  if (on == refusing_) return true;
  if (on) {
    refusing_ = true;
    error_code ec;
    acceptor_->close(ec);
    acceptor_.reset();
    auto closers = closers_;
    for (auto& [id, close] : closers) {
      if (id != spare) close();
    }
    return true;
  }
  try {
    open_acceptor();
  } catch (const std::exception&) {
    return false;
  }
  refusing_ = false;
  accept_next();
  return true;
}

}  // namespace aforo::fake
