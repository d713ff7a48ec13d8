// Reading discovery facts from a usage event; see event_observation.hpp.
#include "core/discovery/event_observation.hpp"

#include <rapidjson/document.h>

#include "core/discovery/path_template.hpp"
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
  if (!observation_from_fields(str(doc, "httpMethod"), str(doc, "endpointPath"), service, route, o))
    return std::nullopt;
  return o;
}

bool observation_from_fields(std::string_view method, std::string_view path, std::string_view service,
                             std::string_view route, traffic_observation& out) {
  if (method.empty() || path.empty()) return false;
  out.method.assign(method);
  out.path.assign(path);
  out.service.assign(service);
  out.route.assign(route);
  out.exact = false;
  return true;
}

bool observation_from_accepted(const core::accepted_event& e, traffic_observation& out) {
  if (e.product_type == "GRPC_API" && !e.grpc_service.empty() && !e.grpc_method.empty()) {
    out.method.assign("POST");
    out.path.assign("/");
    out.path.append(e.grpc_service);
    out.path.push_back('/');
    out.path.append(e.grpc_method);
  } else if (e.product_type == "GRAPHQL_API" && !e.gql_operation_type.empty() && !e.endpoint_path.empty()) {
    out.method.assign(e.gql_operation_type);
    out.path = template_path(e.endpoint_path);
    if (!e.gql_operation_name.empty()) {
      out.path.push_back('#');
      out.path.append(e.gql_operation_name);
    }
  } else {
    return observation_from_fields(e.http_method, e.endpoint_path, e.service, e.route, out);
  }
  out.service.assign(e.service);
  out.route.assign(e.route);
  out.exact = true;
  return true;
}

}  // namespace aforo::core::discovery
