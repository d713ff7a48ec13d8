// Parsing Aforo's quota and margin answers; see answers.hpp.
#include "core/aforo_api/answers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <rapidjson/document.h>

#include "core/json/bounded_parse.hpp"

namespace aforo::core::aforo_api {

namespace {

using value = rapidjson::Value;

// The answer object itself: the root, or root.data when Aforo wrapped it as {success, data}.
const value* unwrap(const rapidjson::Document& doc, std::string& error) {
  if (!doc.IsObject()) {
    error = "the answer must be a JSON object";
    return nullptr;
  }
  const auto data = doc.FindMember("data");
  const auto success = doc.FindMember("success");
  if (success != doc.MemberEnd() || (data != doc.MemberEnd() && data->value.IsObject())) {
    if (success != doc.MemberEnd() && success->value.IsBool() && !success->value.GetBool()) {
      error = "success is false";
      if (const auto e = doc.FindMember("error"); e != doc.MemberEnd()) {
        const value* m = &e->value;
        if (m->IsObject()) {
          if (const auto msg = m->FindMember("message"); msg != m->MemberEnd()) m = &msg->value;
        }
        if (m->IsString()) error += std::string(": ") + m->GetString();
      }
      return nullptr;
    }
    if (data == doc.MemberEnd() || !data->value.IsObject()) {
      error = "a {success, data} answer without a data object";
      return nullptr;
    }
    return &data->value;
  }
  return &doc;
}

std::optional<std::int64_t> integer(const value& obj, const char* key) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsNumber()) return std::nullopt;
  if (it->value.IsInt64()) return it->value.GetInt64();
  const double d = it->value.GetDouble();
  if (!std::isfinite(d) || std::fabs(d) > 9e18) return std::nullopt;
  return static_cast<std::int64_t>(std::floor(d));
}

std::string text(const value& obj, const char* key) {
  const auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

template <class T>
const value* open(std::string_view body, rapidjson::Document& doc, parsed<T>& out) {
  if (const auto r = json::parse(doc, body); !r) {
    out.error = r.message();
    return nullptr;
  }
  return unwrap(doc, out.error);
}

}  // namespace

parsed<quota_answer> parse_quota_answer(std::string_view body) {
  parsed<quota_answer> out;
  rapidjson::Document doc;
  const value* a = open(body, doc, out);
  if (a == nullptr) return out;
  quota_answer q;
  const std::string d = text(*a, "decision");
  if (d == "ALLOW")
    q.decision = quota_answer::kind::allow;
  else if (d == "WARN")
    q.decision = quota_answer::kind::warn;
  else if (d == "DENY")
    q.decision = quota_answer::kind::deny;
  else {
    out.error = "decision must be ALLOW, WARN or DENY";
    return out;
  }
  q.reason = text(*a, "reason");
  q.current_usage = integer(*a, "currentUsage");
  q.limit = integer(*a, "limit");
  q.retry_after_ms = std::max<std::int64_t>(integer(*a, "retryAfterMs").value_or(0), 0);
  q.tier_name = text(*a, "tierName");
  if (const auto h = a->FindMember("headers"); h != a->MemberEnd() && h->value.IsObject()) {
    for (const auto& m : h->value.GetObject()) {
      std::string name(m.name.GetString(), m.name.GetStringLength());
      if (name.empty() || name.find_first_of(" \t\r\n:") != std::string::npos) continue;
      if (m.value.IsString()) {
        std::string v(m.value.GetString(), m.value.GetStringLength());
        if (v.find_first_of("\r\n") != std::string::npos) continue;
        q.headers.emplace_back(std::move(name), std::move(v));
      } else if (m.value.IsInt64()) {
        q.headers.emplace_back(std::move(name), std::to_string(m.value.GetInt64()));
      }
    }
  }
  out.value = std::move(q);
  return out;
}

parsed<margin_answer> parse_margin_answer(std::string_view body) {
  parsed<margin_answer> out;
  rapidjson::Document doc;
  const value* a = open(body, doc, out);
  if (a == nullptr) return out;
  margin_answer m;
  // Aforo's gateway-facing deny body, {"error":{"code":"SERVICE_RESTRICTED_MARGIN"|"RATE_LIMITED_MARGIN",
  // "message","retryAfterSeconds"}}, read as the level it stands for.
  if (const auto e = a->FindMember("error"); e != a->MemberEnd() && e->value.IsObject()) {
    const std::string code = text(e->value, "code");
    if (code == "SERVICE_RESTRICTED_MARGIN" || code == "RATE_LIMITED_MARGIN") {
      m.allowed = false;
      m.level = code == "RATE_LIMITED_MARGIN" ? entitlements::margin_level::l2 : entitlements::margin_level::l3;
      m.throttle_rate = 0;
      m.retry_after_s = std::max<std::int64_t>(integer(e->value, "retryAfterSeconds").value_or(0), 0);
      m.message = text(e->value, "message");
      out.value = std::move(m);
      return out;
    }
  }
  const std::string level = text(*a, "level");
  if (level.empty() || level == "NONE")
    m.level = entitlements::margin_level::none;
  else if (level == "L1_ALERT")
    m.level = entitlements::margin_level::l1;
  else if (level == "L2_THROTTLE")
    m.level = entitlements::margin_level::l2;
  else if (level == "L3_BLOCK")
    m.level = entitlements::margin_level::l3;
  else {
    out.error = "level must be NONE, L1_ALERT, L2_THROTTLE or L3_BLOCK";
    return out;
  }
  if (const auto it = a->FindMember("allowed"); it != a->MemberEnd() && it->value.IsBool())
    m.allowed = it->value.GetBool();
  m.throttle_rate = std::clamp<std::int64_t>(integer(*a, "throttleRate").value_or(100), 0, 100);
  m.retry_after_s = std::max<std::int64_t>(integer(*a, "retryAfterSeconds").value_or(0), 0);
  m.message = text(*a, "message");
  out.value = std::move(m);
  return out;
}

bool admit_throttled(std::int64_t& credit, std::int64_t rate_percent) {
  credit += std::clamp<std::int64_t>(rate_percent, 0, 100);
  if (credit < 100) return false;
  credit -= 100;
  return true;
}

std::string margin_deny_body(entitlements::margin_level level, std::string_view message, std::int64_t retry_after_s,
                             std::string_view support_url) {
  std::string out = R"({"error":{"code":")";
  out += level == entitlements::margin_level::l3 ? "SERVICE_RESTRICTED_MARGIN" : "RATE_LIMITED_MARGIN";
  out += R"(","message":)";
  if (message.empty())
    message = level == entitlements::margin_level::l3 ? "Service temporarily restricted for this account"
                                                      : "Too many requests for this account";
  entitlements::append_json_string(out, message);
  out += R"(,"retryAfterSeconds":)" + std::to_string(retry_after_s);
  if (!support_url.empty()) {
    out += R"(,"supportUrl":)";
    entitlements::append_json_string(out, support_url);
  }
  out += "}}";
  return out;
}

}  // namespace aforo::core::aforo_api
