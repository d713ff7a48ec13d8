// Reading discovery facts from a usage event; see event_observation.hpp.
#include "core/discovery/event_observation.hpp"

#include <rapidjson/document.h>

#include "core/json/bounded_parse.hpp"

namespace aforo::core::discovery {
namespace {

namespace rj = rapidjson;

std::string_view str(const rj::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace

std::optional<traffic_observation> observation_from_event(std::string_view event_json) {
  rj::Document doc;
  if (!core::json::parse(doc, event_json) || !doc.IsObject()) return std::nullopt;
  std::string_view service, route;
  if (auto md = doc.FindMember("metadata"); md != doc.MemberEnd() && md->value.IsObject()) {
    service = str(md->value, "service");
    route = str(md->value, "route");
  }
  traffic_observation o;
  if (!observation_from_fields(str(doc, "httpMethod"), str(doc, "endpointPath"), service, route, o)) return std::nullopt;
  return o;
}

bool observation_from_fields(std::string_view method, std::string_view path, std::string_view service,
                             std::string_view route, traffic_observation& out) {
  if (method.empty() || path.empty()) return false;
  out.method.assign(method);
  out.path.assign(path);
  out.service.assign(service);
  out.route.assign(route);
  return true;
}

}  // namespace aforo::core::discovery
