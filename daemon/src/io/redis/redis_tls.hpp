// TLS for rediss:// connections: the server name to send and verify, and what a failed handshake
// says (which certificate check failed, the name expected, the CAs trusted).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>
#include <string>

namespace aforo::io {

using redis_tls_stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

/// SNI and the name the certificate must carry (a DNS name, or an IP address SAN for an IP literal),
/// checked by OpenSSL during chain verification so a mismatch has its own verify error; peer
/// verification on. Returns an empty string, or why the stream cannot be set up.
[[nodiscard]] std::string prepare_redis_tls(redis_tls_stream& s, const std::string& server_name);

/// The message for a failed handshake: where, and the certificate's verify error when there is one.
[[nodiscard]] std::string redis_tls_failure(redis_tls_stream& s, const boost::system::error_code& ec,
                                            const std::string& where, const std::string& server_name,
                                            const std::string& ca_file);

}  // namespace aforo::io
