// The test event; see test_event.hpp.
#include "app/pipeline/test_event.hpp"

#include "io/clients/aforo_client.hpp"
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <random>

#include <boost/asio/io_context.hpp>
#include <rapidjson/document.h>

#include "app/pipeline/handshake_service.hpp"
#include "core/json/bounded_parse.hpp"
#include "util/clock.hpp"

namespace aforo::app {

std::string test_event_url(std::string_view ingest_url) {
  std::string_view u = ingest_url.substr(0, ingest_url.find_first_of("?#"));
  const auto scheme = u.find("://");
  const auto path_at = u.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  const std::string_view origin = path_at == std::string_view::npos ? u : u.substr(0, path_at);
  std::string_view path = path_at == std::string_view::npos ? std::string_view{} : u.substr(path_at);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  constexpr std::string_view batch = "/batch";
  if (path.size() >= batch.size() && path.substr(path.size() - batch.size()) == batch) {
    return std::string(origin) + std::string(path.substr(0, path.size() - batch.size())) + "/test";
  }
  return std::string(origin) + "/v1/ingest/test";
}

std::string test_event_body(std::chrono::system_clock::time_point now, std::string_view id) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  std::string key = "test:";
  key += id;
  std::string out = R"({"customerId":"aforo-test","metricName":"api_calls","quantity":1,"occurredAt":")";
  out += stamp;
  out += R"(","idempotencyKey":)";
  io::append_json_string(out, key);
  out += R"(,"productType":"API","metadata":{"gateway":"kong","test":true}})";
  return out;
}

std::string random_test_id() {
  std::random_device rd;
  std::mt19937_64 g((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(g()),
                static_cast<unsigned long long>(g()));
  return buf;
}

std::string redact_in(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  const std::string shown = config::redact(secret);
  for (auto p = text.find(secret); p != std::string::npos; p = text.find(secret, p + shown.size())) {
    text.replace(p, secret.size(), shown);
  }
  return text;
}

test_event_result judge_test_event(std::string url, std::string event_body, const io::client_result& r,
                                   const std::string& api_key) {
  test_event_result out;
  out.url = std::move(url);
  out.event_body = std::move(event_body);
  if (!r.ok()) {
    using kind = io::client_result::error_kind;
    out.error_code = r.error == kind::timeout || r.error == kind::connect_timeout ? "network_timeout"
                     : r.error == kind::tls                                       ? "tls_failure"
                                                                                  : "ingest_unreachable";
    out.cause = redact_in(describe_unreachable(r.error, r.host, r.error_message), api_key);
    return out;
  }
  out.answered = true;
  out.status = r.status;
  out.body = redact_in(r.body, api_key);
  if (out.accepted()) return out;
  if (r.status == 401 || r.status == 403) {
    out.error_code = "unauthorized";
    out.cause = describe_unauthorized(r.status);
  } else {
    out.error_code = "rejected";
    out.cause = "ingest " + r.host + " answered " + std::to_string(r.status);
  }
  return out;
}

void send_test_event(io::http_client& client, const config::sidecar_config& cfg, const config::secrets& sec,
                     std::function<void(test_event_result)> done) {
  io::client_request req;
  req.method = "POST";
  req.url = test_event_url(cfg.aforo.ingest_url);
  req.headers = io::aforo_auth_headers(cfg, sec);
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = test_event_body(util::wall_now(), random_test_id());
  req.timeout = cfg.retry.timeout;
  std::string url = req.url;
  std::string body = req.body;
  client.async_request(std::move(req), [url = std::move(url), body = std::move(body), key = sec.api_key,
                                        done = std::move(done)](io::client_result r) mutable {
    done(judge_test_event(std::move(url), std::move(body), r, key));
  });
}

io::http_response test_event_response(const test_event_result& r) {
  std::string out = R"({"ingest_status":)";
  out += r.answered ? std::to_string(r.status) : "null";
  out += R"(,"ingest_body":)";
  if (!r.answered) {
    out += "null";
  } else {
    rapidjson::Document d;
    // Ingest's JSON, verbatim, if it is JSON within the nesting limit; else as a string.
    if (!r.body.empty() && core::json::parse(d, r.body))
      out += r.body;
    else
      io::append_json_string(out, r.body);
  }
  out += R"(,"url":)";
  io::append_json_string(out, r.url);
  out += R"(,"event":)";
  out += r.event_body;
  if (!r.accepted()) {
    out += R"(,"error":{"code":)";
    io::append_json_string(out, r.error_code);
    out += R"(,"message":)";
    io::append_json_string(out, r.cause);
    out += '}';
  }
  out += '}';
  return io::http_response::json(r.accepted() ? 200 : 502, std::move(out));
}

int run_test_event_command(const config::sidecar_config& cfg, const config::secrets& sec) {
  boost::asio::io_context ioc;
  std::optional<test_event_result> result;
  {
    io::http_client client(ioc, io::aforo_client_options(cfg));  // throws on an unreadable ca_file: caller reports
    std::printf("POST %s (tenant %s, api key %s)\n", test_event_url(cfg.aforo.ingest_url).c_str(),
                sec.tenant_id.empty() ? "unset" : sec.tenant_id.c_str(), config::redact(sec.api_key).c_str());
    send_test_event(client, cfg, sec, [&result](test_event_result r) { result = std::move(r); });
    while (!result && ioc.run_one() != 0) {
    }
  }
  if (!result) {
    std::fprintf(stderr, "ERROR the test event did not complete\n");
    return 1;
  }
  std::printf("event %s\n", result->event_body.c_str());
  if (result->answered) {
    std::printf("ingest answered %d\n%s\n", result->status, result->body.c_str());
  }
  std::fflush(stdout);
  if (result->accepted()) {
    std::printf("test event accepted by ingest\n");
    return 0;
  }
  std::fprintf(stderr, "ERROR %s\n", result->cause.c_str());
  return 1;
}

}  // namespace aforo::app
