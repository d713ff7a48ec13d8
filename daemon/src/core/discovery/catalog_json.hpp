// The catalog as JSON: the view served at GET /v1/catalog and pushed to the control plane, and the
// state file kept in discovery.state_dir (exact, reloadable at start).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/discovery/catalog.hpp"

namespace aforo::core::discovery {

/// "2026-03-01T12:00:00.250Z". Pure.
[[nodiscard]] std::string iso8601_ms(epoch_ms t);

/// The served and pushed catalog:
/// `{"enabled":true,"revision":R,"generated_at":ISO,"stale_after_s":S,"apis":[{"name","service_id",
/// "version","state","first_seen","version_changed_at","declared","monetized","metered","tags",
/// "hosts","plugins","routes":[{"id","name","paths","methods"}],"folded_requests",
/// "dropped_operations","operations":[{"method","path","route","source","state","declared",
/// "first_seen","last_seen"|null,"count"}]}]}`. APIs by name, operations by (path, method).
/// `tenant_id` is added as "tenant_id" when non-empty. Pure.
[[nodiscard]] std::string catalog_view_json(const catalog& c, epoch_ms now, std::string_view tenant_id = {});

/// What GET /v1/catalog answers with discovery.enabled false.
[[nodiscard]] std::string disabled_catalog_json();

/// The state file: every field of the model, times in epoch milliseconds, plus the revision last
/// delivered to the control plane. Pure.
[[nodiscard]] std::string catalog_state_json(const catalog& c, std::uint64_t pushed_revision);

struct catalog_state {
  std::map<std::string, api> apis;
  std::uint64_t revision = 0;
  std::uint64_t pushed_revision = 0;
  std::string error;  ///< non-empty when the text is not a valid state file (then nothing else is set)
  [[nodiscard]] bool ok() const { return error.empty(); }
};

/// Parses a state file written by catalog_state_json; any problem rejects the whole file. Pure.
[[nodiscard]] catalog_state parse_catalog_state(std::string_view text);

}  // namespace aforo::core::discovery
