// From Aforo's v2.2 Kong plugin config to this project's; see kong_migration.hpp.
#include "config/kong_migration.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cctype>
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

bool has(const YAML::Node& c, const std::string& k) { return c[k] && !c[k].IsNull(); }
std::string text(const YAML::Node& c, const std::string& k) {
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

// scheme://host[:port] of an absolute http(s) URL, or empty when it is not one.
std::string origin_of(const std::string& url) {
  const auto u = boost::urls::parse_absolute_uri(url);
  if (!u || (u->scheme_id() != boost::urls::scheme::http && u->scheme_id() != boost::urls::scheme::https) ||
      !u->has_authority() || u->encoded_host().empty())
    return {};
  return std::string(u->scheme()) + "://" + std::string(u->encoded_host_and_port());
}
// An absolute URL without its user:password@ (a secret, never written to sidecar.yaml); as it is otherwise.
std::string without_userinfo(const std::string& url) {
  const auto u = boost::urls::parse_absolute_uri(url);
  if (!u || !u->has_userinfo()) return url;
  boost::urls::url copy(*u);
  copy.remove_userinfo();
  return std::string(copy.buffer());
}
bool has_userinfo(const std::string& url) {
  const auto u = boost::urls::parse_absolute_uri(url);
  return u && u->has_userinfo();
}
// Whether an absolute URL has a path past "/".
bool has_path(const std::string& url) {
  const auto u = boost::urls::parse_absolute_uri(url);
  return u && !u->encoded_path().empty() && u->encoded_path() != "/";
}

std::string duration_of(double amount, double ms_per_unit) {
  return format_duration(std::chrono::milliseconds(std::max<long long>(std::llround(amount * ms_per_unit), 1)));
}

// What becomes of each field of Aforo's v2.2 plugin (docs/design/event-fields.md#aforo-plugin-v22). The one
// list of v2.2 names is the plugin's compat.V22 (lua/kong/plugins/aforo-metering/compat.lua); the
// migrate-kong-config itest checks that each of its names has an outcome here.
//
// Read for the sidecar (sidecar.yaml, the environment); not in the plugin block.
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
                                                           "preflight_quota_cache_ttl_ms",
                                                           "preflight_quota_timeout_ms",
                                                           "preflight_quota_fail_open",
                                                           "preflight_quota_api_key"};
// Carried into the plugin block, under this plugin's name for it.
const std::map<std::string, std::string, std::less<>> carried = {
    {"exclude_paths", "exclude_paths"},
    {"exclude_status_codes", "exclude_status_codes"},
    {"customer_id_jwt_claim", "customer_id_jwt_claim"},
    {"customer_id_jwt_exclude_claims", "customer_id_jwt_exclude_claims"},
    {"quantity_header", "quantity_header"},
    {"default_metric", "metric_name"},
    {"include_metadata", "discovery_enabled"},
    {"grpc_enabled", "grpc_enabled"},
    {"graphql_enabled", "graphql_enabled"},
    {"websocket_enabled", "websocket_enabled"},
    {"mcp_enabled", "mcp_enabled"},
    {"mcp_product_id", "mcp_product_id"}};
constexpr const char* metric_mapping =
    "the metric of a request comes from the sidecar's entitlement snapshot `features` (match service, route, "
    "method, path -> metric), else the plugin's metric_name: write these mappings there";
constexpr const char* in_plugin_jwt =
    "this plugin verifies no token: put Kong's jwt (or openid-connect) plugin on the route; "
    "customer_id_jwt_claim reads the claim of the token it verified";
constexpr const char* redis = "the sidecar counts in its own Redis: sidecar.yaml cache.redis";
// Not carried over: named in a note with the reason.
const std::map<std::string, std::string, std::less<>> not_carried = {
    {"metric_name_pattern", metric_mapping},
    {"metric_mappings", metric_mapping},
    {"mappings_url", metric_mapping},
    {"mappings_refresh_seconds", metric_mapping},
    {"mappings_timeout_ms", metric_mapping},
    {"metric_header", metric_mapping},
    {"quantity_source",
     "the quantity is the plugin's quantity_header (X-Aforo-Quantity) from the upstream "
     "response, else 1"},
    {"rate_limit_enabled",
     "limits come from the sidecar's entitlements (entitlements.source aforo_api: Aforo's "
     "quota check), counted in its Redis (cache.redis)"},
    {"rate_limit_headers",
     "the sidecar forwards Aforo's X-RateLimit-* headers from the quota answer itself "
     "(no plugin field)"},
    {"rate_limit_redis_host", redis},
    {"rate_limit_redis_port", redis},
    {"rate_limit_redis_password", redis},
    {"rate_limit_redis_timeout_ms", redis},
    {"jwt_validation_enabled", in_plugin_jwt},
    {"jwt_issuer", in_plugin_jwt},
    {"jwt_jwks_uri", in_plugin_jwt},
    {"jwt_public_key", in_plugin_jwt},
    {"jwt_secret_is_base64", in_plugin_jwt},
    {"jwt_allow_unverified_signature", in_plugin_jwt},
    {"jwt_redis_host", in_plugin_jwt},
    {"jwt_redis_port", in_plugin_jwt},
    {"grpc_product_id", "not needed: the sidecar knows the tenant's products"},
    {"graphql_product_id", "not needed: the sidecar knows the tenant's products"},
    {"websocket_product_id", "not needed: the sidecar knows the tenant's products"}};

// Aforo's productType values the plugin's product_type takes; only the first two are sent as they are.
const std::set<std::string, std::less<>> product_types = {"API",      "AGENTIC_API", "AI_AGENT",      "MCP_SERVER",
                                                          "GRPC_API", "GRAPHQL_API", "WEBSOCKET_API", "MQTT_BROKER"};

// A v2.2 graphql_path_pattern is a path pattern searched for in the request path: a word (`graphql`, its
// default) or a Lua pattern; the plugin's is a PCRE searched the same way, the same text for a word or an
// anchored path. Lua's %-escapes become PCRE's; `translated` tells whether there was one.
std::string graphql_pattern(const std::string& v, bool& translated) {
  // Lua's classes as PCRE's, outside a set ([[:alnum:]]); inside one the brackets are the set's ([[:alnum:]_]).
  static const std::map<char, std::string> classes = {{'d', "\\d"},         {'s', "\\s"},         {'w', "[[:alnum:]]"},
                                                      {'a', "[[:alpha:]]"}, {'l', "[[:lower:]]"}, {'u', "[[:upper:]]"},
                                                      {'p', "[[:punct:]]"}, {'x', "[[:xdigit:]]"}};
  translated = false;
  bool in_set = false;
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%' || i + 1 == v.size()) {
      if (v[i] == '[' && !in_set)
        in_set = true;
      else if (v[i] == ']' && in_set)
        in_set = false;
      out += v[i];
      continue;
    }
    translated = true;
    const char c = v[++i];
    if (const auto k = classes.find(c); k != classes.end()) {
      const bool posix = k->second.front() == '[';
      out += in_set && posix ? k->second.substr(1, k->second.size() - 2) : k->second;
    } else {
      out += std::isalnum(static_cast<unsigned char>(c)) != 0 ? '%' : '\\';
      out += c;
    }
  }
  return out;
}

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
    if (sidecar_fields.count(k) || kv.second.IsNull()) continue;
    if (k == "status_outcomes" && kv.second.IsMap()) {
      // Status codes stay string keys (Kong's map type): emitted as !!str 404, not the integer 404.
      YAML::Node m(YAML::NodeType::Map);
      for (const auto& e : kv.second) {
        YAML::Node status(e.first.Scalar());
        status.SetTag("tag:yaml.org,2002:str");
        m[status] = e.second;
      }
      out["status_outcomes"] = m;
    } else if (const auto r = carried.find(k); r != carried.end()) {
      out[r->second] = kv.second;
    } else if (k == "product_type") {
      const std::string t = kv.second.IsScalar() ? kv.second.Scalar() : std::string();
      if (!product_types.count(t)) {
        notes.push_back(where + k + ": not carried over: '" + t + "' is not one of Aforo's product types");
        continue;
      }
      out["product_type"] = t;
      if (t != "API" && t != "AGENTIC_API")
        notes.push_back(where + k + ": " + t +
                        " carried over; the plugin sends the events of plain requests as API (it needs fields a "
                        "plain HTTP event does not carry); the protocol options (grpc_enabled, graphql_enabled, "
                        "websocket_enabled, mcp_enabled) meter those requests with their own type");
    } else if (k == "customer_id_source") {
      if (text(c, k) != "consumer")
        notes.push_back(where + k + ": '" + text(c, k) +
                        "' not carried over: set to consumer, as Kong does for a v2.2 config (a v2.2 config has "
                        "aforo_endpoint); change it by hand if a request header must name the customer");
    } else if (k == "grpc_path_prefix") {
      std::string v = text(c, k);
      if (!v.empty() && v.front() != '/') {
        notes.push_back(where + k + ": '" + v + "' carried over as '/" + v + "' (the plugin's starts with /)");
        v.insert(0, "/");
      }
      if (!v.empty()) out[k] = v;
    } else if (k == "graphql_path_pattern") {
      bool translated = false;
      const std::string v = graphql_pattern(text(c, k), translated);
      if (translated)
        notes.push_back(where + k + ": the Lua pattern '" + text(c, k) + "' carried over as the PCRE '" + v +
                        "': check it matches the GraphQL paths");
      if (!v.empty()) out[k] = v;
    } else if (k == "flush_count") {
      if (const auto n = number(c, "flush_count")) out["batch_size"] = std::clamp<long long>(std::llround(*n), 1, 1000);
    } else if (k == "flush_interval_ms") {
      if (const auto n = number(c, "flush_interval_ms"))
        out["flush_interval"] = std::clamp<long long>(std::llround(*n), 10, 60000);
    } else if (const auto nc = not_carried.find(k); nc != not_carried.end()) {
      notes.push_back(where + k + ": not carried over: " + nc->second);
    } else {
      notes.push_back(where + k + ": not an Aforo v2.2 field this converter knows; not carried over");
    }
  }
  // Either *_fail_open false makes the plugin fail closed (as Kong maps them for a v2.2 config).
  if (truthy(c, "preflight_quota_fail_open", true) != truthy(c, "margin_guard_fail_open", true))
    notes.push_back(where +
                    "preflight_quota_fail_open and margin_guard_fail_open differ; this plugin has one "
                    "fallback_on_error (set to block)");
  const bool open = truthy(c, "preflight_quota_fail_open", true) && truthy(c, "margin_guard_fail_open", true);
  out["fallback_on_error"] = open ? "allow" : "block";
  p["config"] = out;
  return p;
}

// The environment line(s) for a key read from field `name` of the v2.2 config.
std::string key_env(const std::string& key, const std::string& name, const migration_options& opts) {
  if (key.rfind("{vault://", 0) == 0)
    return "# Kong read " + name + " from " + key + ": set AFORO_API_KEY from the same vault.\nAFORO_API_KEY=\n";
  if (opts.reveal_secrets) return "AFORO_API_KEY=" + key + "\n";
  const std::string tail = key.size() >= 12 ? " (it ends in ..." + key.substr(key.size() - 4) + ")" : "";
  return "# Set to the " + name + " of " + opts.source_name + tail +
         "; --reveal-secrets prints it here.\nAFORO_API_KEY=\n";
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
    for (const char* k : {"aforo_endpoint", "tenant_id", "api_key", "preflight_quota_api_key", "margin_guard_url",
                          "preflight_quota_url"})
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
    r.notes.push_back("aforo_endpoint '" + without_userinfo(endpoint) +
                      "' is not an http(s) URL; aforo.* left at defaults");
  if (!text(c, "tenant_id").empty()) aforo["tenant_id"] = text(c, "tenant_id");
  if (!origin.empty()) {
    aforo["ingest_url"] = has_path(endpoint) ? without_userinfo(endpoint) : origin + "/v1/ingest/batch";
    aforo["control_url"] = origin;
    if (!has_path(endpoint))
      r.notes.push_back("aforo.ingest_url: aforo_endpoint has no path; set to " + origin +
                        "/v1/ingest/batch (check it: `aforo-sidecar test-event` posts one event there)");
  }
  for (const char* k : {"aforo_endpoint", "preflight_quota_url", "margin_guard_url"})
    if (has_userinfo(text(c, k)))
      r.notes.push_back(std::string(k) +
                        ": its user:password@ is not carried over (the sidecar authenticates with AFORO_API_KEY)");
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
  // Both spellings of v2.2's quota cache TTL: preflight_quota_cache_ttl_ms wins when both are there.
  if (const auto n = number(c, "preflight_quota_cache_ttl_ms"))
    api["quota_ttl"] = duration_of(*n, 1);
  else if (const auto s = number(c, "preflight_quota_cache_ttl"))
    api["quota_ttl"] = duration_of(*s, 1000);
  if (has(c, "preflight_quota_cache_ttl_ms") && has(c, "preflight_quota_cache_ttl"))
    r.notes.push_back(
        "preflight_quota_cache_ttl_ms and preflight_quota_cache_ttl both set; quota_ttl is from the first");
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

  // One key for ingest and the quota check: api_key, else preflight_quota_api_key (a key with quotas:read).
  const std::string key = text(c, "api_key");
  const std::string quota_key = text(c, "preflight_quota_api_key");
  r.env = "# Environment for aforo-sidecar (systemd EnvironmentFile=, docker --env-file); keep the file mode 0600.\n";
  if (!key.empty()) {
    r.env += key_env(key, "api_key", opts);
    if (!quota_key.empty() && quota_key != key)
      r.notes.push_back(
          "preflight_quota_api_key differs from api_key: the sidecar sends one key (AFORO_API_KEY, the "
          "api_key) to ingest and to the quota check, so that key needs quotas:read too");
  } else if (!quota_key.empty()) {
    r.env += key_env(quota_key, "preflight_quota_api_key", opts);
    r.notes.push_back(
        "no api_key: AFORO_API_KEY is the preflight_quota_api_key, which the sidecar also sends to "
        "ingest (it needs usage write as well as quotas:read)");
  } else {
    r.env += "# No api_key in " + opts.source_name + ": set Aforo's API key here.\nAFORO_API_KEY=\n";
  }
  if (plugins.size() > 1)
    r.notes.push_back(std::to_string(plugins.size()) + " aforo-metering plugins found; each has a block");
  return r;
}

}  // namespace aforo::config
