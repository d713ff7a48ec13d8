// Decision names, header lists and the hand-built JSON encoding of a decision.
#include "core/entitlements/decision.hpp"

#include <algorithm>
#include <charconv>

#include "core/entitlements/period.hpp"

namespace aforo::core::entitlements {

std::string_view to_string(verdict v) {
  switch (v) {
    case verdict::allow:
      return "allow";
    case verdict::throttle:
      return "throttle";
    case verdict::block:
      return "block";
  }
  return "block";
}

std::string_view to_string(reason r) {
  switch (r) {
    case reason::ok:
      return "ok";
    case reason::quota_warning:
      return "quota_warning";
    case reason::quota_exceeded:
      return "quota_exceeded";
    case reason::feature_not_entitled:
      return "feature_not_entitled";
    case reason::subscription_inactive:
      return "subscription_inactive";
    case reason::unknown_customer:
      return "unknown_customer";
    case reason::margin_alert:
      return "margin_alert";
    case reason::margin_throttle:
      return "margin_throttle";
    case reason::margin_block:
      return "margin_block";
  }
  return "ok";
}

std::string_view to_string(margin_level m) {
  switch (m) {
    case margin_level::none:
      return "NONE";
    case margin_level::l1:
      return "L1";
    case margin_level::l2:
      return "L2";
    case margin_level::l3:
      return "L3";
  }
  return "NONE";
}

void header_list::add(std::string_view name, std::string_view value) {
  if (size_ >= max_headers) return;
  field& f = fields_[size_++];
  f.name = name;
  f.value_len = static_cast<std::uint8_t>(std::min(value.size(), max_value));
  std::copy_n(value.data(), f.value_len, f.value_buf);
}

void header_list::add(std::string_view name, std::int64_t value) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, value);
  add(name, std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
}

std::optional<std::string_view> header_list::get(std::string_view name) const {
  for (const auto& f : *this) {
    if (f.name == name) return f.value();
  }
  return std::nullopt;
}

namespace {

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(res.ptr - buf));
}

void append_headers(std::string& out, const header_list& h) {
  out.push_back('{');
  bool first = true;
  for (const auto& f : h) {
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, f.name);
    out.push_back(':');
    append_json_string(out, f.value());
  }
  out.push_back('}');
}

}  // namespace

void encode_decision(const decision& d, std::string& out) {
  out.append(R"({"decision":")").append(to_string(d.kind));
  out.append(R"(","allowed":)").append(d.allowed ? "true" : "false");
  out.append(R"(,"status":)");
  append_int(out, d.status);
  out.append(R"(,"reason":")").append(to_string(d.why)).push_back('"');
  if (d.plan) {
    out.append(R"(,"plan":)");
    append_json_string(out, *d.plan);
  }
  if (d.feature) {
    out.append(R"(,"feature":)");
    append_json_string(out, *d.feature);
  }
  if (d.remaining_quota) {
    out.append(R"(,"remaining_quota":)");
    append_int(out, *d.remaining_quota);
  }
  if (d.quota_reset) {
    char iso[21];
    out.append(R"(,"quota_reset":")").append(format_iso8601(*d.quota_reset, iso)).push_back('"');
  }
  out.append(R"(,"margin_level":")").append(to_string(d.margin)).push_back('"');
  if (d.margin_bp) {
    // Basis points as a percentage with two decimals, exact: 2850 -> 28.50, -125 -> -1.25.
    const std::int64_t bp = *d.margin_bp;
    const std::int64_t abs = bp < 0 ? -bp : bp;
    out.append(R"(,"margin_percent":)");
    if (bp < 0) out.push_back('-');
    append_int(out, abs / 100);
    out.push_back('.');
    out.push_back(static_cast<char>('0' + abs % 100 / 10));
    out.push_back(static_cast<char>('0' + abs % 10));
  }
  out.append(R"(,"retry_after":)");
  append_int(out, d.retry_after);
  out.append(R"(,"headers":)");
  append_headers(out, d.headers);
  out.append(R"(,"upstream_headers":)");
  append_headers(out, d.upstream_headers);
  if (!d.message.empty()) {
    out.append(R"(,"message":)");
    append_json_string(out, d.message);
  }
  if (!d.body.empty()) out.append(R"(,"body":)").append(d.body);
  if (d.shadow) out.append(R"(,"shadow":true)");
  if (d.lease > 0) {
    out.append(R"(,"lease":{"requests":)");
    append_int(out, d.lease);
    out.append(R"(,"ttl_ms":)");
    append_int(out, d.lease_ttl_ms);
    out.append(R"(,"scope":")").append(d.lease_scope).push_back('"');
    if (d.lease_scope == "prefix") {
      out.append(R"(,"prefix":)");
      append_json_string(out, d.lease_prefix);
    }
    out.push_back('}');
  }
  out.append(R"(,"cache":)");
  append_json_string(out, d.cache);
  out.push_back('}');
}

}  // namespace aforo::core::entitlements
