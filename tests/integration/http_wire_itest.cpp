// The server's response message (io::prepare_response, reused per connection), serialized by Beast,
// against a fresh Beast response prepared field by field for the same handler answer.
#include <catch2/catch.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <string>
#include <vector>

#include "io/http/http_wire.hpp"

namespace http = boost::beast::http;
using aforo::io::beast_response;
using aforo::io::http_response;
using aforo::io::prepare_response;

namespace {

std::string serialize(beast_response& res) {
  http::response_serializer<http::string_body> sr(res);
  std::string out;
  boost::system::error_code ec;
  while (!sr.is_done()) {
    sr.next(ec, [&](boost::system::error_code&, const auto& buffers) {
      out += boost::beast::buffers_to_string(buffers);
      sr.consume(boost::asio::buffer_size(buffers));
    });
    REQUIRE(!ec);
  }
  return out;
}

// A fresh Beast response prepared field by field.
std::string beast_bytes(const http_response& r, unsigned version, bool keep_alive) {
  beast_response res(static_cast<http::status>(r.status), version);
  res.set(http::field::server, "aforo-sidecar/" AFORO_VERSION);
  res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.insert(k, v);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return serialize(res);
}

// The server's message, reused across calls as a connection reuses it.
std::string wire_bytes(const http_response& r, unsigned version, bool keep_alive, std::size_t* unsafe = nullptr) {
  static beast_response reused;
  http_response copy = r;
  const auto dropped = prepare_response(reused, std::move(copy), version, keep_alive);
  if (unsafe != nullptr) *unsafe = dropped;
  return serialize(reused);
}

}  // namespace

TEST_CASE("http wire: a reused response message serializes like a fresh one", "[server][http_wire]") {
  std::vector<http_response> cases;
  cases.push_back(http_response::json(200, R"({"decision":"allow","allowed":true})"));
  cases.push_back(http_response::json(202, R"({"accepted":3})"));
  cases.push_back(http_response::error(404, "not_found", "no such endpoint: /x"));
  auto allow = http_response::error(405, "method_not_allowed", "use GET, POST");
  allow.headers.emplace_back("Allow", "GET, POST");
  cases.push_back(allow);
  auto retry = http_response::error(503, "spool_full", "the disk spool is full; retry later");
  retry.headers.emplace_back("Retry-After", "1");
  retry.headers.emplace_back("X-Aforo-Throttle", "true");
  cases.push_back(retry);
  http_response metrics;
  metrics.content_type = "text/plain; version=0.0.4; charset=utf-8";
  metrics.body = "# TYPE x counter\nx 1\n";
  cases.push_back(metrics);
  http_response empty;
  empty.status = 200;
  cases.push_back(empty);
  http_response not_modified;
  not_modified.status = 304;
  not_modified.headers.emplace_back("ETag", "\"v7\"");
  cases.push_back(not_modified);
  cases.push_back(http_response::error(408, "request_timeout", "the request was not received in time"));
  cases.push_back(http_response::error(431, "header_too_large", "request headers exceed the limit"));
  cases.push_back(http_response::json(299, "{}"));  // no reason phrase Beast knows
  auto padded = http_response::json(200, "{}");
  padded.headers.emplace_back("X-Padded", "  spaced value\t");
  cases.push_back(padded);
  cases.push_back(http_response::json(200, std::string(70000, 'x')));

  for (const auto& r : cases) {
    for (const unsigned version : {10U, 11U}) {
      for (const bool keep : {true, false}) {
        INFO("status " << r.status << " HTTP/" << version / 10 << "." << version % 10 << " keep-alive " << keep);
        CHECK(wire_bytes(r, version, keep) == beast_bytes(r, version, keep));
      }
    }
  }
}

TEST_CASE("http wire: unsafe and framing headers from a handler are not sent", "[server][http_wire]") {
  auto r = http_response::json(200, "{}");
  r.headers.emplace_back("X-Ok", "1");
  r.headers.emplace_back("X-Injected", "a\r\nSet-Cookie: evil=1");
  r.headers.emplace_back("X-Bad\nName", "v");
  r.headers.emplace_back("Content-Length", "999");
  r.headers.emplace_back("transfer-encoding", "chunked");
  r.headers.emplace_back("Connection", "upgrade");
  r.headers.emplace_back("X-Last", "2");
  std::size_t unsafe = 0;
  const auto out = wire_bytes(r, 11, true, &unsafe);
  CHECK(unsafe == 2);
  auto expected = http_response::json(200, "{}");
  expected.headers.emplace_back("X-Ok", "1");
  expected.headers.emplace_back("X-Last", "2");
  CHECK(out == beast_bytes(expected, 11, true));
  CHECK(out.find("evil") == std::string::npos);
  CHECK(out.find("999") == std::string::npos);
  CHECK(out.find("chunked") == std::string::npos);
}

TEST_CASE("http wire: a 204 or 1xx response carries no body", "[server][http_wire]") {
  auto r = http_response::json(204, "{\"dropped\":true}");
  const auto out = wire_bytes(r, 11, true);
  CHECK(out.rfind("HTTP/1.1 204 No Content\r\n", 0) == 0);
  CHECK(out.find("Content-Length: 0\r\n") != std::string::npos);
  CHECK(out.size() >= 4);
  CHECK(out.compare(out.size() - 4, 4, "\r\n\r\n") == 0);
}
