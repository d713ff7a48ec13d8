// Batch body splitting with RapidJSON's SAX reader: event spans from the stream's offsets.
#include "core/pipeline/batch_split.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "core/pipeline/batcher.hpp"

namespace aforo::core {
namespace {

namespace rj = rapidjson;

/// Records where each element of the top-level "events" array starts and ends. RapidJSON's
/// iterative reader calls Start*/End* with the stream still at the '{' or '}' (the unit tests pin
/// this down).
struct span_handler : rj::BaseReaderHandler<rj::UTF8<>, span_handler> {
  const rj::MemoryStream* is = nullptr;
  std::vector<std::string_view> out;
  std::string_view body;
  int depth = 0;
  bool in_events = false;  // the current top-level key is "events"
  bool events_seen = false;
  bool events_open = false;  // inside the events array (depth 2)
  std::size_t begin = 0;

  std::size_t pos() const { return static_cast<std::size_t>(is->Tell()); }

  bool Default() {
    // A scalar: fine anywhere except as an element of the events array.
    return !(events_open && depth == 2);
  }
  bool Key(const char* s, rj::SizeType len, bool) {
    if (depth == 1) in_events = std::string_view(s, len) == "events";
    return true;
  }
  bool StartObject() {
    ++depth;
    if (events_open && depth == 3) begin = pos();
    return true;
  }
  bool EndObject(rj::SizeType) {
    if (events_open && depth == 3) out.push_back(body.substr(begin, pos() + 1 - begin));
    --depth;
    return true;
  }
  bool StartArray() {
    ++depth;
    if (depth == 2 && in_events) {
      if (events_seen) return false;  // a second "events" member: ambiguous
      events_seen = events_open = true;
      return true;
    }
    return !(events_open && depth == 3);  // an array as an event
  }
  bool EndArray(rj::SizeType) {
    if (depth == 2 && events_open) events_open = false;
    --depth;
    return true;
  }
};

}  // namespace

std::optional<std::vector<std::string_view>> split_batch_body(std::string_view body) {
  rj::MemoryStream is(body.data(), body.size());
  span_handler h;
  h.is = &is;
  h.body = body;
  rj::Reader reader;
  const auto res = reader.Parse<rj::kParseIterativeFlag | rj::kParseStopWhenDoneFlag>(is, h);
  if (res.IsError() || !h.events_seen) return std::nullopt;
  for (const auto e : h.out) {
    if (e.size() < 2 || e.front() != '{' || e.back() != '}') return std::nullopt;  // offsets not as expected
  }
  return std::move(h.out);
}

std::string join_events(const std::vector<std::string_view>& events, std::size_t from, std::size_t to) {
  std::size_t bytes = 0;
  for (std::size_t i = from; i < to; ++i) bytes += events[i].size() + 1;
  batch_body_builder b(bytes);
  for (std::size_t i = from; i < to; ++i) b.add_event(events[i]);
  return b.finish();
}

}  // namespace aforo::core
