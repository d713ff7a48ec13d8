// `aforo-sidecar migrate-kong-config` on a v2.2-style kong.yml with every field of
// docs/design/event-fields.md#aforo-plugin-v22 and on an Admin API answer: the printed sidecar.yaml loads with the
// daemon's own config loader (and
// --check-config), the plugin block carries the mapped fields, and the API key appears nowhere
// unless --reveal-secrets asks for it in the environment line.
#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

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
  for (const char* gone : {"aforo_endpoint", "api_key", "tenant_id", "flush_count", "grpc_enabled", "include_metadata"})
    CHECK_FALSE(rc[gone]);
  CHECK(doc["plugins"][1]["config"]["batch_size"].as<int>() == 1000);  // clamped to the plugin's bound
  CHECK(doc["plugins"][1]["route"].as<std::string>() == "search-v1");
  CHECK(doc["plugins"][1]["config"]["metric_name"].as<std::string>() == "api_calls");

  // Fields with no equivalent are named; the key is nowhere but as a placeholder.
  for (const char* n : {"grpc_enabled", "graphql_enabled", "websocket_enabled", "mcp_enabled", "include_metadata",
                        "rate_limit_headers", "jwt_secret_is_base64"})
    CHECK(has(r.out, std::string("note: plugin 1: ") + n));
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
