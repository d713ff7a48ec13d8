// Outbound HTTP/1.1 client; see http_client.hpp. One C++20 coroutine per origin drains that origin's
// queue over its kept-alive connection; every I/O step carries the request deadline through
// beast::tcp_stream's expiry, so no operation can hang.
#include "io/http/http_client.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "io/http/tls_context.hpp"
#include "util/log.hpp"

namespace aforo::io {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using kind = client_result::error_kind;
using steady = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct parsed_url {
  bool tls = false;
  std::string host;  // without brackets
  std::string port;
  std::string host_header;  // as sent in Host:
  std::string target;       // path and query
  std::string origin_key;
};

std::optional<parsed_url> parse_url(std::string_view text, std::string& err) {
  auto r = boost::urls::parse_absolute_uri(text);
  if (!r) {
    err = "invalid URL: " + r.error().message();
    return std::nullopt;
  }
  parsed_url u;
  if (r->scheme_id() == boost::urls::scheme::https) {
    u.tls = true;
  } else if (r->scheme_id() != boost::urls::scheme::http) {
    err = "unsupported URL scheme: " + std::string(r->scheme());
    return std::nullopt;
  }
  const bool v6 = r->host_type() == boost::urls::host_type::ipv6;
  u.host = v6 ? r->host_ipv6_address().to_string() : std::string(r->host());
  if (u.host.empty()) {
    err = "URL has no host";
    return std::nullopt;
  }
  u.port = r->has_port() && !r->port().empty() ? std::string(r->port()) : (u.tls ? "443" : "80");
  u.host_header = v6 ? "[" + u.host + "]" : u.host;
  if (r->has_port() && !r->port().empty()) u.host_header += ":" + u.port;
  u.target = r->encoded_path().empty() ? "/" : std::string(r->encoded_path());
  if (r->has_query()) u.target += "?" + std::string(r->encoded_query());
  u.origin_key = std::string(u.tls ? "https://" : "http://") + u.host_header + "|" + u.port;
  return u;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

client_result failure(kind k, std::string message) {
  client_result r;
  r.error = k;
  r.error_message = std::move(message);
  return r;
}

}  // namespace

std::string_view to_string(client_result::error_kind k) {
  switch (k) {
    case kind::none:
      return "none";
    case kind::invalid_url:
      return "invalid_url";
    case kind::dns:
      return "dns";
    case kind::connect_refused:
      return "connect_refused";
    case kind::connect_timeout:
      return "connect_timeout";
    case kind::connect_failed:
      return "connect_failed";
    case kind::tls:
      return "tls";
    case kind::timeout:
      return "timeout";
    case kind::closed:
      return "closed";
    case kind::protocol:
      return "protocol";
    case kind::aborted:
      return "aborted";
  }
  return "unknown";
}

std::string_view client_result::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

struct http_client::shared_state {
  asio::io_context& ioc;
  client_options opts;
  std::shared_ptr<asio::ssl::context> tls;
  std::uint64_t connections_opened = 0;
  bool shut_down = false;
};

struct http_client::origin_worker : std::enable_shared_from_this<origin_worker> {
  struct pending {
    http::request<http::string_body> req;
    completion done;
    steady::time_point deadline;
  };

  std::shared_ptr<shared_state> st;
  bool tls = false;
  std::string host;
  std::string port;
  std::deque<pending> queue;
  bool running = false;
  std::shared_ptr<tcp::resolver> resolver;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  [[nodiscard]] bool connected() const { return plain || secure; }
  beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }

  // Only called between operations (never with one pending on the stream being destroyed).
  void disconnect() {
    if (connected()) {
      error_code ec;
      lowest().socket().close(ec);
    }
    plain.reset();
    secure.reset();
    buffer.clear();
  }

  // Makes the pending operation, if any, complete with operation_aborted.
  void cancel() {
    if (resolver) resolver->cancel();
    if (connected()) {
      error_code ec;
      lowest().socket().close(ec);
    }
  }

  void start() {
    if (running) return;
    running = true;
    asio::co_spawn(st->ioc, run(shared_from_this()), [](const std::exception_ptr& e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        util::log::error(std::string("http client: unexpected exception: ") + ex.what());
      }
    });
  }

  static asio::awaitable<void> run(std::shared_ptr<origin_worker> self) {
    while (!self->queue.empty()) {
      pending p = std::move(self->queue.front());
      self->queue.pop_front();
      // No co_await inside ?: here: GCC 12 destroys such temporaries twice.
      client_result r;
      if (self->st->shut_down)
        r = failure(kind::aborted, "client shut down");
      else
        r = co_await self->perform(p);
      if (r.error == kind::aborted || self->st->shut_down) self->disconnect();
      r.host = self->host;
      p.done(std::move(r));
    }
    self->running = false;
  }

  asio::awaitable<client_result> perform(pending& p) {
    bool reused = connected();
    for (int attempt = 0;; ++attempt) {
      if (!connected()) {
        client_result err = co_await connect(p.deadline);
        if (!err.ok()) co_return err;
        reused = false;
      }
      bool before_response = false;
      bool keep_alive = false;
      client_result r;
      if (plain)
        r = co_await exchange(*plain, p, before_response, keep_alive);
      else
        r = co_await exchange(*secure, p, before_response, keep_alive);
      if (r.ok()) {
        r.reused_connection = reused;
        if (!keep_alive) disconnect();
        co_return r;
      }
      disconnect();
      // A kept-alive connection the server had already closed: one fresh attempt.
      if (reused && before_response && attempt == 0 && steady::now() < p.deadline && !st->shut_down) {
        reused = false;
        continue;
      }
      co_return r;
    }
  }

  asio::awaitable<client_result> connect(steady::time_point deadline) {
    const auto& opts = st->opts;
    const auto connect_deadline = std::min(deadline, steady::now() + opts.connect_timeout);
    resolver = std::make_shared<tcp::resolver>(st->ioc);
    auto timer = std::make_shared<asio::steady_timer>(st->ioc, connect_deadline);
    auto timed_out = std::make_shared<bool>(false);
    timer->async_wait([r = resolver, timed_out](error_code ec) {
      if (!ec) {
        *timed_out = true;
        r->cancel();
      }
    });
    auto [rec, endpoints] = co_await resolver->async_resolve(host, port, use_tuple);
    timer->cancel();
    resolver.reset();
    if (st->shut_down) co_return failure(kind::aborted, "client shut down");
    if (*timed_out) co_return failure(kind::connect_timeout, "resolving " + host + " timed out");
    if (rec) co_return failure(kind::dns, "cannot resolve " + host + ": " + rec.message());

    plain = std::make_unique<beast::tcp_stream>(st->ioc);
    plain->expires_at(connect_deadline);
    auto [cec, ep] = co_await plain->async_connect(endpoints, use_tuple);
    if (cec) {
      disconnect();
      if (st->shut_down) co_return failure(kind::aborted, "client shut down");
      if (cec == beast::error::timeout) co_return failure(kind::connect_timeout, "connect to " + host + " timed out");
      if (cec == asio::error::connection_refused)
        co_return failure(kind::connect_refused, "connection refused by " + host + ":" + port);
      co_return failure(kind::connect_failed, "cannot connect to " + host + ":" + port + ": " + cec.message());
    }
    ++st->connections_opened;
    error_code ignored;
    plain->socket().set_option(tcp::no_delay(true), ignored);
    if (!tls) co_return client_result{};

    secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*plain), *st->tls);
    plain.reset();
    if (!is_ip_literal(host)) {  // SNI; the macro SSL_set_tlsext_host_name expands to this call
      SSL_ctrl(secure->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(host.c_str()));
    }
    if (opts.verify_peer) {
      secure->set_verify_mode(asio::ssl::verify_peer, ignored);
      secure->set_verify_callback(asio::ssl::host_name_verification(host), ignored);
    } else {
      secure->set_verify_mode(asio::ssl::verify_none, ignored);
    }
    beast::get_lowest_layer(*secure).expires_at(deadline);
    auto [hec] = co_await secure->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (hec) {
      const long verify = SSL_get_verify_result(secure->native_handle());
      disconnect();
      if (st->shut_down) co_return failure(kind::aborted, "client shut down");
      if (hec == beast::error::timeout) co_return failure(kind::timeout, "TLS handshake with " + host + " timed out");
      std::string msg = "TLS handshake with " + host + " failed: ";
      msg += verify != X509_V_OK ? X509_verify_cert_error_string(verify) : hec.message();
      co_return failure(kind::tls, std::move(msg));
    }
    co_return client_result{};
  }

  template <class Stream>
  asio::awaitable<client_result> exchange(Stream& stream, pending& p, bool& before_response, bool& keep_alive) {
    lowest().expires_at(p.deadline);
    auto [wec, written] = co_await http::async_write(stream, p.req, use_tuple);
    if (wec) {
      if (st->shut_down) co_return failure(kind::aborted, "client shut down");
      if (wec == beast::error::timeout) co_return failure(kind::timeout, "request to " + host + " timed out");
      before_response = true;
      co_return failure(kind::closed, "connection to " + host + " lost while sending: " + wec.message());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(st->opts.max_response_body);
    if (p.req.method() == http::verb::head) parser.skip(true);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) {
      if (st->shut_down) co_return failure(kind::aborted, "client shut down");
      if (rec == beast::error::timeout) co_return failure(kind::timeout, "request to " + host + " timed out");
      if (!parser.got_some()) {
        before_response = true;
        co_return failure(kind::closed, "connection closed by " + host + " before a response");
      }
      if (rec == http::error::body_limit || rec.category() == http::make_error_code(http::error::bad_method).category())
        co_return failure(kind::protocol, "bad response from " + host + ": " + rec.message());
      co_return failure(kind::closed, "connection to " + host + " lost during the response: " + rec.message());
    }
    auto res = parser.release();
    client_result r;
    r.status = static_cast<int>(res.result_int());
    for (const auto& f : res) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.body = std::move(res.body());
    keep_alive = res.keep_alive();
    co_return r;
  }
};

http_client::http_client(asio::io_context& ioc, client_options opts)
    : state_(std::make_shared<shared_state>(shared_state{ioc, std::move(opts), nullptr, 0, false})) {
  state_->tls = make_client_tls_context(state_->opts.ca_file);
}

http_client::~http_client() { shutdown(); }

void http_client::async_request(client_request req, completion done) {
  std::string err;
  auto url = parse_url(req.url, err);
  if (!url || state_->shut_down) {
    client_result r = url ? failure(kind::aborted, "client shut down") : failure(kind::invalid_url, err);
    asio::post(state_->ioc, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    return;
  }
  auto& w = workers_[url->origin_key];
  if (!w) {
    w = std::make_shared<origin_worker>();
    w->st = state_;
    w->tls = url->tls;
    w->host = url->host;
    w->port = url->port;
  }
  origin_worker::pending p;
  const auto verb = http::string_to_verb(req.method);
  p.req.version(11);
  if (verb == http::verb::unknown)
    p.req.method_string(req.method);
  else
    p.req.method(verb);
  p.req.target(url->target);
  p.req.set(http::field::host, url->host_header);
  if (!state_->opts.user_agent.empty()) p.req.set(http::field::user_agent, state_->opts.user_agent);
  for (auto& [k, v] : req.headers) p.req.set(k, v);
  p.req.keep_alive(true);
  p.req.body() = std::move(req.body);
  if (!p.req.body().empty() || verb == http::verb::post || verb == http::verb::put) p.req.prepare_payload();
  const auto timeout = req.timeout.count() > 0 ? req.timeout : state_->opts.request_timeout;
  p.deadline = steady::now() + timeout;
  p.done = std::move(done);
  w->queue.push_back(std::move(p));
  w->start();
}

void http_client::shutdown() {
  state_->shut_down = true;
  for (auto& [key, w] : workers_) {
    w->cancel();
    if (!w->running) w->disconnect();
  }
}

std::uint64_t http_client::connections_opened() const { return state_->connections_opened; }

}  // namespace aforo::io
