// Log line and webhook body of a level change; see level_report.hpp.
#include "core/margin/level_report.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace aforo::core::margin {

namespace ce = entitlements;

std::string describe(const level_change& c) {
  std::string s = "margin guard: ";
  s += c.customer_id;
  s += ' ';
  s += ce::to_string(c.to);
  s += " (";
  if (c.margin_bp) {
    s += "margin " + format_bp(*c.margin_bp) + "%";
    if (c.threshold_bp != 0 || c.to != margin_level::none) {
      s += c.to != margin_level::none ? " < " : " >= ";
      s += format_bp(c.threshold_bp) + "%";
    }
  } else {
    s += "revenue 0, cogs " + ce::format_micros(c.cogs);
  }
  if (c.from != margin_level::none) {
    s += ", was ";
    s += ce::to_string(c.from);
  }
  s += ") [guard " + c.guard_id;
  if (c.mode != guard_mode::enforce) {
    s += ", ";
    s += to_string(c.mode);
  }
  s += ']';
  return s;
}

std::string webhook_body(const level_change& c, std::int64_t timestamp) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto raw_number = [&w](const std::string& text) { w.RawValue(text.data(), text.size(), rapidjson::kNumberType); };
  auto str = [&w](std::string_view v) { w.String(v.data(), static_cast<rapidjson::SizeType>(v.size())); };
  w.StartObject();
  w.Key("customer_id");
  str(c.customer_id);
  w.Key("level");
  str(ce::to_string(c.to));
  w.Key("previous_level");
  str(ce::to_string(c.from));
  w.Key("margin_percent");
  if (c.margin_bp) {
    raw_number(format_bp(*c.margin_bp));
  } else {
    w.Null();
  }
  w.Key("threshold_percent");
  raw_number(format_bp(c.threshold_bp));
  if (c.min_margin_bp) {
    w.Key("min_margin_percent");
    raw_number(format_bp(*c.min_margin_bp));
  }
  w.Key("revenue");
  raw_number(ce::format_micros(c.revenue));
  w.Key("cogs");
  raw_number(ce::format_micros(c.cogs));
  w.Key("period");
  str(c.period);
  w.Key("guard");
  str(c.guard_id);
  w.Key("mode");
  str(to_string(c.mode));
  w.Key("timestamp");
  w.Int64(timestamp);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string signature_input(std::int64_t timestamp, std::string_view body) {
  std::string s = std::to_string(timestamp);
  s += '.';
  s += body;
  return s;
}

}  // namespace aforo::core::margin
