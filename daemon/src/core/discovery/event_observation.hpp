// What discovery reads from one accepted usage event: service, route, method and endpoint path.
#pragma once

#include <optional>
#include <string_view>

#include "core/discovery/catalog.hpp"
#include "core/pipeline/event_validation.hpp"

namespace aforo::core::discovery {

/// Reads `metadata.service`, `metadata.route`, `httpMethod` and `endpointPath` from an accepted
/// event's JSON (core/pipeline/event_validation.hpp accepted_event::json). nullopt when the JSON is
/// not an object or lacks the method or the path; service and route may both be empty (the plugin
/// sends them only with discovery_enabled), which catalog::observe ignores. Pure; thread-safe.
[[nodiscard]] std::optional<traffic_observation> observation_from_event(std::string_view event_json);

/// The same from fields already read (accepted_event's http_method, endpoint_path, service and route),
/// into `out`, whose strings keep their capacity from one call to the next. Returns false (nothing
/// to observe) when the method or the path is empty, as observation_from_event answers nullopt.
bool observation_from_fields(std::string_view method, std::string_view path, std::string_view service,
                             std::string_view route, traffic_observation& out);

/// The operation an accepted event is, into `out` (its strings keep their capacity between calls):
/// a GRPC_API event is the gRPC method `POST /<grpcService>/<grpcMethod>`; a GRAPHQL_API event the
/// operation `<gqlOperationType> <endpointPath templated>#<gqlOperationName>` (no `#name` for an
/// anonymous one), both kept exactly (traffic_observation::exact), whatever the route's paths; any
/// other event is its HTTP method and endpoint path, as observation_from_fields. Returns false when
/// there is nothing to observe. Pure; thread-safe.
bool observation_from_accepted(const core::accepted_event& e, traffic_observation& out);

}  // namespace aforo::core::discovery
