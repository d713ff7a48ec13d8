// What discovery reads from one accepted usage event: service, route, method and endpoint path.
#pragma once

#include <optional>
#include <string_view>

#include "core/discovery/catalog.hpp"

namespace aforo::core::discovery {

/// Reads `metadata.service`, `metadata.route`, `httpMethod` and `endpointPath` from an accepted
/// event's JSON (core/pipeline/event_validation.hpp accepted_event::json). nullopt when the JSON is
/// not an object or lacks the method or the path; service and route may both be empty (the plugin
/// sends them only with discovery_enabled), which catalog::observe ignores. Pure; thread-safe.
[[nodiscard]] std::optional<traffic_observation> observation_from_event(std::string_view event_json);

}  // namespace aforo::core::discovery
