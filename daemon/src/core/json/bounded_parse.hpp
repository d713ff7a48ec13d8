// The one way this daemon parses JSON that comes from outside (HTTP bodies, Aforo's and Kong's answers,
// files): with a nesting limit enforced while parsing. RapidJSON's default reader recurses once per
// nesting level, and anything that later walks a Document (Accept, Writer, a converter) recurses too,
// so `{"events":` + 500,000 `[` would overflow the stack. The limit is counted in the SAX events
// (StartObject/StartArray), so the reader stops at the first level past it, whatever its flags.
// The limit is documented in docs/http-api.md ("Nesting limit") and fuzz/README.md.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aforo::core::json {

/// Containers ([ or {) open at once, at most, in any JSON the daemon reads from outside. The root
/// object or array is level 1. Aforo's and Kong's documents nest at most about 6 levels.
inline constexpr unsigned max_depth = 64;

/// "JSON nested deeper than N levels": the error every bounded parser gives for input past its limit.
[[nodiscard]] std::string too_deep_message(unsigned limit = max_depth);

/// A SAX handler that forwards every event to `Handler` and stops the reader (kParseErrorTermination)
/// when a container would open past `limit` levels; too_deep() then says so.
template <class Handler>
class depth_limited {
 public:
  using Ch = char;
  depth_limited(Handler& inner, unsigned limit) : inner_(inner), limit_(limit) {}

  bool Null() { return inner_.Null(); }
  bool Bool(bool b) { return inner_.Bool(b); }
  bool Int(int i) { return inner_.Int(i); }
  bool Uint(unsigned u) { return inner_.Uint(u); }
  bool Int64(std::int64_t i) { return inner_.Int64(i); }
  bool Uint64(std::uint64_t u) { return inner_.Uint64(u); }
  bool Double(double d) { return inner_.Double(d); }
  bool RawNumber(const Ch* s, rapidjson::SizeType n, bool copy) { return inner_.RawNumber(s, n, copy); }
  bool String(const Ch* s, rapidjson::SizeType n, bool copy) { return inner_.String(s, n, copy); }
  bool Key(const Ch* s, rapidjson::SizeType n, bool copy) { return inner_.Key(s, n, copy); }
  bool StartObject() { return enter() && inner_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return inner_.EndObject(n);
  }
  bool StartArray() { return enter() && inner_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return inner_.EndArray(n);
  }

  [[nodiscard]] bool too_deep() const noexcept { return too_deep_; }

 private:
  bool enter() {
    if (++depth_ <= limit_) return true;
    too_deep_ = true;
    return false;
  }

  Handler& inner_;
  unsigned limit_;
  unsigned depth_ = 0;
  bool too_deep_ = false;
};

/// What a bounded parse found: ok, malformed (result says where and why) or too deep.
struct parse_outcome {
  rapidjson::ParseResult result;
  bool too_deep = false;
  unsigned limit = max_depth;

  [[nodiscard]] bool ok() const noexcept { return !too_deep && !result.IsError(); }
  explicit operator bool() const noexcept { return ok(); }
  /// too_deep_message(limit), or "malformed JSON at offset N: <RapidJSON's message>"; empty when ok.
  [[nodiscard]] std::string message() const;
};

/// Document::Parse<Flags>(text.data(), text.size()) with a nesting limit: the same document and errors
/// for input within the limit (a UTF-8 byte order mark is skipped, the text ends at its size or at a
/// NUL byte). On failure the document is left null. Note: unlike Document::Parse this does not set
/// the document's own HasParseError(); use the outcome.
template <unsigned Flags = rapidjson::kParseDefaultFlags, class Document>
parse_outcome parse(Document& doc, std::string_view text, unsigned limit = max_depth) {
  using source = rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream>;
  parse_outcome out;
  out.limit = limit;
  doc.SetNull();
  auto generate = [&](Document& d) {
    rapidjson::MemoryStream ms(text.data(), text.size());
    source is(ms);
    depth_limited<Document> bounded(d, limit);
    rapidjson::GenericReader<rapidjson::UTF8<>, typename Document::EncodingType> reader;
    out.result = reader.template Parse<Flags>(is, bounded);
    out.too_deep = bounded.too_deep();
    return !out.result.IsError();
  };
  doc.Populate(generate);
  return out;
}

}  // namespace aforo::core::json
