// The fake ingest's HTTP(S) transport: a small Beast server that, unlike the daemon's http_server,
// can misbehave on purpose: drop a connection without answering, refuse connections by closing its
// listening socket and reopen it on the same port, and serve TLS with a given certificate.
// Each request reaches the router with an added header X-Fake-Connection: <connection number>.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "io/http/router.hpp"

namespace aforo::fake {

/// A handler answering this status makes the server close the connection without writing anything.
inline constexpr int drop_connection_status = 0;
inline constexpr const char* connection_header = "X-Fake-Connection";

struct fake_server_options {
  std::string listen = "127.0.0.1:0";  ///< HOST:PORT, port 0 picks a free one
  std::string tls_cert;                ///< PEM certificate chain; with tls_key, serve HTTPS
  std::string tls_key;                 ///< PEM private key
};

/// Threading: everything runs on the io_context's single thread.
class fake_server {
 public:
  /// Binds at once; throws std::runtime_error on a bad address, bind failure or unreadable cert/key.
  fake_server(boost::asio::io_context& ioc, const io::router& routes, const fake_server_options& opts);
  ~fake_server();
  fake_server(const fake_server&) = delete;
  fake_server& operator=(const fake_server&) = delete;

  /// "http://127.0.0.1:PORT" or "https://...".
  [[nodiscard]] std::string url() const;
  void start();

  /// on: closes the listening socket and every connection except `spare` (the one asking), so new
  /// connections are refused. off: listens again on the same port. Returns false if rebinding failed.
  bool set_refusing(bool on, std::uint64_t spare);
  [[nodiscard]] bool refusing() const { return refusing_; }

  [[nodiscard]] std::uint64_t connections_accepted() const { return accepted_; }
  [[nodiscard]] std::size_t open_connections() const { return closers_.size(); }

 private:
  void open_acceptor();
  void accept_next();
  void on_accept(boost::asio::ip::tcp::socket sock);

  boost::asio::io_context& ioc_;
  const io::router& routes_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  bool refusing_ = false;
  std::uint64_t accepted_ = 0;
  std::map<std::uint64_t, std::function<void()>> closers_;  // open connections by number
};

}  // namespace aforo::fake
