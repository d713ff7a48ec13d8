// Dead-letter replay: line parsing with RapidJSON's SAX reader (event spans from the stream's offsets, as
// in batch_split.cpp), request packing and the sidecar's answer.
#include "core/pipeline/dead_letter_replay.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <climits>
#include <utility>

namespace aforo::core {
namespace {

namespace rj = rapidjson;

constexpr std::string_view events_open_text = R"({"events":[)";
constexpr std::string_view events_close_text = "]}";

/// Reads a dead-letter line (batch_depth 2: the batch is the value of the line's "batch" member) or a
/// batch body on its own (batch_depth 1), recording the line's reason and status, a string batch, and
/// where each event of the batch's "events" array starts and ends. RapidJSON's iterative reader calls
/// StartObject/EndObject with the stream still at the '{' or '}' (batch_split's unit tests pin this down).
struct line_handler : rj::BaseReaderHandler<rj::UTF8<>, line_handler> {
  const rj::MemoryStream* is = nullptr;
  std::string_view text;
  int batch_depth = 2;
  int depth = 0;

  std::string top_key;    // the current member name of the line object
  std::string batch_key;  // ... of the batch object
  std::string event_key;  // ... of the current event
  bool batch_seen = false;
  bool batch_open = false;
  bool events_seen = false;
  bool events_open = false;
  std::size_t begin = 0;
  std::string current_key;  // the current event's idempotencyKey

  std::string reason;
  int status = 0;
  bool batch_is_string = false;
  std::string batch_string;
  std::vector<std::string> events;
  std::vector<std::string> keys;
  std::string problem;

  [[nodiscard]] std::size_t pos() const { return static_cast<std::size_t>(is->Tell()); }
  [[nodiscard]] bool line_member() const { return batch_depth == 2 && depth == 1; }
  [[nodiscard]] bool in_events_array() const { return events_open && depth == batch_depth + 1; }
  [[nodiscard]] bool event_member() const { return events_open && depth == batch_depth + 2; }

  bool fail(std::string why) {
    if (problem.empty()) problem = std::move(why);
    return false;
  }
  bool Default() {  // a scalar
    if (depth == 0) return fail("not a JSON object");
    if (in_events_array()) return fail("an event of the batch is not a JSON object");
    return true;
  }
  bool Int(int i) {
    if (line_member() && top_key == "status") status = i;
    return Default();
  }
  bool Uint(unsigned u) {
    if (line_member() && top_key == "status") status = u <= static_cast<unsigned>(INT_MAX) ? static_cast<int>(u) : 0;
    return Default();
  }
  bool String(const char* s, rj::SizeType n, bool) {
    const std::string_view v(s, n);
    if (line_member()) {
      if (top_key == "reason") {
        reason = v;
      } else if (top_key == "batch") {
        if (batch_seen) return fail("two \"batch\" members");
        batch_seen = batch_is_string = true;
        batch_string = v;
      }
    } else if (event_member() && event_key == "idempotencyKey") {
      current_key = v;
    }
    return Default();
  }
  bool Key(const char* s, rj::SizeType n, bool) {
    const std::string_view k(s, n);
    if (line_member())
      top_key = k;
    else if (batch_open && depth == batch_depth)
      batch_key = k;
    else if (event_member())
      event_key = k;
    return true;
  }
  bool StartObject() {
    if (in_events_array()) {
      ++depth;
      begin = pos();
      event_key.clear();
      current_key.clear();
      return true;
    }
    ++depth;
    if (depth == batch_depth && (batch_depth == 1 || top_key == "batch")) {
      if (batch_seen) return fail("two \"batch\" members");
      batch_seen = batch_open = true;
    }
    return true;
  }
  bool EndObject(rj::SizeType) {
    if (event_member()) {
      events.emplace_back(text.substr(begin, pos() + 1 - begin));
      keys.push_back(std::move(current_key));
      current_key.clear();
    } else if (batch_open && depth == batch_depth) {
      batch_open = false;
    }
    --depth;
    return true;
  }
  bool StartArray() {
    if (depth == 0) return fail("not a JSON object");
    if (in_events_array()) return fail("an event of the batch is not a JSON object");
    ++depth;
    if (batch_open && depth == batch_depth + 1 && batch_key == "events") {
      if (events_seen) return fail("two \"events\" members in the batch");
      events_seen = events_open = true;
    }
    return true;
  }
  bool EndArray(rj::SizeType) {
    if (events_open && depth == batch_depth + 1) events_open = false;
    --depth;
    return true;
  }
};

/// Runs the handler over `text`; false (with h.problem set) when it is not valid JSON of the shape.
bool read(std::string_view text, line_handler& h) {
  rj::MemoryStream is(text.data(), text.size());
  h.is = &is;
  h.text = text;
  rj::Reader reader;
  const auto res = reader.Parse<rj::kParseIterativeFlag>(is, h);
  if (res.IsError()) {
    if (h.problem.empty()) {
      h.problem = std::string("not valid JSON: ") + rj::GetParseError_En(res.Code()) + " (at byte " +
                  std::to_string(res.Offset()) + ")";
    }
    return false;
  }
  for (const auto& e : h.events) {
    if (e.size() < 2 || e.front() != '{' || e.back() != '}') {  // offsets not as expected
      h.problem = "an event's text could not be delimited";
      return false;
    }
  }
  return true;
}

bool blank(std::string_view s) {
  for (const char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

}  // namespace

dead_letter_line parse_dead_letter_line(std::string_view text) {
  dead_letter_line out;
  if (blank(text)) {
    out.what = dead_letter_line::kind::blank;
    return out;
  }
  line_handler h;
  const bool ok = read(text, h);
  out.reason = std::move(h.reason);
  out.status = h.status;
  if (!ok) {
    out.problem = std::move(h.problem);
    return out;
  }
  if (!h.batch_seen) {
    out.problem = "no \"batch\" member: not a dead-letter line";
    return out;
  }
  if (out.reason == "undecodable") {
    out.what = dead_letter_line::kind::undecodable;
    out.problem = "an undecodable spool record (a raw payload that cannot be replayed)";
    return out;
  }
  if (h.batch_is_string) {
    line_handler b;
    b.batch_depth = 1;
    if (!read(h.batch_string, b) || !b.events_seen) {
      out.problem =
          "its batch is a string, not a {\"events\":[...]} body" + (b.problem.empty() ? "" : ": " + b.problem);
      return out;
    }
    h.events = std::move(b.events);
    h.keys = std::move(b.keys);
  } else if (!h.events_seen) {
    out.problem = "its batch has no \"events\" array";
    return out;
  }
  out.what = dead_letter_line::kind::events;
  out.events = std::move(h.events);
  out.keys = std::move(h.keys);
  return out;
}

replay_batcher::replay_batcher(std::size_t max_events, std::size_t max_bytes)
    : max_events_(max_events == 0 ? 1 : max_events), max_bytes_(max_bytes) {}

std::vector<replay_request> replay_batcher::add(std::uint64_t line_no, const dead_letter_line& line) {
  std::vector<replay_request> out;
  if (line.what != dead_letter_line::kind::events) return out;
  for (std::size_t i = 0; i < line.events.size(); ++i) {
    add_event(line_no, static_cast<std::uint32_t>(i), line.events[i],
              i < line.keys.size() ? line.keys[i] : std::string(), out);
  }
  return out;
}

void replay_batcher::add_event(std::uint64_t line_no, std::uint32_t index, const std::string& event,
                               const std::string& key, std::vector<replay_request>& out) {
  if (!pending_.origins.empty() && pending_.body.size() + 1 + event.size() + events_close_text.size() > max_bytes_) {
    out.push_back(take());
  }
  if (pending_.origins.empty()) {
    pending_.body.assign(events_open_text);
    pending_.first_line = line_no;
  } else {
    pending_.body.push_back(',');
  }
  pending_.body += event;
  pending_.origins.push_back({line_no, index, key});
  if (pending_.origins.size() >= max_events_) out.push_back(take());
}

replay_request replay_batcher::take() {
  pending_.body += events_close_text;
  replay_request r = std::move(pending_);
  pending_ = replay_request{};
  return r;
}

std::optional<replay_request> replay_batcher::finish() {
  if (pending_.origins.empty()) return std::nullopt;
  return take();
}

std::optional<replay_ack> parse_replay_ack(std::string_view body) {
  rj::Document d;
  d.Parse<rj::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  replay_ack out;
  if (const auto it = d.FindMember("accepted"); it != d.MemberEnd() && it->value.IsUint64())
    out.accepted = it->value.GetUint64();
  if (const auto it = d.FindMember("failed"); it != d.MemberEnd() && it->value.IsUint64())
    out.failed = it->value.GetUint64();
  if (const auto it = d.FindMember("errors"); it != d.MemberEnd() && it->value.IsArray()) {
    for (const auto& e : it->value.GetArray()) {
      if (!e.IsObject()) continue;
      replay_ack::error err;
      if (const auto i = e.FindMember("index"); i != e.MemberEnd() && i->value.IsUint64())
        err.index = static_cast<std::size_t>(i->value.GetUint64());
      if (const auto m = e.FindMember("message"); m != e.MemberEnd() && m->value.IsString())
        err.message.assign(m->value.GetString(), m->value.GetStringLength());
      out.errors.push_back(std::move(err));
    }
  }
  return out;
}

unsigned retry_after_seconds(std::string_view header, unsigned fallback, unsigned cap) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), v);
  if (header.empty() || ec != std::errc{} || end != header.data() + header.size()) v = fallback;
  return v < cap ? v : cap;
}

}  // namespace aforo::core
