// Reading discovery facts from a usage event; see event_observation.hpp.
#include "core/discovery/event_observation.hpp"

#include <rapidjson/document.h>

namespace aforo::core::discovery {
namespace {

namespace rj = rapidjson;

std::string str(const rj::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace

std::optional<traffic_observation> observation_from_event(std::string_view event_json) {
  rj::Document doc;
  doc.Parse(event_json.data(), event_json.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  traffic_observation o;
  o.method = str(doc, "httpMethod");
  o.path = str(doc, "endpointPath");
  if (o.method.empty() || o.path.empty()) return std::nullopt;
  if (auto md = doc.FindMember("metadata"); md != doc.MemberEnd() && md->value.IsObject()) {
    o.service = str(md->value, "service");
    o.route = str(md->value, "route");
  }
  return o;
}

}  // namespace aforo::core::discovery
