// POST /v1/check body parsing with RapidJSON's SAX reader over the body buffer itself.
#include "core/entitlements/check_request.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <cmath>
#include <cstring>

#include "core/json/bounded_parse.hpp"

namespace aforo::core::entitlements {

namespace {

enum class field : std::uint8_t {
  none,
  customer_id,
  feature,
  service,
  route,
  method,
  path,
  request_id,
  operation,
  quantity,
  leased,
  lease_unused,
  report_id,
  report_resent,
  renewal
};

constexpr bool integer_field(field f) { return f == field::quantity || f == field::leased || f == field::lease_unused; }
constexpr bool bool_field(field f) { return f == field::report_resent || f == field::renewal; }
constexpr std::string_view expected(field f) {
  return integer_field(f) ? "an integer >= 0" : bool_field(f) ? "true or false" : "a string";
}

struct field_spec {
  std::string_view name;
  field f;
  std::size_t max_len;
};

constexpr field_spec fields[] = {
    {"customer_id", field::customer_id, max_customer_id_len},
    {"feature", field::feature, max_name_len},
    {"service", field::service, max_name_len},
    {"route", field::route, max_name_len},
    {"method", field::method, max_method_len},
    {"path", field::path, max_path_len},
    {"request_id", field::request_id, max_name_len},
    {"operation", field::operation, max_operation_len},
    {"quantity", field::quantity, 0},
    {"leased", field::leased, 0},
    {"lease_unused", field::lease_unused, 0},
    {"report_id", field::report_id, max_report_id_len},
    {"report_resent", field::report_resent, 0},
    {"renewal", field::renewal, 0},
};

// SAX handler: only the top-level object's members are read; nested values of unknown keys are
// skipped. A false return stops the reader; `error` then says why.
struct handler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, handler> {
  check_request& out;
  std::optional<std::string>& error;
  unsigned depth = 0;
  const field_spec* current = nullptr;  // the top-level key whose value comes next
  bool has_customer = false;

  handler(check_request& o, std::optional<std::string>& e) : out(o), error(e) {}

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
  bool at_value() const { return depth == 1 && current != nullptr; }
  bool type_error(std::string_view expected) {
    std::string m(current->name);
    m += " must be ";
    m += expected;
    return fail(std::move(m));
  }

  bool Null() {
    if (!at_value()) return true;
    if (current->f == field::customer_id) return type_error("a string");
    current = nullptr;  // null = absent
    return true;
  }
  bool Bool(bool b) {
    if (!at_value()) return true;
    if (!bool_field(current->f)) return type_error(expected(current->f));
    (current->f == field::renewal ? out.renewal : out.report_resent) = b;
    current = nullptr;
    return true;
  }
  bool number(double v, bool exact_int, std::int64_t i) {
    if (!at_value()) return true;
    if (!integer_field(current->f)) return type_error(expected(current->f));
    if (!exact_int) {
      if (!(v >= 0 && v <= static_cast<double>(max_quantity) && std::floor(v) == v)) {
        return type_error("an integer >= 0");
      }
      i = static_cast<std::int64_t>(v);
    }
    if (i < 0) return type_error("an integer >= 0");
    if (i > max_quantity) return type_error("at most 1000000000000");
    if (current->f == field::lease_unused) out.reports_unused = true;
    (current->f == field::leased         ? out.leased
     : current->f == field::lease_unused ? out.lease_unused
                                         : out.quantity) = i;
    current = nullptr;
    return true;
  }
  bool Int(int i) { return number(0, true, i); }
  bool Uint(unsigned u) { return number(0, true, u); }
  bool Int64(std::int64_t i) { return number(0, true, i); }
  bool Uint64(std::uint64_t u) {
    return number(0, true,
                  u > static_cast<std::uint64_t>(max_quantity) ? max_quantity + 1 : static_cast<std::int64_t>(u));
  }
  bool Double(double d) { return number(d, false, 0); }

  bool String(const char* s, rapidjson::SizeType len, bool) {
    if (!at_value()) return true;
    if (integer_field(current->f) || bool_field(current->f)) return type_error(expected(current->f));
    if (len > current->max_len) {
      return fail(std::string(current->name) + " is longer than " + std::to_string(current->max_len) + " characters");
    }
    const std::string_view v(s, len);
    switch (current->f) {
      case field::customer_id:
        if (len == 0) return fail("customer_id must not be empty");
        out.customer_id = v;
        has_customer = true;
        break;
      case field::feature:
        out.feature = v;
        break;
      case field::service:
        out.service = v;
        break;
      case field::route:
        out.route = v;
        break;
      case field::method:
        out.method = v;
        break;
      case field::path:
        out.path = v;
        break;
      case field::request_id:
        out.request_id = v;
        break;
      case field::operation:
        out.operation = v;
        break;
      case field::report_id:
        out.report_id = v;
        break;
      default:
        break;
    }
    current = nullptr;
    return true;
  }

  bool StartObject() {
    if (at_value()) return type_error(expected(current->f));
    ++depth;
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    if (depth != 1) return true;
    current = nullptr;
    const std::string_view k(s, len);
    for (const auto& spec : fields) {
      if (spec.name == k) {
        current = &spec;
        break;
      }
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool StartArray() {
    if (depth == 0) return fail("the body must be a JSON object");
    if (at_value()) return type_error(expected(current->f));
    ++depth;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return true; }
};

}  // namespace

std::optional<std::string> parse_check_request(std::string& body, check_request& out) {
  out = check_request{};
  std::optional<std::string> error;
  if (std::memchr(body.data(), '\0', body.size()) != nullptr) return std::string("the body contains a NUL byte");
  const auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || body[first] != '{') return std::string("the body must be a JSON object");

  handler h(out, error);
  json::depth_limited<handler> bounded(h, json::max_depth);
  // The iterative reader keeps its nesting state in this stack buffer, so parsing never allocates
  // unless the body nests very deeply (then the pool falls back to the heap).
  alignas(16) char pool[1024];
  rapidjson::MemoryPoolAllocator<> alloc(pool, sizeof pool);
  rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>> reader(&alloc, 256);
  // RapidJSON's UTF-8 validation takes every byte of a multi-byte sequence before judging it, so a
  // sequence cut short at the end reads up to 3 bytes past the terminating NUL: pad with NULs (the
  // body holds none, so the parse still ends at the first) and cut the padding off afterwards.
  const std::size_t size = body.size();
  body.append(3, '\0');
  rapidjson::InsituStringStream stream(body.data());
  const rapidjson::ParseResult r =
      reader
          .Parse<rapidjson::kParseInsituFlag | rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
              stream, bounded);
  body.resize(size);
  if (error) return error;
  if (bounded.too_deep()) return json::too_deep_message();
  if (r.IsError()) {
    return "malformed JSON at offset " + std::to_string(r.Offset()) + ": " + rapidjson::GetParseError_En(r.Code());
  }
  if (!h.has_customer) return std::string("customer_id is required");
  return std::nullopt;
}

}  // namespace aforo::core::entitlements
