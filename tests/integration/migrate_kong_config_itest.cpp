// `aforo-sidecar migrate-kong-config` on a v2.2-style kong.yml with every field of
// docs/design/event-fields.md#aforo-plugin-v22 and on an Admin API answer: the printed sidecar.yaml loads with the
// daemon's own config loader (and --check-config), the plugin block carries the mapped fields and passes the
// plugin's schema (tests/lua/kong_config.lua: schema.lua through the test shim, as Kong applies it), every name
// of the plugin's list of v2.2 fields (compat.V22) has an outcome, and the API key appears nowhere unless
// --reveal-secrets asks for it in the environment line.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <regex>
#include <set>

#include "config/loader.hpp"
#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {
const std::string key = "ak_live_0123456789abcdefWXYZ";

std::string fixture(const std::string& name) { return source_dir() + "/tests/fixtures/aforo-plugin-v2.2/" + name; }

struct run_result {
  int code;
  std::string out;
};
run_result run(std::vector<std::string> args) {
  args.insert(args.begin(), {sidecar_bin(), "migrate-kong-config"});
  process p(args);
  const auto code = p.wait_exit(20s);
  return {code.value_or(-1), p.output()};
}
bool has(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

// tests/lua/kong_config.lua (lua5.1, the busted specs' interpreter): the plugin schema's view of v2.2 names and
// of a Kong configuration.
run_result schema_tool(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/lua5.1", source_dir() + "/tests/lua/kong_config.lua"};
  argv.insert(argv.end(), args.begin(), args.end());
  process p(argv);
  const auto code = p.wait_exit(20s);
  return {code.value_or(-1), p.output()};
}
}  // namespace

TEST_CASE("migrate-kong-config: a v2.2 kong.yml becomes a sidecar.yaml the daemon loads, a plugin block and env",
          "[migrate]") {
  temp_dir d;
  const auto r = run({fixture("kong.yml"), "--out-dir", d.path()});
  INFO(r.out);
  REQUIRE(r.code == 0);
  const auto sidecar = read_file(d.file("sidecar.yaml"));
  const auto plugin = read_file(d.file("kong-plugin.yml"));
  const auto env = read_file(d.file("sidecar.env"));

  // The daemon's own loader takes it, with the values mapped.
  const auto loaded = aforo::config::load_config_text(sidecar);
  INFO(sidecar);
  REQUIRE(loaded.ok());
  const auto& c = loaded.config;
  CHECK(c.aforo.tenant_id == "tenant-42");
  CHECK(c.aforo.ingest_url == "https://api.aforo.example/v1/ingest/batch");
  CHECK(c.aforo.control_url == "https://api.aforo.example");
  CHECK(c.entitlements.source == "aforo_api");
  CHECK(c.entitlements.aforo_api.quota_check);
  CHECK(c.entitlements.aforo_api.margin_check);
  CHECK(c.entitlements.aforo_api.url.empty());  // the quota URL's origin is aforo_endpoint's
  CHECK(c.entitlements.aforo_api.margin_url == "https://margin.aforo.example");
  CHECK(c.entitlements.aforo_api.margin_ttl == 30s);
  CHECK(c.entitlements.aforo_api.quota_ttl == 1s);
  CHECK(c.entitlements.aforo_api.timeout == 500ms);
  CHECK(c.entitlements.aforo_api.metric == "search_calls");
  // And so does the binary's --check-config, with the key from the environment.
  process check({sidecar_bin(), "--check-config", "--config", d.file("sidecar.yaml")}, {"AFORO_API_KEY=" + key});
  CHECK(check.wait_exit(20s) == 0);

  // The plugin blocks: one per plugin found, the route's scope kept.
  const YAML::Node doc = YAML::Load(plugin);
  REQUIRE(doc["plugins"].size() == 2);
  const YAML::Node global = doc["plugins"][0];
  CHECK(global["name"].as<std::string>() == "aforo-metering");
  CHECK_FALSE(global["route"]);
  const YAML::Node rc = global["config"];
  CHECK(rc["sidecar_url"].as<std::string>() == "http://127.0.0.1:8750");
  CHECK(rc["batch_size"].as<int>() == 50);
  CHECK(rc["flush_interval"].as<int>() == 2000);
  CHECK(rc["metric_name"].as<std::string>() == "search_calls");
  CHECK(rc["exclude_paths"].size() == 3);
  CHECK(rc["exclude_status_codes"][2].as<int>() == 429);
  CHECK(rc["status_outcomes"]["404"].as<std::string>() == "VALIDATION_FAILED");
  CHECK(rc["product_type"].as<std::string>() == "API");
  CHECK(rc["customer_id_jwt_claim"].as<std::string>() == "org_id");
  CHECK(rc["customer_id_jwt_exclude_claims"][0].as<std::string>() == "sub");
  CHECK(rc["customer_id_source"].as<std::string>() == "consumer");
  CHECK(rc["entitlement_enabled"].as<bool>());
  CHECK(rc["fallback_on_error"].as<std::string>() == "allow");
  // The protocol options are this plugin's too; include_metadata is discovery_enabled (as Kong maps it).
  CHECK(rc["discovery_enabled"].as<bool>());
  CHECK_FALSE(rc["grpc_enabled"].as<bool>());
  CHECK(rc["grpc_path_prefix"].as<std::string>() == "/grpc");
  CHECK(rc["graphql_enabled"].as<bool>());
  CHECK(rc["graphql_path_pattern"].as<std::string>() == "graphql");
  CHECK_FALSE(rc["websocket_enabled"].as<bool>());
  CHECK_FALSE(rc["mcp_enabled"].as<bool>());
  CHECK(rc["mcp_product_id"].as<std::string>() == "prod_1");
  for (const char* gone : {"aforo_endpoint", "api_key", "tenant_id", "flush_count", "include_metadata",
                           "margin_guard_fail_open", "margin_guard_timeout_ms", "preflight_quota_cache_ttl"})
    CHECK_FALSE(rc[gone]);
  CHECK(doc["plugins"][1]["config"]["batch_size"].as<int>() == 1000);  // clamped to the plugin's bound
  CHECK(doc["plugins"][1]["route"].as<std::string>() == "search-v1");
  CHECK(doc["plugins"][1]["config"]["metric_name"].as<std::string>() == "api_calls");

  // Fields with no equivalent are named, and only those; the key is nowhere but as a placeholder.
  for (const char* n : {"rate_limit_headers", "jwt_secret_is_base64"})
    CHECK(has(r.out, std::string("note: plugin 1: ") + n + ": not carried over"));
  for (const char* n : {"grpc_enabled", "grpc_path_prefix", "graphql_enabled", "graphql_path_pattern",
                        "websocket_enabled", "mcp_enabled", "mcp_product_id", "include_metadata"})
    CHECK_FALSE(has(r.out, std::string("note: plugin 1: ") + n));
  CHECK_FALSE(has(r.out, "not an Aforo v2.2 field"));
  // Kong takes the printed plugin block (schema.lua, as Kong applies it).
  const auto checked = schema_tool({"check", d.file("kong-plugin.yml")});
  INFO(checked.out);
  CHECK(checked.code == 0);
  CHECK(has(env, "\nAFORO_API_KEY=\n"));
  CHECK(has(env, "ends in ...WXYZ"));
  for (const auto* text : {&sidecar, &plugin, &env, &r.out}) CHECK_FALSE(has(*text, key));
}

TEST_CASE("migrate-kong-config: printed to stdout, the key only with --reveal-secrets", "[migrate]") {
  auto r = run({fixture("kong.yml")});
  REQUIRE(r.code == 0);
  CHECK(has(r.out, "# ---- sidecar.yaml ----"));
  CHECK(has(r.out, "# ---- kong.yml plugin block ----"));
  CHECK(has(r.out, "# ---- sidecar.env ----"));
  CHECK_FALSE(has(r.out, key));
  r = run({fixture("kong.yml"), "--reveal-secrets", "--sidecar-url", "http://127.0.0.1:9000"});
  REQUIRE(r.code == 0);
  CHECK(has(r.out, "\nAFORO_API_KEY=" + key + "\n"));
  CHECK((has(r.out, "sidecar_url: \"http://127.0.0.1:9000\"") || has(r.out, "sidecar_url: http://127.0.0.1:9000")));
}

TEST_CASE("migrate-kong-config: an Admin API answer, a vault reference and bad input", "[migrate]") {
  temp_dir d;
  auto r = run({fixture("plugins.json"), "--out-dir", d.path()});
  INFO(r.out);
  REQUIRE(r.code == 0);
  const auto loaded = aforo::config::load_config_text(read_file(d.file("sidecar.yaml")));
  REQUIRE(loaded.ok());
  CHECK(loaded.config.aforo.ingest_url == "https://api.aforo.example/v1/ingest/batch");
  CHECK_FALSE(loaded.config.entitlements.aforo_api.margin_check);
  CHECK(loaded.config.entitlements.aforo_api.quota_ttl == 500ms);
  const YAML::Node doc = YAML::Load(read_file(d.file("kong-plugin.yml")));
  REQUIRE(doc["plugins"].size() == 1);  // rate-limiting is not touched
  CHECK(doc["plugins"][0]["service"].as<std::string>() == "svc-1");
  CHECK(has(read_file(d.file("sidecar.env")), "{vault://env/aforo-key}"));

  const auto bad = d.write("bad.yml", "services: [ {name: x, plugins: [ {name: rate-limiting} ] } ]\n");
  r = run({bad});
  CHECK(r.code == 1);
  CHECK(has(r.out, "no aforo-metering plugin"));
  r = run({d.write("broken.yml", "plugins: [ {name: \n")});
  CHECK(r.code == 1);
  CHECK(has(r.out, "cannot read"));
  CHECK(run({}).code == 64);
}

TEST_CASE(
    "migrate-kong-config: every v2.2 name the plugin knows (compat.V22) has an outcome, and Kong takes both sides",
    "[migrate]") {
  // The plugin's one list of v2.2 names, with the type Kong checks each value against.
  const auto fields = schema_tool({"v22-fields"});
  REQUIRE(fields.code == 0);
  rapidjson::Document list;
  list.Parse(fields.out.c_str());
  REQUIRE(list.IsObject());
  REQUIRE(list.MemberCount() >= 50);
  // A v2.2 config with every name, each with a value of its type (a few that must be valid values of
  // this plugin's field or a URL given one), and one name nobody knows.
  const std::map<std::string, std::string> value_of = {
      {"aforo_endpoint", "https://api.aforo.example/v1/ingest/batch"},
      {"preflight_quota_url", "https://quota.aforo.example/api/v1/quota/check"},
      {"margin_guard_url", "https://margin.aforo.example/internal/v1/margin-guard/quick-check"},
      {"mappings_url", "https://catalog.aforo.example/x"},
      {"product_type", "GRPC_API"},
      {"customer_id_source", "consumer"},
      {"grpc_path_prefix", "/grpc"},
      {"graphql_path_pattern", "\"%/graphql$\""},  // a Lua pattern (YAML-quoted: % starts no plain scalar)
      {"exclude_paths", "[/health]"},
      {"status_outcomes", "{\"404\": VALIDATION_FAILED}"},
      {"metric_mappings", "[{path_pattern: ^/api/sms, metric_name: sms_sent}]"},
      {"quantity_header", "X-Units"},
      {"preflight_quota_api_key", "ak_quota_0123456789QKEY"}};
  std::string yml = "_format_version: \"3.0\"\nplugins:\n  - name: aforo-metering\n    config:\n";
  std::set<std::string> names;
  for (const auto& m : list.GetObject()) {
    const std::string name = m.name.GetString();
    const std::string type = m.value["type"].GetString();
    names.insert(name);
    std::string v;
    if (const auto o = value_of.find(name); o != value_of.end())
      v = o->second;
    else if (type == "boolean")
      v = "true";
    else if (type == "integer" || type == "number")
      v = "418";
    else if (type == "array")
      v = std::string(m.value["elements"].GetString()) == "integer" ? "[418]" : "[v22-value]";
    else
      v = "v22-value";
    yml += "      " + name + ": " + v + "\n";
  }
  yml += "      v23_only_field: true\n";
  temp_dir d;
  const auto input = d.write("every-v22-name.yml", yml);
  INFO(yml);
  // Kong loads it as it is (the shorthands) ...
  const auto as_is = schema_tool({"check", input});
  INFO(as_is.out);
  CHECK(as_is.code == 1);  // ... but for the one unknown name
  CHECK(has(as_is.out, "\"v23_only_field\":\"unknown field\""));
  replace_file(input, yml.substr(0, yml.find("      v23_only_field")));
  CHECK(schema_tool({"check", input}).code == 0);
  replace_file(input, yml);

  const auto r = run({input, "--out-dir", d.path()});
  INFO(r.out);
  REQUIRE(r.code == 0);
  // The converter knows every name of the list (carried, read for the sidecar, or named with a reason) ...
  for (const auto& name : names) {
    INFO(name);
    CHECK_FALSE(has(r.out, "note: " + name + ": not an Aforo v2.2 field"));
  }
  // ... and says so of a name that is not on it.
  CHECK(has(r.out, "note: v23_only_field: not an Aforo v2.2 field this converter knows"));
  // What it prints loads: the plugin block through the schema, the sidecar.yaml through the daemon's loader.
  const auto checked = schema_tool({"check", d.file("kong-plugin.yml")});
  INFO(checked.out);
  CHECK(checked.code == 0);
  const auto loaded = aforo::config::load_config_text(read_file(d.file("sidecar.yaml")));
  REQUIRE(loaded.ok());
  CHECK(loaded.config.entitlements.aforo_api.url == "https://quota.aforo.example");
  CHECK(loaded.config.entitlements.aforo_api.quota_ttl == 418ms);  // preflight_quota_cache_ttl_ms wins

  // The outcomes the plugin's shorthands give these names, the converter gives too.
  const YAML::Node pc = YAML::Load(read_file(d.file("kong-plugin.yml")))["plugins"][0]["config"];
  CHECK(pc["discovery_enabled"].as<bool>());                             // include_metadata
  CHECK(pc["graphql_path_pattern"].as<std::string>() == "\\/graphql$");  // Lua's %/ is PCRE's \/
  CHECK(pc["product_type"].as<std::string>() == "GRPC_API");             // kept; the plugin sends it as API
  CHECK(has(r.out, "note: product_type: GRPC_API carried over; the plugin sends the events of plain requests as API"));
  for (const char* n : {"metric_name_pattern", "metric_mappings", "mappings_url", "metric_header"})
    CHECK(has(r.out, std::string("note: ") + n +
                         ": not carried over: the metric of a request comes from the "
                         "sidecar's entitlement snapshot `features`"));
  // api_key is there: the quota key differs from it, named, never shown.
  CHECK(has(r.out, "note: preflight_quota_api_key differs from api_key"));
  CHECK_FALSE(has(r.out + read_file(d.file("sidecar.env")), "QKEY"));
}

TEST_CASE("migrate-kong-config: preflight_quota_api_key alone is AFORO_API_KEY", "[migrate]") {
  temp_dir d;
  const auto input = d.write("quota-key.yml",
                             "plugins:\n  - name: aforo-metering\n    config:\n"
                             "      aforo_endpoint: https://api.aforo.example\n      tenant_id: t1\n"
                             "      preflight_quota_enabled: true\n"
                             "      preflight_quota_api_key: ak_quota_0123456789QKEY\n");
  auto r = run({input, "--out-dir", d.path()});
  INFO(r.out);
  REQUIRE(r.code == 0);
  const auto env = read_file(d.file("sidecar.env"));
  CHECK(has(env, "Set to the preflight_quota_api_key of " + input + " (it ends in ...QKEY)"));
  CHECK(has(env, "\nAFORO_API_KEY=\n"));
  CHECK_FALSE(has(env + r.out, "0123456789QKEY"));
  CHECK(has(r.out, "note: no api_key: AFORO_API_KEY is the preflight_quota_api_key"));
  r = run({input, "--reveal-secrets"});
  CHECK(has(r.out, "\nAFORO_API_KEY=ak_quota_0123456789QKEY\n"));
}

TEST_CASE("migrate-kong-config: graphql_path_pattern, a word as it is, a Lua pattern's escapes as PCRE's",
          "[migrate]") {
  temp_dir d;
  // v2.2 value -> the plugin's, a path it must match and one it must not.
  const std::vector<std::array<std::string, 4>> cases = {
      {"graphql", "graphql", "/api/graphql", "/api/rest"},
      {"^/api/graphql$", "^/api/graphql$", "/api/graphql", "/api/graphql/x"},
      {"^/api/v%d+/graphql$", "^/api/v\\d+/graphql$", "/api/v12/graphql", "/api/vx/graphql"},
      {"/[%w_]+/gql$", "/[[:alnum:]_]+/gql$", "/my_api2/gql", "/my-api/gql"},
      {"%.gql$", "\\.gql$", "/q.gql", "/qxgql"}};
  for (const auto& [v22, want, match, miss] : cases) {
    INFO(v22);
    const auto input = d.write("gql.yml",
                               "plugins:\n  - name: aforo-metering\n    config:\n      graphql_enabled: true\n"
                               "      graphql_path_pattern: '" +
                                   v22 + "'\n");
    const auto r = run({input, "--out-dir", d.path()});
    REQUIRE(r.code == 0);
    const auto got = YAML::Load(read_file(d.file("kong-plugin.yml")))["plugins"][0]["config"]["graphql_path_pattern"];
    CHECK(got.as<std::string>() == want);
    CHECK(has(r.out, "note: graphql_path_pattern: the Lua pattern") == (v22.find('%') != std::string::npos));
    // Searched in the path as the plugin's PCRE is (these escapes and classes mean the same in ECMAScript).
    const std::regex re(want);
    CHECK(std::regex_search(match, re));
    CHECK_FALSE(std::regex_search(miss, re));
  }
}

TEST_CASE("migrate-kong-config: URLs read as URLs: a user:password@ is never written, ports and IPv6 kept",
          "[migrate]") {
  temp_dir d;
  const auto input = d.write("urls.yml",
                             "plugins:\n  - name: aforo-metering\n    config:\n"
                             "      aforo_endpoint: 'https://ingest:s3cretPW@api.aforo.example:8443/v1/ingest/batch'\n"
                             "      preflight_quota_enabled: true\n"
                             "      preflight_quota_url: 'http://quota:s3cretPW@[::1]:9000/api/v1/quota/check'\n"
                             "      margin_guard_enabled: true\n"
                             "      margin_guard_url: 'ftp://margin.aforo.example/x'\n");
  const auto r = run({input, "--out-dir", d.path()});
  INFO(r.out);
  REQUIRE(r.code == 0);
  const auto sidecar = read_file(d.file("sidecar.yaml"));
  INFO(sidecar);
  CHECK_FALSE(has(sidecar + r.out, "s3cretPW"));
  const auto loaded = aforo::config::load_config_text(sidecar);
  REQUIRE(loaded.ok());
  CHECK(loaded.config.aforo.ingest_url == "https://api.aforo.example:8443/v1/ingest/batch");
  CHECK(loaded.config.aforo.control_url == "https://api.aforo.example:8443");
  CHECK(loaded.config.entitlements.aforo_api.url == "http://[::1]:9000");
  CHECK(loaded.config.entitlements.aforo_api.margin_url.empty());  // not an http(s) URL: the default
  CHECK(has(r.out, "note: aforo_endpoint: its user:password@ is not carried over"));
  CHECK(has(r.out, "note: preflight_quota_url: its user:password@ is not carried over"));
  // Not an http(s) URL: named in a note, still without its password.
  const auto ftp = run({d.write("ftp.yml",
                                "plugins:\n  - name: aforo-metering\n    config:\n"
                                "      aforo_endpoint: 'ftp://u:s3cretPW@files.aforo.example/x'\n")});
  CHECK(has(ftp.out, "note: aforo_endpoint 'ftp://files.aforo.example/x' is not an http(s) URL"));
  CHECK_FALSE(has(ftp.out, "s3cretPW"));
}
