// The fake ingest's ingest endpoints; see ingest_service.hpp. The /_control API is in control_api.cpp.
#include "ingest_service.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <stdexcept>

#include <boost/asio/steady_timer.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "io/lz4_frame.hpp"

namespace aforo::fake {

namespace {

constexpr std::size_t max_decoded = 256 * 1024 * 1024;

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

// Aforo's error envelope.
io::http_response aforo_error(int status, std::string_view code, std::string_view message) {
  std::string body = R"({"success":false,"error":{"code":)";
  io::append_json_string(body, code);
  body += R"(,"message":)";
  io::append_json_string(body, message);
  body += "}}";
  return io::http_response::json(status, std::move(body));
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return {sb.GetString(), sb.GetSize()};
}

bool has_string(const rapidjson::Value& ev, const char* name) {
  const auto it = ev.FindMember(name);
  return it != ev.MemberEnd() && it->value.IsString() && it->value.GetStringLength() > 0;
}

// What Aforo's ingest requires of an event of each productType (docs/design/event-fields.md#product-types), or "".
std::string product_requirement(const rapidjson::Value& ev) {
  const auto it = ev.FindMember("productType");
  if (it == ev.MemberEnd() || !it->value.IsString()) return "";
  const std::string_view type(it->value.GetString(), it->value.GetStringLength());
  static const struct {
    const char* type;
    const char* fields[2];
  } required[] = {{"MCP_SERVER", {"toolName", "agentId"}},
                  {"GRPC_API", {"grpcService", "grpcMethod"}},
                  {"GRAPHQL_API", {"gqlOperationType", nullptr}},
                  {"WEBSOCKET_API", {"wsConnectionId", nullptr}},
                  {"AI_AGENT", {"agentId", "sessionId"}}};
  for (const auto& r : required) {
    if (type != r.type) continue;
    for (const char* f : r.fields) {
      if (f != nullptr && !has_string(ev, f)) return std::string(f) + " is required for productType " + r.type;
    }
  }
  return "";
}

// `{"events":[]}`, whitespace aside (inside an LZ4 frame when `lz4`).
bool is_key_check(std::string_view body, bool lz4) {
  std::string decoded;
  if (lz4) {
    if (body.size() > 256 || !io::lz4_decompress_frame(body, decoded, 256).ok) return false;
    body = decoded;
  }
  std::string s;
  for (char c : body)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') s += c;
  return s == R"({"events":[]})";
}

}  // namespace

ingest_service::ingest_service(boost::asio::io_context& ioc, ingest_options opts) : ioc_(ioc), opts_(std::move(opts)) {
  if (!opts_.record_file.empty()) {
    record_ = std::fopen(opts_.record_file.c_str(), "a");
    if (record_ == nullptr) throw std::runtime_error("cannot open --record file " + opts_.record_file);
  }
}

ingest_service::~ingest_service() {
  if (record_ != nullptr) std::fclose(record_);
}

void ingest_service::add_routes(io::router& routes) {
  routes.add("POST", "/v1/ingest/batch",
             [this](io::http_request& req, io::respond_fn respond) { handle_ingest(req, std::move(respond), false); });
  routes.add("POST", "/v1/ingest/test",
             [this](io::http_request& req, io::respond_fn respond) { handle_ingest(req, std::move(respond), true); });
  routes.add_sync("POST", "/_control/faults", [this](io::http_request& req) { return control_faults(req); });
  routes.add_sync("POST", "/_control/refuse", [this](io::http_request& req) { return control_refuse(req); });
  routes.add_sync("GET", "/_control/received", [this](io::http_request&) { return control_received(); });
  routes.add_sync("GET", "/_control/stats", [this](io::http_request&) { return control_stats(); });
  routes.add_sync("POST", "/_control/reset", [this](io::http_request&) { return control_reset(); });
  routes.add_sync("POST", "/_control/max_events", [this](io::http_request& req) { return control_max_events(req); });
  routes.add_sync("POST", "/_control/network", [this](io::http_request& req) { return control_network(req); });
  routes.add_sync("POST", "/_control/refuse_lz4", [this](io::http_request& req) { return control_refuse_lz4(req); });
}

void ingest_service::handle_ingest(io::http_request& req, io::respond_fn respond, bool single) {
  request_record rec;
  rec.arrived_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started_).count());
  rec.path = std::string(req.path());
  rec.connection = std::string(req.header(connection_header));
  rec.content_type = std::string(req.header("Content-Type"));
  rec.content_encoding = std::string(req.header("Content-Encoding"));
  rec.tenant = std::string(req.header("X-Tenant-Id"));
  rec.user_agent = std::string(req.header("User-Agent"));
  rec.raw_bytes = req.body.size();
  const std::string_view key = opts_.bearer ? req.header("Authorization") : req.header("X-API-Key");
  const std::string expected = opts_.bearer ? "Bearer " + opts_.api_key : opts_.api_key;
  if (key.empty())
    rec.api_key_state = "missing";
  else
    rec.api_key_state = (opts_.api_key.empty() || key == expected) ? "match" : "mismatch";
  fault_step step;
  const bool lz4 = starts_with_ci(rec.content_encoding, "lz4");
  if (!single && (rec.content_encoding.empty() || lz4) && is_key_check(req.body, lz4)) {
    // The sidecar's startup handshake: `{"events":[]}` answered as Aforo does (401/403, else 400 for
    // the empty batch), but no delivery: it takes no fault step and is counted apart ("probes"), so
    // tests of delivery see deliveries only. Sent as an lz4 frame, it is the encoding check.
    ++probes_;
    if (lz4) ++lz4_probes_;
    io::http_response r;
    if (server_ != nullptr && server_->refusing())
      r.status = drop_connection_status;
    else
      r = process(req, step, single, rec);
    answer(std::move(respond), std::move(r), network_delay(0));
    return;
  }
  rec.number = ++requests_;
  if (server_ != nullptr && server_->refusing())
    step.close = true;  // a spared connection: still refuse
  else
    step = faults_.next();
  rec.fault = step.describe();

  io::http_response r;
  if (step.close) {
    r.status = drop_connection_status;
  } else if (opts_.max_in_flight != 0 && in_flight_ >= opts_.max_in_flight) {
    ++over_limit_;
    r = aforo_error(429, "TOO_MANY_REQUESTS", "too many concurrent requests");
    r.headers.emplace_back("Retry-After", "1");
  } else if (step.status != 0) {
    r = aforo_error(step.status, "INJECTED_FAULT", "fault injected by the test");
    if (step.retry_after_s >= 0) r.headers.emplace_back("Retry-After", std::to_string(step.retry_after_s));
  } else {
    r = process(req, step, single, rec);  // committed on arrival, even when the answer is delayed
  }
  rec.status = r.status;
  ++by_status_[r.status];
  log_.push_back(std::move(rec));
  ++in_flight_;
  peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
  answer(
      [this, respond = std::move(respond)](io::http_response res) mutable {
        --in_flight_;
        respond(std::move(res));
      },
      std::move(r), network_delay(step.delay_ms));
}

std::uint32_t ingest_service::network_delay(std::uint32_t extra_ms) {
  std::uint32_t d = opts_.rtt_ms + extra_ms;
  if (opts_.jitter_ms != 0) {
    rng_state_ = rng_state_ * 6364136223846793005ull + 1442695040888963407ull;  // LCG: reproducible
    const auto span = 2 * opts_.jitter_ms + 1;
    const auto j = static_cast<std::uint32_t>((rng_state_ >> 33) % span);
    d = d + j >= opts_.jitter_ms ? d + j - opts_.jitter_ms : 0;
  }
  return d;
}

void ingest_service::answer(io::respond_fn respond, io::http_response r, std::uint32_t delay_ms) {
  if (delay_ms == 0) {
    respond(std::move(r));
    return;
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(ioc_, std::chrono::milliseconds(delay_ms));
  timer->async_wait([timer, respond = std::move(respond), r = std::move(r)](boost::system::error_code) mutable {
    respond(std::move(r));
  });
}

io::http_response ingest_service::process(io::http_request& req, const fault_step& step, bool single,
                                          request_record& rec) {
  // Authentication first, as Aforo does: a wrong key learns nothing about the body.
  if (rec.api_key_state != "match") return aforo_error(401, "UNAUTHORIZED", "invalid or missing API key");
  if (!opts_.tenant.empty() && req.header("X-Tenant-Id") != opts_.tenant)
    return aforo_error(403, "FORBIDDEN", "API key does not belong to this tenant");

  if (!starts_with_ci(rec.content_type, "application/json"))
    return aforo_error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
  std::string decoded;
  std::string* body = &req.body;
  if (starts_with_ci(rec.content_encoding, "lz4") && opts_.refuse_lz4 != 0) {
    // A server without lz4: Spring's answer to an unknown Content-Encoding, or a 400 that names it.
    ++lz4_refused_;
    if (opts_.refuse_lz4 == 415)
      return aforo_error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Encoding 'lz4' is not supported");
    return aforo_error(400, "BAD_REQUEST", "cannot read the request body: unsupported Content-Encoding lz4");
  }
  if (starts_with_ci(rec.content_encoding, "lz4")) {
    const auto res = io::lz4_decompress_frame(req.body, decoded, max_decoded);
    if (!res.ok) return aforo_error(400, "BAD_REQUEST", "invalid lz4 body: " + res.error);
    body = &decoded;
  } else if (!rec.content_encoding.empty() && !starts_with_ci(rec.content_encoding, "identity")) {
    return aforo_error(415, "UNSUPPORTED_MEDIA_TYPE", "unsupported Content-Encoding: " + rec.content_encoding);
  }
  rec.decoded_bytes = body->size();
  if (opts_.count_only) return count_only(*body, rec);

  // In place: the strings stay in the body buffer instead of being copied one by one (this fake runs
  // beside the sidecar in the benchmarks, where its CPU competes with what is measured).
  rapidjson::Document doc;
  doc.ParseInsitu(body->data());
  if (doc.HasParseError() || !doc.IsObject()) return aforo_error(400, "BAD_REQUEST", "malformed JSON");
  rapidjson::Value one(rapidjson::kArrayType);
  const rapidjson::Value* events = nullptr;
  if (doc.HasMember("events")) {
    events = &doc["events"];
  } else if (single) {
    rapidjson::Value copy(doc, doc.GetAllocator());
    one.PushBack(copy, doc.GetAllocator());
    events = &one;
  }
  if (events == nullptr || !events->IsArray()) return aforo_error(400, "BAD_REQUEST", "expected {\"events\":[...]}");
  const std::size_t n = events->Size();
  rec.events = n;  // logged even when refused below
  const std::size_t limit = single ? 1 : opts_.max_events;
  if (n > limit && !single)
    return aforo_error(413, "PAYLOAD_TOO_LARGE", "at most " + std::to_string(limit) + " events per request");
  if (n == 0 || n > limit)
    return aforo_error(400, "BAD_REQUEST", "events must hold 1 to " + std::to_string(limit) + " items");

  rec.events = n;
  events_received_ += n;
  std::string errors;
  std::string lines;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& ev = (*events)[static_cast<rapidjson::SizeType>(i)];
    std::string why;
    if (!ev.IsObject())
      why = "event must be an object";
    else if (!has_string(ev, "customerId"))
      why = "customerId is required";
    else if (!has_string(ev, "idempotencyKey"))
      why = "idempotencyKey is required";
    else if (step.fail_events.count(i) != 0 || step.fail_keys.count(ev["idempotencyKey"].GetString()) != 0)
      why = "rejected by the ingest (injected failure)";
    else
      why = product_requirement(ev);
    if (why.empty() && step.success_false) {
      ++rec.failed;  // taken for nothing, listed for nothing
      continue;
    }
    if (!why.empty()) {
      ++rec.failed;
      errors += errors.empty() ? "" : ",";
      errors += R"({"index":)" + std::to_string(i) + R"(,"message":)";
      io::append_json_string(errors, why);
      errors += "}";
      continue;
    }
    if (!seen_keys_.insert(ev["idempotencyKey"].GetString()).second) {
      ++rec.duplicates;
      continue;
    }
    ++rec.accepted;
    if (!opts_.store_events && record_ == nullptr) continue;
    auto json = to_json(ev);
    if (record_ != nullptr) lines += json + "\n";
    if (opts_.store_events) events_.push_back({rec.number, i, std::move(json)});
  }
  if (record_ != nullptr && !lines.empty()) {
    std::fwrite(lines.data(), 1, lines.size(), record_);
    std::fflush(record_);
  }
  if (step.success_false) {
    failed_ += rec.failed;
    return io::http_response::json(200, R"({"success":false,"data":{"accepted":0,"duplicates":0,"failed":)" +
                                            std::to_string(rec.failed) + R"(,"errors":[)" + errors +
                                            R"(]},"meta":{}})");
  }
  return ack(rec, errors);
}

io::http_response ingest_service::count_only(std::string_view body, request_record& rec) {
  static constexpr std::string_view key = "\"idempotencyKey\"";
  static const std::boyer_moore_horspool_searcher find_key(key.begin(), key.end());  // JSON is full of '"'
  std::size_t n = 0;
  for (auto at = std::search(body.begin(), body.end(), find_key); at != body.end();
       at = std::search(at + key.size(), body.end(), find_key))
    ++n;
  if (n > opts_.max_events)
    return aforo_error(413, "PAYLOAD_TOO_LARGE", "at most " + std::to_string(opts_.max_events) + " events per request");
  if (n == 0)
    return aforo_error(400, "BAD_REQUEST", "events must hold 1 to " + std::to_string(opts_.max_events) + " items");
  rec.events = rec.accepted = n;
  events_received_ += n;
  return ack(rec, "");
}

io::http_response ingest_service::ack(const request_record& rec, const std::string& errors) {
  accepted_ += rec.accepted;
  duplicates_ += rec.duplicates;
  failed_ += rec.failed;
  std::string out = R"({"success":true,"data":{"accepted":)" + std::to_string(rec.accepted) + R"(,"duplicates":)" +
                    std::to_string(rec.duplicates) + R"(,"failed":)" + std::to_string(rec.failed) + R"(,"errors":[)" +
                    errors + R"(]},"meta":{}})";
  return io::http_response::json(202, std::move(out));
}

}  // namespace aforo::fake
