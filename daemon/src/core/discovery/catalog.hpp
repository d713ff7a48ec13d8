// The API catalog: one API per Kong service, its operations (method + path template) joined from
// traffic and from the Kong Admin API, a version per API that moves when its set of operations
// changes, entry states, and a cap on operations per service. Pure: every call takes `now`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/discovery/kong_admin.hpp"

namespace aforo::core::discovery {

/// Milliseconds since the Unix epoch (UTC); the catalog's only notion of time.
using epoch_ms = std::int64_t;

/// The tag that marks a service as a monetized product. Every tag is kept as is in the catalog.
inline constexpr std::string_view monetized_tag = "aforo:monetized";
/// The method of an operation declared by a route that matches any method.
inline constexpr std::string_view any_method = "*";

struct catalog_limits {
  epoch_ms stale_after_ms = 24LL * 3600 * 1000;    ///< discovery.stale_after
  std::uint32_t max_operations_per_service = 500;  ///< discovery.max_operations_per_service
  std::uint32_t max_apis = 2000;                   ///< bound on APIs (services) held
};

/// NEW: first seen within the last stale_after. CHANGED: not new, but its source or declaration
/// changed (operation) or its version moved (API) within the last stale_after. STALE: no traffic and
/// no change of declaration for longer than stale_after (declared but unseen, or seen but no
/// longer declared); an API is STALE when it has operations and all are. UNCHANGED: the rest.
enum class entry_state { new_entry, changed, unchanged, stale };
[[nodiscard]] std::string_view to_string(entry_state s);

/// traffic: seen in usage events only; admin: declared by a Kong route, not seen; both.
enum class operation_source { traffic, admin, both };
[[nodiscard]] std::string_view to_string(operation_source s);

struct operation {
  std::string method;                ///< upper case, or "*" (declared by a route with no methods)
  std::string path;                  ///< template: /users/{id}, or a route path as declared
  std::string route;                 ///< the Kong route (name, else id) it came through, when known
  epoch_ms first_seen_ms = 0;        ///< entered the catalog (by traffic or declaration)
  epoch_ms last_seen_ms = 0;         ///< last request seen; 0 = never seen in traffic
  std::uint64_t count = 0;           ///< requests seen
  bool declared = false;             ///< the Admin API declares it now
  epoch_ms declared_changed_ms = 0;  ///< when `declared` last flipped; 0 = never declared
  epoch_ms changed_ms = 0;           ///< last change of source or declaration

  [[nodiscard]] operation_source source() const {
    return !declared ? operation_source::traffic : count > 0 ? operation_source::both : operation_source::admin;
  }
  /// The latest of last traffic, declaration change and first seen.
  [[nodiscard]] epoch_ms last_activity_ms() const;
};

/// A Kong route as the catalog keeps it, to template traffic with the route's own paths.
struct route_info {
  std::string id;
  std::string name;
  std::vector<std::string> paths;
  std::vector<std::string> methods;
};

struct api {
  std::string name;           ///< Kong service name (else id, or the name traffic reported)
  std::string service_id;     ///< Kong service id, when the Admin API told it
  std::uint64_t version = 0;  ///< 0 until the first seal; then moves on every change of the op set
  epoch_ms first_seen_ms = 0;
  epoch_ms version_changed_ms = 0;
  bool declared = false;             ///< the Admin API lists the service now
  std::vector<std::string> tags;     ///< service tags, as declared
  std::vector<std::string> hosts;    ///< hosts of its routes, sorted, unique
  std::vector<std::string> plugins;  ///< enabled plugins applying to it (global, service or its routes)
  std::vector<route_info> routes;
  std::uint64_t folded = 0;   ///< requests counted into an existing operation because of the cap
  std::uint64_t dropped = 0;  ///< new operations not added because of the cap
  std::map<std::pair<std::string, std::string>, operation> operations;  ///< by (path, method)

  [[nodiscard]] bool monetized() const;
  /// Whether aforo-metering applies to the service (globally, on it, or on one of its routes).
  [[nodiscard]] bool metered() const;
};

/// What the traffic side knows of one request (from an accepted usage event).
struct traffic_observation {
  std::string service;  ///< Kong service name or id (metadata.service); may be empty
  std::string route;    ///< Kong route name or id (metadata.route); may be empty
  std::string method;   ///< httpMethod
  std::string path;     ///< endpointPath, raw
  /// The path names a protocol operation (a gRPC method, a GraphQL operation; event_observation.hpp):
  /// kept as it is, neither templated nor replaced by the route's path.
  bool exact = false;
};

enum class observe_result {
  counted,  ///< an existing operation was counted
  added,    ///< a new operation was added
  folded,   ///< at the cap: counted into an existing operation whose template covers it
  dropped,  ///< at the cap and nothing covers it (or no room for a new API): not recorded
  ignored,  ///< no service or route to attribute it to, or no method / path
};

/// Threading: not thread-safe; one owner (the discovery service, on its io thread).
class catalog {
 public:
  explicit catalog(catalog_limits limits = {}) : limits_(limits) {}

  void set_limits(const catalog_limits& limits) { limits_ = limits; }
  [[nodiscard]] const catalog_limits& limits() const { return limits_; }

  /// Records one request. New operations and APIs take effect in the next seal().
  observe_result observe(const traffic_observation& o, epoch_ms now);

  /// Replaces what the Admin API declares with a complete poll: APIs, tags, hosts, plugins, routes
  /// and declared operations (route paths x methods; catch-all paths declare none). Operations no
  /// longer declared and never seen are removed; seen ones stay, undeclared. Returns the number of
  /// operations that could not be added because of the cap.
  std::uint64_t apply_admin(const kong_admin_state& state, epoch_ms now);

  /// Cuts the pending changes: an API gets version 1 on its first seal and one more for every seal
  /// after a change of its set of operations. The catalog revision moves by one when any API's
  /// version moved or its tags, plugins or hosts changed. Returns true when the revision moved.
  bool seal(epoch_ms now);

  [[nodiscard]] std::uint64_t revision() const { return revision_; }
  [[nodiscard]] const std::map<std::string, api>& apis() const { return apis_; }
  [[nodiscard]] std::size_t operation_count() const;
  /// Changes (new operations, counts) since the last mark_saved(): the owner persists when true.
  [[nodiscard]] bool unsaved() const { return unsaved_; }
  void mark_saved() { unsaved_ = false; }

  [[nodiscard]] entry_state state_of(const operation& op, epoch_ms now) const;
  [[nodiscard]] entry_state state_of(const api& a, epoch_ms now) const;

  /// Restores a persisted catalog (see catalog_json.hpp).
  void restore(std::map<std::string, api> apis, std::uint64_t revision);

 private:
  api* find_api(const std::string& service, const std::string& route, const route_info** route_out);
  api* create_api(const std::string& name, epoch_ms now);
  /// Makes room for one more operation; false when the API is at the cap with nothing evictable.
  bool make_room(api& a, epoch_ms now);
  void rebuild_index();

  catalog_limits limits_;
  std::map<std::string, api> apis_;
  std::map<std::string, bool> ops_changed_;                      // API name -> set of operations changed since seal
  std::map<std::string, std::string, std::less<>> service_ids_;  // Kong service id -> API name
  std::map<std::string, std::pair<std::string, std::size_t>, std::less<>> routes_;  // route name/id -> (API, index)
  bool meta_changed_ = false;
  bool unsaved_ = false;
  std::uint64_t revision_ = 0;
  // observe()'s scratch, kept so that a run of requests to one path allocates nothing: the last
  // request path templated without a route, its template (template_path is pure), the lookup key.
  std::string last_request_path_;
  std::string last_template_;
  std::pair<std::string, std::string> key_;
};

}  // namespace aforo::core::discovery
