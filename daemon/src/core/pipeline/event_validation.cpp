// Event validation: one RapidJSON DOM parse per body, in place in the body, and one pass over each
// event's members. An accepted event is forwarded as posted when its text already is the compact
// re-serialization (checked token by token while parsing), otherwise re-serialized. Linear in the
// body size, however many events fail.
#include "core/pipeline/event_validation.hpp"

#include "core/pipeline/event_fields.hpp"
#include "core/pipeline/protocol_fields.hpp"
#include "core/pipeline/verbatim_parse.hpp"

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>

namespace aforo::core {
namespace {

namespace rj = rapidjson;
using namespace pipeline_detail;
using writer_t = rj::Writer<rj::StringBuffer>;

std::string_view view(const rj::Value& v) { return {v.GetString(), v.GetStringLength()}; }

/// Characters as code points (the body is validated UTF-8, so continuation bytes are skipped).
std::size_t utf8_chars(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0u) != 0x80u;
  return n;
}

/// UTF-8 check of an accepted event's output: a branch-free ASCII pass first (the common case; eight
/// bytes at a time, which the compiler does not do for the byte loop), RapidJSON's validator only when
/// a byte >= 0x80 is present. Checking the output instead of the whole body at parse time rejects only
/// the event with a bad string, and skips dropped fields.
bool valid_utf8(std::string_view s) {
  std::uint64_t any_high = 0;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    any_high |= w;
  }
  for (; i < s.size(); ++i) any_high |= static_cast<unsigned char>(s[i]);
  if ((any_high & 0x8080808080808080ULL) == 0) return true;
  rj::MemoryStream ms(s.data(), s.size());
  rj::EncodedInputStream<rj::UTF8<>, rj::MemoryStream> is(ms);
  struct null_sink {
    void Put(char) {}
  } sink;
  while (is.Tell() < s.size()) {
    if (!rj::UTF8<>::Validate(is, sink)) return false;
  }
  return true;
}

/// Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, surrogates or code points past
/// U+10FFFF) at s[i], else 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t j = 1; j < len; ++j) {
    const auto b = static_cast<unsigned char>(s[i + j]);
    if (b < (j == 1 ? lo : 0x80) || b > (j == 1 ? hi : 0xBF)) return 0;
  }
  return len;
}

bool is_null(const rj::Value* v) { return v == nullptr || v->IsNull(); }

bool bounded_string(const rj::Value& v, std::size_t max_chars, bool non_empty) {
  if (!v.IsString()) return false;
  const std::string_view s = view(v);
  if (non_empty && s.empty()) return false;
  return s.size() <= max_chars || utf8_chars(s) <= max_chars;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

int number_at(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, UTC only.
bool iso8601_utc(const rj::Value& v) {
  if (!v.IsString()) return false;
  const std::string_view s = view(v);
  if (s.size() < 20 || s.size() > 40 || s.back() != 'Z') return false;
  if (!digits(s, 0, 4) || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' || !digits(s, 8, 2) || s[10] != 'T' ||
      !digits(s, 11, 2) || s[13] != ':' || !digits(s, 14, 2) || s[16] != ':' || !digits(s, 17, 2)) {
    return false;
  }
  const int month = number_at(s, 5, 2), day = number_at(s, 8, 2);
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  if (number_at(s, 11, 2) > 23 || number_at(s, 14, 2) > 59 || number_at(s, 17, 2) > 60) return false;
  if (s.size() == 20) return true;
  return s[19] == '.' && s.size() > 21 && digits(s, 20, s.size() - 21);
}

/// > 0, at most 14 integer digits and 6 decimals (decimals judged to double precision).
bool valid_quantity(const rj::Value& v) {
  if (!v.IsNumber()) return false;
  if (v.IsUint64()) {
    const auto u = v.GetUint64();
    return u > 0 && u < 100'000'000'000'000ULL;
  }
  if (v.IsInt64()) return false;  // negative integer
  const double d = v.GetDouble();
  if (!(d > 0) || !(d < max_quantity_exclusive)) return false;
  const double scaled = d * 1e6;
  return std::abs(scaled - std::round(scaled)) <= scaled * 0x1p-50 + 1e-9;
}

bool non_negative_integer(const rj::Value& v) {
  if (v.IsUint64()) return true;
  if (!v.IsDouble()) return false;
  const double d = v.GetDouble();
  return d >= 0 && d < 0x1p53 && d == std::floor(d);
}

bool non_negative_number(const rj::Value& v) { return v.IsNumber() && (v.IsUint64() || v.GetDouble() >= 0); }

/// Checks the typed metadata keys; unknown keys pass through. Returns an error message or null.
const char* check_metadata(const rj::Value& m) {
  if (!m.IsObject()) return "metadata: must be an object";
  for (const auto& member : m.GetObject()) {
    const std::string_view key = view(member.name);
    const rj::Value& v = member.value;
    if (v.IsNull()) continue;
    if (is(key, "gateway") || is(key, "service") || is(key, "route") || is(key, "consumer")) {
      if (!bounded_string(v, max_short_string_chars, false)) {
        return "metadata: gateway, service, route and consumer must be strings of at most 255 characters";
      }
    } else if (is(key, "request_bytes") || is(key, "response_bytes")) {
      if (!non_negative_integer(v)) return "metadata: request_bytes and response_bytes must be integers >= 0";
    } else if (is(key, "cost")) {
      if (!non_negative_number(v)) return "metadata: cost must be a number >= 0";
    }
  }
  return nullptr;
}

/// What a parse result keeps alive for its accepted events' views.
struct parse_storage {
  std::string body;                   // the posted body, parsed in place: the document's strings
  std::deque<std::string> rewritten;  // re-serialized events (a deque never moves its strings)
};

/// The compact re-serialization of a validated event, into `buf`. Returns an error or null.
const char* write_event(const rj::Value* const (&f)[field_count], rj::StringBuffer& buf) {
  buf.Clear();
  writer_t w(buf);
  w.StartObject();
  for (int i = 0; i < field_count; ++i) {
    if (is_null(f[i])) continue;
    w.Key(field_names[i].data(), static_cast<rj::SizeType>(field_names[i].size()));
    // Accept fails on a number out of the double range (e.g. 1e999 read as infinity), which JSON
    // cannot carry: reject the event rather than store text Aforo would refuse as a whole batch.
    if (i != f_metadata) {
      if (!f[i]->Accept(w)) return "event has a number out of range";
      continue;
    }
    w.StartObject();
    for (const auto& member : f[i]->GetObject()) {
      if (member.value.IsNull()) continue;
      w.Key(member.name.GetString(), member.name.GetStringLength());
      if (!member.value.Accept(w)) return "metadata: a number is out of range";
    }
    w.EndObject();
  }
  w.EndObject();
  return nullptr;
}

/// Validates one event; on success fills `out`. `span`: where the event lies in the body, when it
/// was tracked. Returns an error message or null.
const char* validate_event(const rj::Value& e, const event_span* span, rj::StringBuffer& buf, parse_storage& st,
                           accepted_event& out, bool& rewritten) {
  if (!e.IsObject()) return "event must be a JSON object";
  const rj::Value* f[field_count] = {};
  for (const auto& member : e.GetObject()) {
    const int i = field_index(view(member.name));
    if (i >= 0 && f[i] == nullptr) f[i] = &member.value;  // first occurrence wins
  }
  if (is_null(f[f_customer_id]) || !bounded_string(*f[f_customer_id], max_customer_id_chars, true)) {
    return "customerId: required string of 1 to 64 characters";
  }
  if (is_null(f[f_metric_name]) || !bounded_string(*f[f_metric_name], max_metric_name_chars, true)) {
    return "metricName: required string of 1 to 255 characters";
  }
  if (is_null(f[f_quantity]) || !valid_quantity(*f[f_quantity])) {
    return "quantity: required number > 0 with at most 14 integer digits and 6 decimals";
  }
  if (is_null(f[f_occurred_at]) || !iso8601_utc(*f[f_occurred_at])) {
    return "occurredAt: required ISO-8601 UTC timestamp string ending in Z";
  }
  if (is_null(f[f_idempotency_key]) || !bounded_string(*f[f_idempotency_key], max_idempotency_key_chars, true)) {
    return "idempotencyKey: required string of 1 to 255 characters";
  }
  // productType, executionStatus and the protocol fields (docs/design/event-fields.md#sidecar-rules); a string over
  // Aforo's limit is truncated (the event is then re-serialized).
  rj::Value cut[field_count];
  bool fields_cut = false;
  if (const char* err = check_protocol_fields(f, cut, st.rewritten, fields_cut)) return err;
  // endpointPath is never a reason to reject an event a gateway metered: a long path is truncated and
  // bytes that are not UTF-8 are percent-encoded (normalize_endpoint_path); only a non-string is refused.
  rj::Value normalized_path;
  bool path_normalized = false;
  if (!is_null(f[f_endpoint_path])) {
    if (!f[f_endpoint_path]->IsString()) return "endpointPath: must be a string";
    if (auto p = normalize_endpoint_path(view(*f[f_endpoint_path]))) {
      const auto& kept = st.rewritten.emplace_back(std::move(*p));
      normalized_path.SetString(rj::StringRef(kept.data(), static_cast<rj::SizeType>(kept.size())));
      f[f_endpoint_path] = &normalized_path;
      path_normalized = true;
    }
  }
  if (!is_null(f[f_http_method]) && !bounded_string(*f[f_http_method], max_http_method_chars, true)) {
    return "httpMethod: must be a string of 1 to 16 characters";
  }
  if (!is_null(f[f_status_code]) &&
      !(f[f_status_code]->IsInt() && f[f_status_code]->GetInt() >= 100 && f[f_status_code]->GetInt() <= 599)) {
    return "statusCode: must be an integer from 100 to 599";
  }
  if (!is_null(f[f_response_time_ms]) && !non_negative_number(*f[f_response_time_ms])) {
    return "responseTimeMs: must be a number >= 0";
  }
  if (!is_null(f[f_data_bytes]) && !non_negative_integer(*f[f_data_bytes])) {
    return "dataBytes: must be an integer >= 0";
  }
  if (!is_null(f[f_metadata])) {
    if (const char* err = check_metadata(*f[f_metadata])) return err;
  }

  const bool verbatim = span != nullptr && span->verbatim && !path_normalized && !fields_cut;
  rewritten = !verbatim;
  std::string_view json;
  if (verbatim) {
    json = {st.body.data() + span->begin, span->end - span->begin};
  } else {
    if (const char* err = write_event(f, buf)) return err;
    json = {buf.GetString(), buf.GetSize()};
  }
  if (!valid_utf8(json)) return "event has a string that is not valid UTF-8";

  out.json = verbatim ? json : std::string_view(st.rewritten.emplace_back(json));
  out.customer_id = view(*f[f_customer_id]);
  out.metric_name = view(*f[f_metric_name]);
  out.idempotency_key = view(*f[f_idempotency_key]);
  out.quantity = f[f_quantity]->GetDouble();
  if (!is_null(f[f_http_method])) out.http_method = view(*f[f_http_method]);
  if (!is_null(f[f_endpoint_path])) out.endpoint_path = view(*f[f_endpoint_path]);
  const auto string_of = [&](int i) { return is_null(f[i]) ? std::string_view() : view(*f[i]); };
  out.product_type = string_of(f_product_type);
  out.grpc_service = string_of(f_grpc_service);
  out.grpc_method = string_of(f_grpc_method);
  out.gql_operation_type = string_of(f_gql_operation_type);
  out.gql_operation_name = string_of(f_gql_operation_name);
  out.tool_name = string_of(f_tool_name);
  if (!is_null(f[f_metadata])) {
    // The first of each that is not null: what the re-serialized metadata holds first.
    bool service = false, route = false;
    for (const auto& member : f[f_metadata]->GetObject()) {
      if (member.value.IsNull()) continue;
      const std::string_view key = view(member.name);
      if (is(key, "cost")) {
        if (!out.cost) out.cost = member.value.GetDouble();
      } else if (is(key, "service") && !service) {
        out.service = view(member.value);
        service = true;
      } else if (is(key, "route") && !route) {
        out.route = view(member.value);
        route = true;
      }
    }
  }
  return nullptr;
}

void validate_into(const rj::Value& e, std::uint32_t index, const event_span* span, rj::StringBuffer& buf,
                   parse_storage& st, ingest_parse_result& r) {
  accepted_event ev;
  bool rewritten = false;
  if (const char* err = validate_event(e, span, buf, st, ev, rewritten)) {
    r.errors.push_back({index, err});
  } else {
    if (rewritten) ++r.rewritten;
    r.accepted.push_back(ev);
  }
}

ingest_parse_result fail(ingest_request_error error, std::string message) {
  ingest_parse_result r;
  r.error = error;
  r.error_message = std::move(message);
  return r;
}

// Malformed or nested deeper than json::max_depth: 400, nothing taken.
ingest_parse_result parse_failure(const json::parse_outcome& res) {
  return fail(ingest_request_error::malformed_json, res.message());
}

}  // namespace

std::optional<std::string> normalize_endpoint_path(std::string_view path) {
  std::size_t i = 0;
  bool ascii = true;
  for (const char c : path) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii && path.size() <= max_endpoint_path_bytes) return std::nullopt;
  std::string out;
  out.reserve(std::min(path.size(), max_endpoint_path_bytes));
  bool changed = false;
  static constexpr char hex[] = "0123456789ABCDEF";
  while (i < path.size()) {
    const std::size_t len = utf8_sequence(path, i);
    if (len == 0) {  // a byte that is not UTF-8: "%XX"
      if (out.size() + 3 > max_endpoint_path_bytes) break;
      const auto b = static_cast<unsigned char>(path[i]);
      out += '%';
      out += hex[b >> 4];
      out += hex[b & 0xF];
      changed = true;
      ++i;
      continue;
    }
    if (out.size() + len > max_endpoint_path_bytes) break;  // truncated before this character
    out.append(path.substr(i, len));
    i += len;
  }
  if (i < path.size()) changed = true;
  if (!changed) return std::nullopt;
  return out;
}

int status_for(ingest_request_error error) noexcept {
  switch (error) {
    case ingest_request_error::none:
      return 202;
    case ingest_request_error::too_many_events:
      return 413;
    default:
      return 400;
  }
}

ingest_parse_result parse_ingest_batch(std::string body, std::size_t max_batch_events) {
  auto st = std::make_shared<parse_storage>();
  st->body = std::move(body);
  rj::Document doc;
  std::vector<event_span> spans;
  if (const auto res = parse_in_place(st->body, doc, false, spans); !res) return parse_failure(res);
  if (!doc.IsObject()) return fail(ingest_request_error::not_an_object, "body must be a JSON object");
  const auto events = doc.FindMember("events");
  if (events == doc.MemberEnd() || !events->value.IsArray()) {
    return fail(ingest_request_error::missing_events, "body must have an \"events\" array");
  }
  const auto& arr = events->value;
  if (arr.Size() > max_batch_events) {
    return fail(ingest_request_error::too_many_events, "too many events: " + std::to_string(arr.Size()) +
                                                           " posted, at most " + std::to_string(max_batch_events));
  }
  ingest_parse_result r;
  r.accepted.reserve(arr.Size());
  rj::StringBuffer buf;
  const bool tracked = spans.size() == arr.Size();  // always: the handler saw the same array
  std::uint32_t index = 0;
  for (const auto& e : arr.GetArray()) {
    validate_into(e, index, tracked ? &spans[index] : nullptr, buf, *st, r);
    ++index;
  }
  r.storage = std::move(st);
  return r;
}

ingest_parse_result parse_ingest_single(std::string body) {
  auto st = std::make_shared<parse_storage>();
  st->body = std::move(body);
  rj::Document doc;
  std::vector<event_span> spans;
  if (const auto res = parse_in_place(st->body, doc, true, spans); !res) return parse_failure(res);
  if (!doc.IsObject()) return fail(ingest_request_error::not_an_object, "body must be a JSON object");
  ingest_parse_result r;
  rj::StringBuffer buf;
  validate_into(doc, 0, spans.size() == 1 ? &spans[0] : nullptr, buf, *st, r);
  r.storage = std::move(st);
  return r;
}

std::string build_ingest_response(std::size_t accepted, const std::vector<event_error>& errors) {
  rj::StringBuffer buf;
  writer_t w(buf);
  w.StartObject();
  w.Key("accepted");
  w.Uint64(accepted);
  w.Key("failed");
  w.Uint64(errors.size());
  w.Key("errors");
  w.StartArray();
  for (const auto& e : errors) {
    w.StartObject();
    w.Key("index");
    w.Uint(e.index);
    w.Key("message");
    w.String(e.message.data(), static_cast<rj::SizeType>(e.message.size()));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string build_ingest_error_body(ingest_request_error error, std::string_view message) {
  rj::StringBuffer buf;
  writer_t w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(error == ingest_request_error::too_many_events ? "payload_too_large" : "bad_request");
  w.Key("message");
  w.String(message.data(), static_cast<rj::SizeType>(message.size()));
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace aforo::core
