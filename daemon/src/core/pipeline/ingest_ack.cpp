// Aforo ingest envelope parsing, tolerant of missing or mistyped fields.
#include "core/pipeline/ingest_ack.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <limits>

#include "core/json/bounded_parse.hpp"

namespace aforo::core {
namespace {

namespace rj = rapidjson;

std::uint64_t count_of(const rj::Value& obj, const char* name) {
  const auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return 0;
  if (it->value.IsUint64()) return it->value.GetUint64();
  if (!it->value.IsDouble() || !(it->value.GetDouble() > 0)) return 0;
  // Past 2^64 (e.g. 1e300) the conversion would be undefined: saturate instead.
  const double v = it->value.GetDouble();
  return v < 18446744073709551616.0 ? static_cast<std::uint64_t>(v) : std::numeric_limits<std::uint64_t>::max();
}

}  // namespace

std::optional<ingest_ack> parse_ingest_ack(std::string_view body, std::size_t max_errors) {
  rj::Document doc;
  if (!json::parse(doc, body) || !doc.IsObject()) return std::nullopt;
  ingest_ack ack;
  if (const auto s = doc.FindMember("success"); s != doc.MemberEnd() && s->value.IsBool()) {
    ack.success = s->value.GetBool();
  }
  const auto data = doc.FindMember("data");
  if (data == doc.MemberEnd() || !data->value.IsObject()) return ack;
  const rj::Value& d = data->value;
  ack.accepted = count_of(d, "accepted");
  ack.duplicates = count_of(d, "duplicates");
  ack.failed = count_of(d, "failed");
  const auto errors = d.FindMember("errors");
  if (errors != d.MemberEnd() && errors->value.IsArray()) {
    for (const auto& e : errors->value.GetArray()) {
      if (ack.errors.size() >= max_errors) break;
      if (!e.IsObject()) continue;
      event_error err;
      if (const auto i = e.FindMember("index"); i != e.MemberEnd() && i->value.IsUint()) err.index = i->value.GetUint();
      if (const auto m = e.FindMember("message"); m != e.MemberEnd() && m->value.IsString()) {
        err.message.assign(m->value.GetString(), m->value.GetStringLength());
      }
      ack.errors.push_back(std::move(err));
    }
    if (ack.failed == 0) ack.failed = errors->value.Size();
  }
  return ack;
}

refused_events refused_in(const ingest_ack& ack, std::size_t events) {
  refused_events out;
  std::vector<bool> seen(events, false);
  for (const auto& e : ack.errors) {
    if (e.index >= events || seen[e.index]) continue;
    seen[e.index] = true;
    out.events.push_back({e.index, e.message, true});
  }
  if (!ack.success) {
    for (std::size_t i = 0; i < events; ++i) {
      if (!seen[i]) out.events.push_back({i, "ingest answered success:false", false});
    }
  } else if (ack.failed > out.events.size()) {
    out.unidentified = std::min<std::uint64_t>(ack.failed, events) - std::min<std::uint64_t>(out.events.size(), events);
  }
  std::sort(out.events.begin(), out.events.end(),
            [](const refused_event& a, const refused_event& b) { return a.index < b.index; });
  return out;
}

}  // namespace aforo::core
