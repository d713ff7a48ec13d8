// Maps a request (service, route, method, path) to the snapshot's feature rule, or honours the
// plugin's explicit feature.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/entitlements/snapshot.hpp"

namespace aforo::core::entitlements {

/// What the plugin knows about a request.
struct route_info {
  std::string_view service;
  std::string_view route;
  std::string_view method;
  std::string_view path;         ///< a query string after '?' is ignored
  std::string_view operation{};  ///< GraphQL operation name, MCP tool or gRPC Service/Method; may be empty
};

/// The feature a request counts against; `feature` empty = not mapped (no entitlement applies).
struct resolved_feature {
  std::string_view feature;
  const feature_rule* rule = nullptr;  ///< metric and unit cost; null when none is known
};

/// True when path is prefix or continues it at a '/' boundary: "/v1/search" matches
/// "/v1/search" and "/v1/search/x" but not "/v1/searchx". An empty prefix matches anything.
[[nodiscard]] bool path_has_prefix(std::string_view path, std::string_view prefix);

/// Whether one rule matches; empty fields match anything, methods compare case-insensitively, a
/// rule's operation only the same operation exactly (a request without one matches no such rule).
[[nodiscard]] bool rule_matches(const rule_match& m, const route_info& r);

/// The first matching rule in file order, or null.
[[nodiscard]] const feature_rule* map_feature(std::span<const feature_rule> rules, const route_info& r);

/// Which other requests of the same service, route, method and operation map to the same feature as this
/// one (what a decision lease may cover): every path (route), the paths under a prefix, or only
/// this path.
struct mapping_scope {
  enum class kind : std::uint8_t { route, prefix, path };
  kind scope = kind::route;
  std::string_view prefix;  ///< for kind::prefix: the matched rule's path_prefix (points into rules)
};

/// The scope of resolve_feature's answer among requests differing only in path. Among the rules
/// whose service, route, methods and operation match ("candidates"): an explicit feature, or a first
/// candidate without a path prefix (it matches every path), or no candidate at all -> route. A
/// request matched by a candidate with prefix P -> prefix P, unless an earlier candidate's prefix
/// lies under P (some paths under P map to that one instead) -> path. Unmatched while candidates
/// exist -> path.
[[nodiscard]] mapping_scope scope_of_mapping(std::span<const feature_rule> rules,
                                             std::optional<std::string_view> explicit_feature, const route_info& r);

/// The explicit feature when given (its rule = the first rule naming that feature, for metric and
/// cost), else the first matching rule's feature. Pure; the result points into `rules`.
[[nodiscard]] resolved_feature resolve_feature(std::span<const feature_rule> rules,
                                               std::optional<std::string_view> explicit_feature, const route_info& r);

}  // namespace aforo::core::entitlements
