// Fuzzes HTTP requests as the daemon reads them: Beast's request_parser<string_body> with the server's
// default limits, then dispatch through the daemon's real routing table (operational endpoints and
// every capability's routes, the decision service serving the example snapshot), then the response
// serialized as the server writes it. Several pipelined requests may share one input.
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "app/daemon_graph.hpp"
#include "app/decisions/decision_service.hpp"
#include "fuzz_check.hpp"
#include "io/http/http_server.hpp"
#include "util/log.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace app = aforo::app;
namespace io = aforo::io;

namespace {

std::string make_temp_dir() {
  char tmpl[] = "/tmp/aforo-fuzz-XXXXXX";
  const char* p = ::mkdtemp(tmpl);
  if (p == nullptr) std::abort();
  static std::string dir = p;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
  return dir;
}

aforo::config::sidecar_config fuzz_config(const std::string& dir) {
  aforo::config::sidecar_config c;
  c.entitlements.source = "file:" AFORO_SOURCE_DIR "/config/snapshot.example.yaml";
  c.cache.redis.clear();
  c.buffer.spool_dir = dir + "/spool";
  c.buffer.spool_max_bytes = 8u << 20;
  c.aforo.ingest_url = "http://127.0.0.1:9/v1/ingest/batch";
  c.aforo.control_url = "http://127.0.0.1:9";
  return c;
}

/// The daemon's routing table, built as app/sidecar.cpp builds it, without listeners.
struct daemon_routes {
  std::string dir = make_temp_dir();
  asio::io_context ioc{1};
  app::context ctx{ioc, fuzz_config(dir), {}, ""};
  io::router routes;
  std::unique_ptr<app::daemon_graph> graph;
  io::server_limits limits{ctx.config.server.max_body, ctx.config.server.max_header, ctx.config.server.read_timeout};

  daemon_routes() {
    aforo::util::log::set_level(aforo::config::log_level::error);
    graph = std::make_unique<app::daemon_graph>(ctx);
    graph->register_routes(routes);
    // Only the decision service is started (it loads the snapshot file); the others' start() would
    // reach for the network. The usage pipeline still takes custody of events into its spool.
    for (auto* s : graph->services())
      if (auto* d = dynamic_cast<app::decision_service*>(s)) d->start();
    ioc.poll();
  }
};

bool safe_header_value(std::string_view v) {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

/// The server's write path: status, headers (unsafe values dropped), body, keep-alive.
std::string serialize(const io::http_response& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res(static_cast<http::status>(r.status), version);
  res.set(http::field::server, "aforo-sidecar/" AFORO_VERSION);
  res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) {
    if (!safe_header_value(v) || !safe_header_value(k)) continue;
    res.insert(k, v);
  }
  res.body() = r.body;
  res.keep_alive(keep_alive && !r.close);
  res.prepare_payload();
  std::ostringstream os;
  os << res;
  return os.str();
}

/// Parses one request from the front of `in` and consumes it; false when no complete request.
bool read_request(std::string_view& in, const io::server_limits& limits, http::request<http::string_body>& out,
                  beast::error_code& ec) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(limits.max_body);
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header));
  parser.eager(true);
  while (!parser.is_done()) {
    std::size_t used = 0;
    if (!in.empty()) {
      used = parser.put(asio::buffer(in.data(), in.size()), ec);
      FUZZ_CHECK(used <= in.size());
      in.remove_prefix(used);
      if (ec && ec != http::error::need_more) return false;
    }
    if (used == 0) {
      // No progress with every byte offered: the peer closed. A request without a body ends here,
      // anything else is truncated.
      ec = {};
      parser.put_eof(ec);
      if (ec || !parser.is_done()) return false;
    }
  }
  out = parser.release();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static daemon_routes& d = *new daemon_routes;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int n = 0; n < 8 && !in.empty(); ++n) {
    http::request<http::string_body> msg;
    beast::error_code ec;
    if (!read_request(in, d.limits, msg, ec)) {
      // The server answers 400/413/431 and closes; nothing was routed.
      (void)serialize(io::http_response::error(400, "bad_request", "malformed HTTP request: " + ec.message()), 11,
                      false);
      break;
    }
    const unsigned version = msg.version();
    const bool keep_alive = msg.keep_alive();
    io::http_request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());

    auto responses = std::make_shared<std::vector<io::http_response>>();
    d.routes.dispatch(req, [responses](io::http_response r) { responses->push_back(std::move(r)); });
    d.ioc.poll();
    d.ioc.restart();
    FUZZ_CHECK(responses->size() <= 1);  // a handler responds exactly once
    for (const auto& r : *responses) {
      FUZZ_CHECK(r.status >= 100 && r.status <= 599);
      const auto wire = serialize(r, version, keep_alive);
      FUZZ_CHECK(wire.rfind("HTTP/1.", 0) == 0);
      FUZZ_CHECK(wire.find("\r\n\r\n") != std::string::npos);
    }
    if (!keep_alive || responses->empty()) break;
  }
  return 0;
}
