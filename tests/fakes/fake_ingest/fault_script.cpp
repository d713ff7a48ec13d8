// Fault script parsing and consumption; see fault_script.hpp.
#include "fault_script.hpp"

#include <rapidjson/document.h>

namespace aforo::fake {

std::string fault_step::describe() const {
  std::string d;
  auto add = [&d](const std::string& s) { d += (d.empty() ? "" : " ") + s; };
  if (status != 0) add("status=" + std::to_string(status));
  if (retry_after_s >= 0) add("retry_after=" + std::to_string(retry_after_s));
  if (delay_ms != 0) add("delay_ms=" + std::to_string(delay_ms));
  if (close) add("close");
  if (success_false) add("success_false");
  if (!fail_events.empty()) add("fail_events=" + std::to_string(fail_events.size()));
  if (!fail_keys.empty()) add("fail_keys=" + std::to_string(fail_keys.size()));
  return d.empty() ? "none" : d;
}

namespace {

std::optional<std::string> parse_step(const rapidjson::Value& v, fault_step& s) {
  if (!v.IsObject()) return "each step must be an object";
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const std::string_view key(it->name.GetString(), it->name.GetStringLength());
    const auto& val = it->value;
    if (key == "status" && val.IsInt() && val.GetInt() >= 100 && val.GetInt() <= 599) {
      s.status = val.GetInt();
    } else if (key == "retry_after" && val.IsInt() && val.GetInt() >= 0) {
      s.retry_after_s = val.GetInt();
    } else if (key == "delay_ms" && val.IsUint()) {
      s.delay_ms = val.GetUint();
    } else if (key == "times" && val.IsUint() && val.GetUint() > 0) {
      s.times = val.GetUint();
    } else if (key == "close" && val.IsBool()) {
      s.close = val.GetBool();
    } else if (key == "success_false" && val.IsBool()) {
      s.success_false = val.GetBool();
    } else if (key == "fail_events" && val.IsArray()) {
      for (const auto& i : val.GetArray()) {
        if (!i.IsUint()) return "fail_events must hold indices";
        s.fail_events.insert(i.GetUint());
      }
    } else if (key == "fail_keys" && val.IsArray()) {
      for (const auto& k : val.GetArray()) {
        if (!k.IsString()) return "fail_keys must hold idempotency keys";
        s.fail_keys.emplace(k.GetString(), k.GetStringLength());
      }
    } else {
      return "bad step field: " + std::string(key);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> fault_script::load(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) return "malformed JSON";
  const rapidjson::Value* list = &doc;
  bool append = false;
  if (doc.IsObject()) {
    if (!doc.HasMember("steps")) return "expected {\"steps\":[...]}";
    list = &doc["steps"];
    append = doc.HasMember("append") && doc["append"].IsBool() && doc["append"].GetBool();
  }
  if (!list->IsArray()) return "steps must be a list";
  std::deque<fault_step> parsed;
  for (const auto& v : list->GetArray()) {
    fault_step s;
    if (auto err = parse_step(v, s)) return err;
    parsed.push_back(std::move(s));
  }
  if (!append) steps_.clear();
  for (auto& s : parsed) steps_.push_back(std::move(s));
  return std::nullopt;
}

fault_step fault_script::next() {
  if (steps_.empty()) return {};
  fault_step s = steps_.front();
  if (--steps_.front().times == 0) steps_.pop_front();
  s.times = 1;
  return s;
}

std::size_t fault_script::pending() const {
  std::size_t n = 0;
  for (const auto& s : steps_) n += s.times;
  return n;
}

}  // namespace aforo::fake
