// Client TLS context construction; see tls_context.hpp.
#include "io/http/tls_context.hpp"

#include <stdexcept>

namespace aforo::io {

std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const std::string& ca_file, ca_trust trust) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  // A missing system store is not fatal: with ca_file set the extra bundle may be all that is needed.
  if (trust == ca_trust::system_plus_file || ca_file.empty()) ctx->set_default_verify_paths(ec);
  if (!ca_file.empty()) {
    ctx->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("cannot load CA file " + ca_file + ": " + ec.message());
  }
  return ctx;
}

}  // namespace aforo::io
