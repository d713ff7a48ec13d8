// Kong Admin API page parsing; see kong_admin.hpp.
#include "core/discovery/kong_admin.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "core/json/bounded_parse.hpp"

namespace aforo::core::discovery {
namespace {

namespace rj = rapidjson;

std::string str(const rj::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

bool boolean(const rj::Value& obj, const char* key, bool fallback) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsBool() ? it->value.GetBool() : fallback;
}

std::vector<std::string> strings(const rj::Value& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsArray()) return out;
  for (const auto& v : it->value.GetArray())
    if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
  return out;
}

// Kong writes a foreign key as {"id":"..."} (or null).
std::string ref_id(const rj::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsObject()) return {};
  return str(it->value, "id");
}

kong_service to_service(const rj::Value& v) {
  kong_service s;
  s.id = str(v, "id");
  s.name = str(v, "name");
  s.host = str(v, "host");
  s.protocol = str(v, "protocol");
  s.path = str(v, "path");
  s.tags = strings(v, "tags");
  s.enabled = boolean(v, "enabled", true);
  return s;
}

kong_route to_route(const rj::Value& v) {
  kong_route r;
  r.id = str(v, "id");
  r.name = str(v, "name");
  r.service_id = ref_id(v, "service");
  r.paths = strings(v, "paths");
  r.methods = strings(v, "methods");
  for (auto& m : r.methods)
    for (auto& c : m)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  r.hosts = strings(v, "hosts");
  r.protocols = strings(v, "protocols");
  r.tags = strings(v, "tags");
  return r;
}

kong_plugin to_plugin(const rj::Value& v) {
  kong_plugin p;
  p.id = str(v, "id");
  p.name = str(v, "name");
  p.service_id = ref_id(v, "service");
  p.route_id = ref_id(v, "route");
  p.consumer_id = ref_id(v, "consumer");
  p.enabled = boolean(v, "enabled", true);
  p.tags = strings(v, "tags");
  return p;
}

template <class T, class Convert>
kong_page<T> parse_page(std::string_view body, Convert convert) {
  kong_page<T> page;
  rj::Document doc;
  if (const auto parsed = core::json::parse(doc, body); !parsed) {
    page.error =
        parsed.too_deep ? parsed.message() : std::string("invalid JSON: ") + rj::GetParseError_En(parsed.result.Code());
    return page;
  }
  if (!doc.IsObject()) {
    page.error = "not a JSON object";
    return page;
  }
  auto data = doc.FindMember("data");
  if (data == doc.MemberEnd() || !data->value.IsArray()) {
    page.error = "no \"data\" array";
    return page;
  }
  for (const auto& v : data->value.GetArray()) {
    if (!v.IsObject()) continue;
    T item = convert(v);
    if (!item.id.empty()) page.data.push_back(std::move(item));
  }
  page.next = str(doc, "next");
  page.offset = str(doc, "offset");
  return page;
}

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

}  // namespace

kong_page<kong_service> parse_services_page(std::string_view body) {
  return parse_page<kong_service>(body, to_service);
}
kong_page<kong_route> parse_routes_page(std::string_view body) { return parse_page<kong_route>(body, to_route); }
kong_page<kong_plugin> parse_plugins_page(std::string_view body) { return parse_page<kong_plugin>(body, to_plugin); }

std::string next_page_url(std::string_view admin_base, std::string_view resource, std::string_view next,
                          std::string_view offset) {
  while (!admin_base.empty() && admin_base.back() == '/') admin_base.remove_suffix(1);
  if (!next.empty()) {
    if (next.rfind("http://", 0) == 0 || next.rfind("https://", 0) == 0) return std::string(next);
    std::string url(admin_base);
    if (next.front() != '/') url += '/';
    url += next;
    return url;
  }
  if (offset.empty()) return {};
  return std::string(admin_base) + std::string(resource) + "?offset=" + percent_encode(offset);
}

}  // namespace aforo::core::discovery
