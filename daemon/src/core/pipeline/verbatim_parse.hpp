// The ingest body parser that also proves, event by event, that an event's text is exactly its compact
// re-serialization, so that it can be forwarded as posted (event_validation.cpp).
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <string>
#include <vector>

#include "core/json/bounded_parse.hpp"

namespace aforo::core::pipeline_detail {

/// Where an event object lies in the body being parsed, and whether that text is exactly what
/// write_event() would make of it.
struct event_span {
  std::size_t begin = 0;  ///< the '{'
  std::size_t end = 0;    ///< past the '}'
  bool verbatim = false;
};

/// Parses `body` in place into `doc`, recording the events' spans. The same document and errors as
/// Document::Parse(data, size) gives for the same bytes: that reads through EncodedInputStream<UTF8,
/// MemoryStream>, which skips a UTF-8 byte order mark (EF, BB, BF, each only if present) and counts
/// offsets from the first byte, and ends at a '\0' byte or at the end (the body's terminator here).
/// Nesting past json::max_depth stops the parse (outcome.too_deep).
json::parse_outcome parse_in_place(std::string& body, rapidjson::Document& doc, bool single,
                                   std::vector<event_span>& spans);

}  // namespace aforo::core::pipeline_detail
