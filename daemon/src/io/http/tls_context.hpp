// The client TLS context for outbound HTTPS (config aforo.ca_file) and Redis over TLS
// (cache.redis_ca_file): TLS 1.2 or newer and the CA certificates to trust.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace aforo::io {

/// Which certificates a client context trusts.
enum class ca_trust : unsigned char {
  system_plus_file,  ///< the system store, plus the PEM bundle in ca_file when set (HTTPS to Aforo)
  file_or_system,    ///< only the PEM bundle in ca_file when set, else the system store (Redis)
};

/// Builds a client context (TLS 1.2+) trusting the CA certificates `trust` names. Verification itself
/// is switched on per connection. Throws std::runtime_error naming the file when ca_file cannot be
/// read (startup only).
/// Thread-safety: the returned context may be shared by connections on one io thread.
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(
    const std::string& ca_file, ca_trust trust = ca_trust::system_plus_file);

}  // namespace aforo::io
