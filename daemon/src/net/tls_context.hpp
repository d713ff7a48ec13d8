// The client TLS context for outbound HTTPS: TLS 1.2 or newer, the system trust store plus an
// optional extra CA bundle (config aforo.ca_file).
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace aforo::net {

/// Builds a client context trusting the system default CA paths and, when ca_file is not empty, the
/// PEM certificates in ca_file too. Verification itself is switched on per connection.
/// Throws std::runtime_error naming the file when ca_file cannot be read (startup only).
/// Thread-safety: the returned context may be shared by connections on one io thread.
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const std::string& ca_file);

}  // namespace aforo::net
