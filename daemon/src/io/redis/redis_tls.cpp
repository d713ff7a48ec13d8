#include "io/redis/redis_tls.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

namespace aforo::io {

namespace {

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

std::string prepare_redis_tls(redis_tls_stream& s, const std::string& name) {
  std::string error;
  SSL* ssl = s.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_literal(name)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) error = "cannot check the IP address " + name;
  } else {
    // SNI; the macro SSL_set_tlsext_host_name expands to this call
    if (SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str())) != 1 ||
        X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1) {
      error = "cannot use the server name '" + name + "'";
    }
  }
  boost::system::error_code ec;
  s.set_verify_mode(boost::asio::ssl::verify_peer, ec);
  if (ec && error.empty()) error = ec.message();
  return error;
}

std::string redis_tls_failure(redis_tls_stream& s, const boost::system::error_code& ec, const std::string& where,
                              const std::string& server_name, const std::string& ca_file) {
  std::string msg = "TLS handshake with " + where + " failed: ";
  const long verify = SSL_get_verify_result(s.native_handle());
  if (verify == X509_V_OK) return msg + ec.message();
  msg += "server certificate rejected: ";
  msg += X509_verify_cert_error_string(verify);
  msg += " (expected name " + server_name +
         ", trusted CAs: " + (ca_file.empty() ? std::string("the system store") : ca_file) + ")";
  return msg;
}

}  // namespace aforo::io
