// The fake ingest's /_control API, used by tests while the fake runs: fault scripts, refusing
// connections, what was received, counters, reset.
#include <cstdlib>
#include <memory>

#include <boost/asio/steady_timer.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "ingest_service.hpp"

namespace aforo::fake {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void kv(json_writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void kv(json_writer& w, const char* k, std::uint64_t v) {
  w.Key(k);
  w.Uint64(v);
}

io::http_response json_ok(const rapidjson::StringBuffer& sb) {
  return io::http_response::json(200, std::string(sb.GetString(), sb.GetSize()));
}

}  // namespace

io::http_response ingest_service::control_faults(io::http_request& req) {
  if (auto err = faults_.load(req.body)) return io::http_response::error(400, "bad_request", *err);
  return io::http_response::json(200, R"({"pending":)" + std::to_string(faults_.pending()) + "}");
}

io::http_response ingest_service::control_refuse(io::http_request& req) {
  rapidjson::Document doc;
  doc.Parse(req.body.data(), req.body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("on") || !doc["on"].IsBool())
    return io::http_response::error(400, "bad_request", R"(expected {"on":true|false})");
  if (server_ == nullptr) return io::http_response::error(500, "internal", "no transport attached");
  const std::uint64_t spare = std::strtoull(std::string(req.header(connection_header)).c_str(), nullptr, 10);
  if (!server_->set_refusing(doc["on"].GetBool(), spare))
    return io::http_response::error(500, "internal", "cannot listen on the same port again");
  // {"on":true,"for_ms":N} reopens by itself, for callers without a spare kept-alive connection.
  if (server_->refusing() && doc.HasMember("for_ms") && doc["for_ms"].IsUint()) {
    auto timer = std::make_shared<boost::asio::steady_timer>(ioc_, std::chrono::milliseconds(doc["for_ms"].GetUint()));
    timer->async_wait([this, timer](boost::system::error_code ec) {
      if (!ec) server_->set_refusing(false, 0);
    });
  }
  return io::http_response::json(200, std::string(R"({"refusing":)") + (server_->refusing() ? "true" : "false") + "}");
}

io::http_response ingest_service::control_received() const {
  rapidjson::StringBuffer sb;
  json_writer w(sb);
  w.StartObject();
  w.Key("requests");
  w.StartArray();
  for (const auto& r : log_) {
    w.StartObject();
    kv(w, "request", r.number);
    kv(w, "path", r.path);
    kv(w, "connection", std::strtoull(r.connection.c_str(), nullptr, 10));
    kv(w, "status", static_cast<std::uint64_t>(r.status));
    kv(w, "arrived_us", r.arrived_us);
    kv(w, "fault", r.fault);
    kv(w, "content_type", r.content_type);
    kv(w, "content_encoding", r.content_encoding);
    kv(w, "api_key", r.api_key_state);  // match | mismatch | missing: never the key itself
    kv(w, "tenant", r.tenant);
    kv(w, "user_agent", r.user_agent);
    kv(w, "raw_bytes", r.raw_bytes);
    kv(w, "decoded_bytes", r.decoded_bytes);
    kv(w, "events", r.events);
    kv(w, "accepted", r.accepted);
    kv(w, "duplicates", r.duplicates);
    kv(w, "failed", r.failed);
    w.EndObject();
  }
  w.EndArray();
  w.Key("events");
  w.StartArray();
  for (const auto& e : events_) {
    w.StartObject();
    kv(w, "request", e.request);
    kv(w, "index", e.index);
    w.Key("event");
    w.RawValue(e.json.data(), e.json.size(), rapidjson::kObjectType);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return json_ok(sb);
}

io::http_response ingest_service::control_stats() const {
  rapidjson::StringBuffer sb;
  json_writer w(sb);
  w.StartObject();
  kv(w, "requests", requests_);
  kv(w, "probes", probes_);
  w.Key("by_status");
  w.StartObject();
  for (const auto& [status, count] : by_status_) {
    const std::string k = status == drop_connection_status ? "dropped" : std::to_string(status);
    w.Key(k.c_str());
    w.Uint64(count);
  }
  w.EndObject();
  kv(w, "events_received", events_received_);
  kv(w, "accepted", accepted_);
  kv(w, "duplicates", duplicates_);
  kv(w, "failed", failed_);
  kv(w, "stored", events_.size());
  kv(w, "faults_pending", faults_.pending());
  kv(w, "in_flight", static_cast<std::uint64_t>(in_flight_));
  kv(w, "peak_in_flight", static_cast<std::uint64_t>(peak_in_flight_));
  kv(w, "over_limit", over_limit_);
  kv(w, "lz4_probes", lz4_probes_);
  kv(w, "lz4_refused", lz4_refused_);
  kv(w, "refuse_lz4", static_cast<std::uint64_t>(opts_.refuse_lz4));
  if (server_ != nullptr) {
    kv(w, "connections", server_->connections_accepted());
    kv(w, "open_connections", server_->open_connections());
    w.Key("refusing");
    w.Bool(server_->refusing());
  }
  w.EndObject();
  return json_ok(sb);
}

io::http_response ingest_service::control_reset() {
  faults_.clear();
  requests_ = 0;
  probes_ = lz4_probes_ = lz4_refused_ = 0;
  log_.clear();
  events_.clear();
  seen_keys_.clear();
  by_status_.clear();
  events_received_ = accepted_ = duplicates_ = failed_ = 0;
  return io::http_response::json(200, R"({"reset":true})");
}

io::http_response ingest_service::control_max_events(io::http_request& req) {
  rapidjson::Document doc;
  doc.Parse(req.body.data(), req.body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("max_events") || !doc["max_events"].IsUint() ||
      doc["max_events"].GetUint() == 0)
    return io::http_response::error(400, "bad_request", R"(expected {"max_events":N} with N >= 1)");
  opts_.max_events = doc["max_events"].GetUint();
  return io::http_response::json(200, R"({"max_events":)" + std::to_string(opts_.max_events) + "}");
}

io::http_response ingest_service::control_network(io::http_request& req) {
  rapidjson::Document doc;
  doc.Parse(req.body.data(), req.body.size());
  if (doc.HasParseError() || !doc.IsObject())
    return io::http_response::error(400, "bad_request", R"(expected {"rtt_ms":N,"jitter_ms":N,"max_in_flight":N})");
  for (auto [name, field] : {std::pair{"rtt_ms", &opts_.rtt_ms}, std::pair{"jitter_ms", &opts_.jitter_ms},
                             std::pair{"max_in_flight", &opts_.max_in_flight}}) {
    if (!doc.HasMember(name)) continue;
    if (!doc[name].IsUint())
      return io::http_response::error(400, "bad_request", std::string(name) + " must be a count");
    *field = doc[name].GetUint();
  }
  return io::http_response::json(200, R"({"rtt_ms":)" + std::to_string(opts_.rtt_ms) + R"(,"jitter_ms":)" +
                                          std::to_string(opts_.jitter_ms) + R"(,"max_in_flight":)" +
                                          std::to_string(opts_.max_in_flight) + "}");
}

io::http_response ingest_service::control_refuse_lz4(io::http_request& req) {
  rapidjson::Document doc;
  doc.Parse(req.body.data(), req.body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("status") || !doc["status"].IsInt() ||
      (doc["status"].GetInt() != 0 && doc["status"].GetInt() != 400 && doc["status"].GetInt() != 415))
    return io::http_response::error(400, "bad_request", R"(expected {"status":0|400|415})");
  opts_.refuse_lz4 = doc["status"].GetInt();
  return io::http_response::json(200, R"({"refuse_lz4":)" + std::to_string(opts_.refuse_lz4) + "}");
}

}  // namespace aforo::fake
