// cache.redis URLs; see redis_url.hpp.
#include "io/redis/redis_url.hpp"

#include <boost/url/parse.hpp>
#include <charconv>

#include "config/secrets.hpp"

namespace aforo::io {

namespace {

bool parse_int(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

std::optional<redis_endpoint> parse_redis_url(std::string_view url, std::string& error) {
  auto u = boost::urls::parse_uri(url);
  if (!u) {
    error = "'" + config::redact_url(std::string(url)) + "' is not a URL";
    return std::nullopt;
  }
  redis_endpoint ep;
  if (u->scheme() == "unix") {
    ep.unix_path = std::string(u->path());
    if (ep.unix_path.empty() || ep.unix_path[0] != '/') {
      error = "unix: needs an absolute socket path";
      return std::nullopt;
    }
    auto params = u->params();
    if (auto it = params.find("db"); it != params.end()) {
      if (!(*it).has_value || !parse_int((*it).value, ep.db) || ep.db < 0) {
        error = "db must be a number >= 0";
        return std::nullopt;
      }
    }
    return ep;
  }
  if (u->scheme() != "redis" && u->scheme() != "rediss") {
    error = "scheme must be redis://, rediss:// (TLS) or unix:";
    return std::nullopt;
  }
  ep.tls = u->scheme() == "rediss";
  ep.host = std::string(u->host_address());
  if (ep.host.empty()) {
    error = std::string(u->scheme()) + ":// needs a host";
    return std::nullopt;
  }
  if (u->has_port()) {
    if (u->port_number() == 0) {
      error = "port must be 1..65535";
      return std::nullopt;
    }
    ep.port = u->port_number();
  }
  std::string path(u->path());
  if (!path.empty() && path != "/") {
    if (!parse_int(std::string_view(path).substr(1), ep.db) || ep.db < 0) {
      error = "the path must be the database number, e.g. /0";
      return std::nullopt;
    }
  }
  if (u->has_userinfo()) {
    ep.user = std::string(u->user());
    ep.password = std::string(u->password());
  }
  return ep;
}

}  // namespace aforo::io
