// Where Redis is (config cache.redis): a redis://, rediss:// (TLS) or unix: URL parsed into an endpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aforo::io {

/// Where Redis is: "redis://[[user]:password@]host[:port][/db]", the same with "rediss://" (TLS), or
/// "unix:/path[?db=N]".
struct redis_endpoint {
  std::string host;  ///< empty for a unix socket
  std::uint16_t port = 6379;
  bool tls = false;  ///< rediss://: TLS 1.2+, the server certificate always verified
  std::string unix_path;
  int db = 0;
  std::string user;      ///< AUTH user (Redis 6 ACL); empty = default user
  std::string password;  ///< empty = no AUTH
};

/// Parses cache.redis (Boost.URL). nullopt with `error` set when malformed.
[[nodiscard]] std::optional<redis_endpoint> parse_redis_url(std::string_view url, std::string& error);

}  // namespace aforo::io
