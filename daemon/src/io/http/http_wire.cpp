// The response message; see http_wire.hpp. Beast serializes it.
#include "io/http/http_wire.hpp"

#include <string_view>

namespace aforo::io {
namespace {

namespace http = boost::beast::http;

bool has_control_char(std::string_view v) {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
  return false;
}

// The server frames every response itself; a handler's copy of these would contradict it.
bool framing_header(std::string_view name) {
  const auto f = http::string_to_field(name);
  return f == http::field::content_length || f == http::field::transfer_encoding || f == http::field::connection;
}

}  // namespace

std::size_t prepare_response(beast_response& res, http_response&& r, unsigned version, bool keep_alive) {
  const unsigned code = static_cast<unsigned>(r.status);
  res.clear();
  res.result(code);
  res.version(version);
  res.set(http::field::server, "aforo-sidecar/" AFORO_VERSION);
  res.set(http::field::content_type, r.content_type);
  std::size_t unsafe = 0;
  for (const auto& [k, v] : r.headers) {
    if (has_control_char(k) || has_control_char(v)) {
      ++unsafe;
      continue;
    }
    if (!framing_header(k)) res.insert(k, v);
  }
  const bool bodiless = (code >= 100 && code < 200) || code == 204 || code == 304;
  res.body() = bodiless ? std::string() : std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return unsafe;
}

}  // namespace aforo::io
