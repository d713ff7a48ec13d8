// From Aforo's v2.2 Kong plugin config to this project's; see kong_migration.hpp.
#include "config/kong_migration.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "config/units.hpp"

namespace aforo::config {

namespace {

constexpr const char* plugin_name = "aforo-metering";

struct found_plugin {
  YAML::Node config;
  std::string scope_kind;  // "", "service", "route", "consumer"
  std::string scope_name;
};

std::string name_of(const YAML::Node& n) {
  if (!n || !n.IsMap()) return {};
  for (const char* k : {"name", "id"})
    if (n[k] && n[k].IsScalar()) return n[k].Scalar();
  return {};
}

// Admin API scope: {"service":{"id":"..."}} or null; declarative: a name string.
void admin_scope(const YAML::Node& p, found_plugin& f) {
  for (const char* k : {"service", "route", "consumer"}) {
    const YAML::Node s = p[k];
    if (!s || s.IsNull()) continue;
    f.scope_kind = k;
    f.scope_name = s.IsScalar() ? s.Scalar() : name_of(s);
  }
}

void collect(const YAML::Node& list, const std::string& kind, const std::string& owner,
             std::vector<found_plugin>& out) {
  if (!list || !list.IsSequence()) return;
  for (const auto& p : list) {
    if (!p.IsMap() || !p["name"] || !p["name"].IsScalar() || p["name"].Scalar() != plugin_name) continue;
    found_plugin f;
    f.config = p["config"] && p["config"].IsMap() ? p["config"] : YAML::Node(YAML::NodeType::Map);
    f.scope_kind = kind;
    f.scope_name = owner;
    if (kind.empty()) admin_scope(p, f);
    out.push_back(f);
  }
}

std::vector<found_plugin> find_plugins(const YAML::Node& root) {
  std::vector<found_plugin> out;
  if (root.IsSequence()) {
    collect(root, "", "", out);
  } else if (root.IsMap()) {
    if (root["name"] && root["name"].IsScalar()) {
      YAML::Node list(YAML::NodeType::Sequence);
      list.push_back(root);
      collect(list, "", "", out);
    }
    collect(root["data"], "", "", out);
    collect(root["plugins"], "", "", out);
    for (const char* kind : {"services", "routes", "consumers"}) {
      const YAML::Node owners = root[kind];
      if (!owners || !owners.IsSequence()) continue;
      const std::string singular(kind, std::char_traits<char>::length(kind) - 1);
      for (const auto& o : owners) {
        const std::string owner = o["name"] && o["name"].IsScalar()           ? o["name"].Scalar()
                                  : o["username"] && o["username"].IsScalar() ? o["username"].Scalar()
                                                                              : name_of(o);
        collect(o["plugins"], singular, owner, out);
        if (std::string(kind) == "services" && o["routes"] && o["routes"].IsSequence())
          for (const auto& r : o["routes"]) collect(r["plugins"], "route", name_of(r), out);
      }
    }
  }
  return out;
}

bool has(const YAML::Node& c, const char* k) { return c[k] && !c[k].IsNull(); }
std::string text(const YAML::Node& c, const char* k) {
  return has(c, k) && c[k].IsScalar() ? c[k].Scalar() : std::string();
}
bool truthy(const YAML::Node& c, const char* k, bool dflt) {
  if (!has(c, k) || !c[k].IsScalar()) return dflt;
  return c[k].Scalar() == "true";
}
std::optional<double> number(const YAML::Node& c, const char* k) {
  if (!has(c, k) || !c[k].IsScalar()) return std::nullopt;
  try {
    std::size_t used = 0;
    const double v = std::stod(c[k].Scalar(), &used);
    if (used != c[k].Scalar().size() || !std::isfinite(v) || v < 0) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// scheme://host[:port] of a URL, or empty when it is not an http(s) URL.
std::string origin_of(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos || (url.compare(0, scheme, "http") != 0 && url.compare(0, scheme, "https") != 0))
    return {};
  const auto path = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, path);
}
bool has_path(const std::string& url) {
  const auto scheme = url.find("://");
  const auto path = url.find('/', scheme + 3);
  return path != std::string::npos && path + 1 < url.size();
}

std::string duration_of(double amount, double ms_per_unit) {
  return format_duration(std::chrono::milliseconds(std::max<long long>(std::llround(amount * ms_per_unit), 1)));
}

// The fields of Aforo's v2.2 plugin (docs/design/event-fields.md#aforo-plugin-v22) this converter reads; others under
// its prefixes are noted.
const std::set<std::string, std::less<>> sidecar_fields = {"aforo_endpoint",
                                                           "api_key",
                                                           "tenant_id",
                                                           "margin_guard_enabled",
                                                           "margin_guard_url",
                                                           "margin_guard_cache_ttl",
                                                           "margin_guard_timeout_ms",
                                                           "margin_guard_fail_open",
                                                           "preflight_quota_enabled",
                                                           "preflight_quota_url",
                                                           "preflight_quota_cache_ttl",
                                                           "preflight_quota_timeout_ms",
                                                           "preflight_quota_fail_open"};
const std::map<std::string, std::string, std::less<>> renamed = {
    {"exclude_paths", "exclude_paths"},
    {"exclude_status_codes", "exclude_status_codes"},
    {"status_outcomes", "status_outcomes"},
    {"product_type", "product_type"},
    {"customer_id_jwt_claim", "customer_id_jwt_claim"},
    {"customer_id_jwt_exclude_claims", "customer_id_jwt_exclude_claims"},
    {"default_metric", "metric_name"}};
const std::map<std::string, std::string, std::less<>> not_carried = {
    {"include_metadata",
     "this plugin always sends metadata {gateway, service, route, consumer, request_bytes, response_bytes}"},
    {"grpc_enabled",
     "gRPC detection (grpcService/grpcMethod) is not in this plugin yet: gRPC calls are metered as product_type"},
    {"grpc_path_prefix", "see grpc_enabled"},
    {"graphql_enabled", "GraphQL detection (gqlOperationType) is not in this plugin yet"},
    {"graphql_path_pattern", "see graphql_enabled"},
    {"websocket_enabled", "WebSocket detection (wsConnectionId) is not in this plugin yet"},
    {"mcp_enabled", "MCP tools/call detection (toolName, agentId) is not in this plugin yet"},
    {"mcp_product_id", "see mcp_enabled"}};

YAML::Node plugin_block(const found_plugin& f, const migration_options& opts, bool enforce,
                        std::vector<std::string>& notes, const std::string& where) {
  const YAML::Node& c = f.config;
  YAML::Node p(YAML::NodeType::Map);
  p["name"] = plugin_name;
  if (!f.scope_kind.empty() && !f.scope_name.empty()) p[f.scope_kind] = f.scope_name;
  YAML::Node out(YAML::NodeType::Map);
  out["sidecar_url"] = opts.sidecar_url;
  // Aforo's plugin takes the customer from a verified JWT claim or the consumer, never a header.
  out["customer_id_source"] = "consumer";
  out["entitlement_enabled"] = enforce;
  for (const auto& kv : c) {
    const std::string k = kv.first.Scalar();
    if (sidecar_fields.count(k)) continue;
    if (k == "status_outcomes" && kv.second.IsMap()) {
      // Status codes stay string keys (Kong's map type): emitted as !!str 404, not the integer 404.
      YAML::Node m(YAML::NodeType::Map);
      for (const auto& e : kv.second) {
        YAML::Node status(e.first.Scalar());
        status.SetTag("tag:yaml.org,2002:str");
        m[status] = e.second;
      }
      out["status_outcomes"] = m;
    } else if (const auto r = renamed.find(k); r != renamed.end()) {
      if (!kv.second.IsNull()) out[r->second] = kv.second;
    } else if (k == "flush_count") {
      if (const auto n = number(c, "flush_count")) out["batch_size"] = std::clamp<long long>(std::llround(*n), 1, 1000);
    } else if (k == "flush_interval_ms") {
      if (const auto n = number(c, "flush_interval_ms"))
        out["flush_interval"] = std::clamp<long long>(std::llround(*n), 10, 60000);
    } else if (const auto nc = not_carried.find(k); nc != not_carried.end()) {
      notes.push_back(where + k + ": not carried over: " + nc->second);
    } else if (k.rfind("rate_limit_", 0) == 0) {
      notes.push_back(where + k +
                      ": not carried over: the sidecar forwards Aforo's X-RateLimit-* headers from the "
                      "quota answer itself (no plugin field)");
    } else if (k.rfind("jwt_", 0) == 0 || k.rfind("preflight_quota_", 0) == 0 || k.rfind("margin_guard_", 0) == 0) {
      notes.push_back(where + k + ": not carried over: no equivalent setting; check it by hand");
    } else {
      notes.push_back(where + k + ": not an Aforo v2.2 field this converter knows; not carried over");
    }
  }
  if (truthy(c, "preflight_quota_fail_open", true) != truthy(c, "margin_guard_fail_open", true))
    notes.push_back(where +
                    "preflight_quota_fail_open and margin_guard_fail_open differ; this plugin has one "
                    "fallback_on_error (set to block)");
  const bool open = truthy(c, "preflight_quota_fail_open", true) && truthy(c, "margin_guard_fail_open", true);
  out["fallback_on_error"] = open ? "allow" : "block";
  p["config"] = out;
  return p;
}

}  // namespace

migration_result migrate_kong_config(const std::string& input, const migration_options& opts) {
  migration_result r;
  YAML::Node root;
  try {
    root = YAML::Load(input);
  } catch (const YAML::Exception& e) {
    r.errors.push_back("cannot read " + opts.source_name + " as YAML or JSON: line " + std::to_string(e.mark.line + 1) +
                       ": " + e.msg);
    return r;
  }
  const auto plugins = find_plugins(root);
  if (plugins.empty()) {
    r.errors.push_back("no aforo-metering plugin in " + opts.source_name +
                       " (looked at plugins, services, routes, consumers and an Admin API answer's data)");
    return r;
  }
  const YAML::Node& c = plugins.front().config;

  // Sidecar settings: from the first plugin; the others must agree.
  for (std::size_t i = 1; i < plugins.size(); ++i)
    for (const char* k : {"aforo_endpoint", "tenant_id", "api_key", "margin_guard_url", "preflight_quota_url"})
      if (text(plugins[i].config, k) != text(c, k))
        r.notes.push_back(std::string(k) +
                          " differs between the aforo-metering plugins; the sidecar uses the first one's");

  const bool quota = truthy(c, "preflight_quota_enabled", false);
  const bool margin = truthy(c, "margin_guard_enabled", false);
  YAML::Node sc(YAML::NodeType::Map);
  YAML::Node aforo(YAML::NodeType::Map);
  const std::string endpoint = text(c, "aforo_endpoint");
  const std::string origin = origin_of(endpoint);
  if (!endpoint.empty() && origin.empty())
    r.notes.push_back("aforo_endpoint '" + endpoint + "' is not an http(s) URL; aforo.* left at defaults");
  if (!text(c, "tenant_id").empty()) aforo["tenant_id"] = text(c, "tenant_id");
  if (!origin.empty()) {
    aforo["ingest_url"] = has_path(endpoint) ? endpoint : origin + "/v1/ingest/batch";
    aforo["control_url"] = origin;
    if (!has_path(endpoint))
      r.notes.push_back("aforo.ingest_url: aforo_endpoint has no path; set to " + origin +
                        "/v1/ingest/batch (check it: `aforo-sidecar test-event` posts one event there)");
  }
  if (aforo.size() > 0) sc["aforo"] = aforo;

  YAML::Node ent(YAML::NodeType::Map);
  ent["source"] = "aforo_api";
  YAML::Node api(YAML::NodeType::Map);
  if (const auto u = origin_of(text(c, "preflight_quota_url")); !u.empty() && u != origin) api["url"] = u;
  if (const auto u = origin_of(text(c, "margin_guard_url")); !u.empty() && u != origin) api["margin_url"] = u;
  if (quota || margin) {
    api["quota_check"] = quota;
    api["margin_check"] = margin;
  } else {
    r.notes.push_back(
        "neither preflight_quota_enabled nor margin_guard_enabled: the new plugin has entitlement_enabled "
        "false, so the sidecar is never asked for decisions (metering only)");
  }
  if (!text(c, "default_metric").empty()) api["metric"] = text(c, "default_metric");
  if (const auto n = number(c, "preflight_quota_cache_ttl")) api["quota_ttl"] = duration_of(*n, 1000);
  if (const auto n = number(c, "margin_guard_cache_ttl")) api["margin_ttl"] = duration_of(*n, 1000);
  std::optional<double> timeout_ms = number(c, "preflight_quota_timeout_ms");
  if (const auto m = number(c, "margin_guard_timeout_ms")) timeout_ms = std::max(timeout_ms.value_or(0), *m);
  if (timeout_ms) {
    api["timeout"] = duration_of(*timeout_ms, 1);
    api["wait"] = duration_of(std::min(*timeout_ms, 30.0), 1);
  }
  if (api.size() > 0) ent["aforo_api"] = api;
  sc["entitlements"] = ent;

  YAML::Emitter side;
  side << sc;
  r.sidecar_yaml = "# sidecar.yaml from " + opts.source_name +
                   " (Aforo's aforo-metering v2.2) by aforo-sidecar migrate-kong-config.\n"
                   "# The API key is not here: it comes from the environment (AFORO_API_KEY) or aforo.api_key_file.\n" +
                   std::string(side.c_str()) + "\n";

  YAML::Node list(YAML::NodeType::Sequence);
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    const auto& f = plugins[i];
    const std::string where = plugins.size() > 1 ? "plugin " + std::to_string(i + 1) + ": " : "";
    list.push_back(plugin_block(f, opts, quota || margin, r.notes, where));
  }
  YAML::Node doc(YAML::NodeType::Map);
  doc["plugins"] = list;
  YAML::Emitter pl;
  pl << doc;
  r.plugin_yaml = "# kong.yml: replaces the aforo-metering plugin entries of " + opts.source_name +
                  " (scoped entries keep their service / route / consumer).\n" + std::string(pl.c_str()) + "\n";

  const std::string key = text(c, "api_key");
  r.env = "# Environment for aforo-sidecar (systemd EnvironmentFile=, docker --env-file); keep the file mode 0600.\n";
  if (key.empty()) {
    r.env += "# No api_key in " + opts.source_name + ": set Aforo's API key here.\nAFORO_API_KEY=\n";
  } else if (key.rfind("{vault://", 0) == 0) {
    r.env += "# Kong read api_key from " + key + ": set AFORO_API_KEY from the same vault.\nAFORO_API_KEY=\n";
  } else if (opts.reveal_secrets) {
    r.env += "AFORO_API_KEY=" + key + "\n";
  } else {
    const std::string tail = key.size() >= 12 ? " (it ends in ..." + key.substr(key.size() - 4) + ")" : "";
    r.env +=
        "# Set to the api_key of " + opts.source_name + tail + "; --reveal-secrets prints it here.\nAFORO_API_KEY=\n";
  }
  if (plugins.size() > 1)
    r.notes.push_back(std::to_string(plugins.size()) + " aforo-metering plugins found; each has a block");
  return r;
}

}  // namespace aforo::config
