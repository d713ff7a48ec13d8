// The sidecar's listen addresses (`listen:` in the config): "HOST:PORT" ("[v6]:PORT", "localhost:PORT")
// or "unix:/path".
#pragma once

#include <boost/asio/ip/address.hpp>

#include <string>

namespace aforo::io {

struct listen_address {
  std::string unix_path;        ///< non-empty for "unix:/path"
  boost::asio::ip::address ip;  ///< otherwise the address and port to bind
  unsigned short port = 0;
};

/// Parses one listen address; throws std::runtime_error("listen ADDRESS: why") for a bad one.
listen_address parse_listen_address(const std::string& address);

}  // namespace aforo::io
