#include "io/http/listen_address.hpp"

#include <stdexcept>

namespace aforo::io {

listen_address parse_listen_address(const std::string& address) {
  listen_address out;
  if (address.rfind("unix:", 0) == 0) {
    out.unix_path = address.substr(5);
    if (out.unix_path.empty()) throw std::runtime_error("listen " + address + ": empty unix socket path");
    return out;
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
  boost::system::error_code ec;
  out.ip = boost::asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) throw std::runtime_error("listen " + address + ": '" + host + "' is not an IP address");
  out.port = static_cast<unsigned short>(port);
  return out;
}

}  // namespace aforo::io
