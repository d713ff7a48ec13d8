// See verbatim_parse.hpp.
#include "core/pipeline/verbatim_parse.hpp"

#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstring>

#include "core/json/bounded_parse.hpp"
#include "core/pipeline/event_fields.hpp"

namespace aforo::core::pipeline_detail {
namespace {

namespace rj = rapidjson;
// Not kParseFullPrecisionFlag: RapidJSON 1.1's full-precision path has undefined behaviour on inputs such
// as 0e308 (clz of 0, found by fuzzing). The default path can be an ulp off for long or extreme numbers,
// which the billing fields (quantity: at most 14 + 6 digits) tolerate; see fuzz/targets/ingest_*.cpp.
constexpr unsigned parse_flags = rj::kParseDefaultFlags;

/// An output stream for one number's text (RapidJSON's Writer concept).
struct number_text {
  using Ch = char;
  char buf[48];
  std::size_t size = 0;
  bool overflow = false;
  void Put(char c) {
    if (size < sizeof buf)
      buf[size++] = c;
    else
      overflow = true;
  }
  void Flush() {}
};

/// The Reader's handler: builds the document (every event goes to `doc`, as Document::Parse would) and
/// finds, for each event object (the elements of the root's first "events" member, or the root itself
/// for a single event), whether its text is exactly its compact re-serialization: no whitespace, no
/// escape sequence, every number spelled as the Writer spells it, top-level fields known, in the written
/// order, once and not null, and no null directly in metadata. Then the event can be forwarded as posted.
///
/// The proof is positional: each token must start exactly where the previous one ended plus the one
/// delimiter JSON requires there (',' or ':'; none after '{' or '[' and before '}' or ']'). A string of
/// n decoded bytes is taken to end n + 2 bytes after its opening quote, and a number to end after the
/// Writer's spelling of it, whose bytes must be there; the next token's start (the closing '}' at the
/// latest) then proves the string had no escape sequence and the number no other spelling. The Reader
/// calls String, Key and the number events while the stream still stands at the token's start (its
/// local copy of an in-situ stream is written back afterwards), and the other events after the token.
/// Any other behaviour only fails the checks: the event is then re-serialized, never forwarded wrongly.
///
/// In-situ parsing writes a '\0' over each string's closing quote; the quote is put back once the
/// string is proven escape-free, so a verbatim event's bytes are the posted ones. (The document's
/// strings are read by length only, never as C strings.)
class tracking_handler {
 public:
  tracking_handler(rj::Document& doc, rj::InsituStringStream& is, char* body, std::size_t size, bool single,
                   std::vector<event_span>& spans)
      : doc_(doc), is_(is), body_(body), size_(size), single_(single), spans_(spans) {}

  bool Null() {
    value_at(is_.Tell() - 4, is_.Tell(), true);
    return doc_.Null();
  }
  bool Bool(bool b) {
    const std::size_t n = b ? 4 : 5;
    value_at(is_.Tell() - n, is_.Tell(), false);
    return doc_.Bool(b);
  }
  bool Int(int i) {
    number([&](auto& w) { return w.Int(i); });
    return doc_.Int(i);
  }
  bool Uint(unsigned u) {
    number([&](auto& w) { return w.Uint(u); });
    return doc_.Uint(u);
  }
  bool Int64(std::int64_t i) {
    number([&](auto& w) { return w.Int64(i); });
    return doc_.Int64(i);
  }
  bool Uint64(std::uint64_t u) {
    number([&](auto& w) { return w.Uint64(u); });
    return doc_.Uint64(u);
  }
  bool Double(double d) {
    number([&](auto& w) { return w.Double(d); });
    return doc_.Double(d);
  }
  bool RawNumber(const char* str, rj::SizeType length, bool copy) {
    if (tracking_) ok_ = false;  // only with kParseNumbersAsStringsFlag, never set here
    element();
    return doc_.RawNumber(str, length, copy);
  }
  bool String(const char* str, rj::SizeType length, bool copy) {
    string_at(is_.Tell(), length, false, {});
    return doc_.String(str, length, copy);
  }
  bool Key(const char* str, rj::SizeType length, bool copy) {
    string_at(is_.Tell(), length, true, {str, length});
    return doc_.Key(str, length, copy);
  }
  bool StartObject() {
    const std::size_t at = is_.Tell();
    const bool event = single_ ? depth_ == 0 : depth_ == events_depth_;
    element();
    if (tracking_) {
      check(at - 1, at);
      if (depth_ == event_depth_ && field_ == f_metadata) metadata_depth_ = depth_ + 1;
    } else if (event) {
      if (single_) spans_.emplace_back();
      spans_.back().begin = at - 1;
      tracking_ = true;
      ok_ = true;
      end_ = at;
      last_field_ = -1;
      field_ = -1;
      metadata_depth_ = -1;
      event_depth_ = depth_ + 1;
    }
    ++depth_;
    delim_ = 0;
    return doc_.StartObject();
  }
  bool EndObject(rj::SizeType count) {
    const std::size_t at = is_.Tell();
    if (tracking_) {
      closing(at - 1, at);
      if (depth_ == metadata_depth_) metadata_depth_ = -1;
      if (depth_ == event_depth_) {
        spans_.back().end = at;
        spans_.back().verbatim = ok_;
        tracking_ = false;
        event_depth_ = -1;
      }
    }
    --depth_;
    return doc_.EndObject(count);
  }
  bool StartArray() {
    const std::size_t at = is_.Tell();
    const bool events = !single_ && depth_ == 1 && events_key_pending_;
    element();
    if (tracking_) check(at - 1, at);
    ++depth_;
    if (events) events_depth_ = depth_;
    delim_ = 0;
    return doc_.StartArray();
  }
  bool EndArray(rj::SizeType count) {
    const std::size_t at = is_.Tell();
    if (tracking_) closing(at - 1, at);
    if (depth_ == events_depth_) events_depth_ = -2;  // the events array is closed; no other is tracked
    --depth_;
    return doc_.EndArray(count);
  }

 private:
  /// Bookkeeping for any value: a new element of the events array, or the root's "events" member read.
  void element() {
    if (!single_ && depth_ == events_depth_) spans_.emplace_back();
    if (depth_ == 1) events_key_pending_ = false;
  }

  /// A token at [start, end) that should follow the previous one and the current delimiter.
  void check(std::size_t start, std::size_t end) {
    follows(start, end_ + delim_);
    end_ = end;
    delim_ = 1;
  }
  /// '}' or ']': right after the previous token.
  void closing(std::size_t start, std::size_t end) {
    follows(start, end_);
    end_ = end;
    delim_ = 1;
  }
  void follows(std::size_t start, std::size_t expected) {
    if (ok_ && start != expected) ok_ = false;
    // The previous token was a string: starting right where it was taken to end proves it escape-free.
    if (quote_ != 0 && ok_ && body_[quote_] == '\0') body_[quote_] = '"';
    quote_ = 0;
  }

  void value_at(std::size_t start, std::size_t end, bool null) {
    element();
    if (!tracking_) return;
    check(start, end);
    // The re-serialization drops a null field and a null directly in metadata.
    if (null && (depth_ == event_depth_ || depth_ == metadata_depth_)) ok_ = false;
  }

  template <class Write>
  void number(Write write) {
    const std::size_t start = is_.Tell();
    element();
    if (!tracking_ || !ok_) return;
    number_text t;
    rj::Writer<number_text> w(t);
    bool same = write(w) && !t.overflow && start + t.size <= size_;
    for (std::size_t i = 0; same && i < t.size; ++i) same = body_[start + i] == t.buf[i];
    if (!same) {
      ok_ = false;
      return;
    }
    check(start, start + t.size);
  }

  void string_at(std::size_t start, std::size_t length, bool key, std::string_view name) {
    if (!key) element();
    if (key && !single_ && depth_ == 1 && !events_seen_ && is(name, "events")) {
      events_seen_ = true;  // FindMember("events") finds the first
      events_key_pending_ = true;
    }
    if (!tracking_ || !ok_) return;
    if (key && depth_ == event_depth_) {
      const int i = field_index(name);
      if (i <= last_field_) ok_ = false;  // unknown (-1), repeated or out of order
      last_field_ = i;
      field_ = i;
    }
    check(start, start + length + 2);
    if (ok_) quote_ = start + length + 1;
  }

  rj::Document& doc_;
  rj::InsituStringStream& is_;
  char* body_;
  std::size_t size_;
  bool single_;
  std::vector<event_span>& spans_;
  int depth_ = 0;                    // containers open
  int events_depth_ = -1;            // depth inside the events array (-2 once it closed)
  bool events_seen_ = false;         // the root's first "events" key was read
  bool events_key_pending_ = false;  // and its value is next
  // The event being tracked.
  bool tracking_ = false;
  bool ok_ = false;
  int event_depth_ = -1;     // depth inside the event object
  int metadata_depth_ = -1;  // depth inside its metadata object
  int last_field_ = -1;      // the last top-level field read
  int field_ = -1;           // the top-level field whose value comes next
  std::size_t end_ = 0;      // where the last token ended (assumed, for a string or a number)
  std::size_t delim_ = 0;    // bytes of delimiter before the next token
  std::size_t quote_ = 0;    // a string's closing quote to put back once proven (0: none)
};

}  // namespace

json::parse_outcome parse_in_place(std::string& body, rj::Document& doc, bool single, std::vector<event_span>& spans) {
  rj::InsituStringStream is(body.data());
  for (const unsigned char bom : {0xEFu, 0xBBu, 0xBFu}) {
    if (static_cast<unsigned char>(*is.src_) == bom) ++is.src_;
  }
  json::parse_outcome out;
  auto generate = [&](rj::Document& d) {
    tracking_handler h(d, is, body.data(), body.size(), single, spans);
    // The reader recurses per level: the limit bounds its stack, and the walks of the document after it.
    json::depth_limited<tracking_handler> bounded(h, json::max_depth);
    rj::Reader reader;
    out.result = reader.Parse<parse_flags | rj::kParseInsituFlag>(is, bounded);
    out.too_deep = bounded.too_deep();
    return !out.result.IsError();
  };
  doc.Populate(generate);
  return out;
}

}  // namespace aforo::core::pipeline_detail
