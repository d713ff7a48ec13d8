// Kong Admin API responses (GET /services, /routes, /plugins): the entities the catalog needs and
// Kong's pagination shape {"data":[...],"next":"/services?offset=...","offset":"..."}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace aforo::core::discovery {

struct kong_service {
  std::string id;
  std::string name;  ///< empty when the service is unnamed
  std::string host;
  std::string protocol;
  std::string path;               ///< upstream path, empty when null
  std::vector<std::string> tags;  ///< as declared, in order
  bool enabled = true;

  /// The catalog's API name: the service name, else its id (what the plugin sends too).
  [[nodiscard]] const std::string& api_name() const { return name.empty() ? id : name; }
};

struct kong_route {
  std::string id;
  std::string name;
  std::string service_id;            ///< empty for a route without a service
  std::vector<std::string> paths;    ///< plain prefixes or `~` regexes; empty = any path
  std::vector<std::string> methods;  ///< upper case; empty = any method
  std::vector<std::string> hosts;
  std::vector<std::string> protocols;
  std::vector<std::string> tags;

  /// How the plugin names the route: its name, else its id.
  [[nodiscard]] const std::string& label() const { return name.empty() ? id : name; }
};

struct kong_plugin {
  std::string id;
  std::string name;        ///< "aforo-metering", "rate-limiting", ...
  std::string service_id;  ///< scope; all empty = global
  std::string route_id;
  std::string consumer_id;
  bool enabled = true;
  std::vector<std::string> tags;
};

/// One page of a Kong list endpoint.
template <class T>
struct kong_page {
  std::vector<T> data;
  std::string next;    ///< Kong's `next` ("/services?offset=..."), empty on the last page
  std::string offset;  ///< Kong's `offset`, empty on the last page
  std::string error;   ///< non-empty when the body is not a Kong list page
  [[nodiscard]] bool ok() const { return error.empty(); }
};

/// Parses a page; entities missing an `id` are skipped, unknown fields and nulls are ignored.
/// Pure; thread-safe.
[[nodiscard]] kong_page<kong_service> parse_services_page(std::string_view body);
[[nodiscard]] kong_page<kong_route> parse_routes_page(std::string_view body);
[[nodiscard]] kong_page<kong_plugin> parse_plugins_page(std::string_view body);

/// The absolute URL of the next page, or empty when there is none. `admin_base` is
/// discovery.kong_admin_url (any trailing '/' ignored); `resource` is "/services" etc. An absolute
/// `next` is used as is; a relative one is appended to the base; with no `next` but an `offset`,
/// `{base}{resource}?offset={percent-encoded offset}`. Pure; thread-safe.
[[nodiscard]] std::string next_page_url(std::string_view admin_base, std::string_view resource, std::string_view next,
                                        std::string_view offset);

/// What one complete poll of the Admin API returned.
struct kong_admin_state {
  std::vector<kong_service> services;
  std::vector<kong_route> routes;
  std::vector<kong_plugin> plugins;
};

}  // namespace aforo::core::discovery
