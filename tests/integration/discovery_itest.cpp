// Discovery through the real aforo-sidecar: a fake Kong Admin API serving several pages plus usage
// events posted to /v1/ingest/batch make a versioned catalog at GET /v1/catalog that survives a
// restart and is pushed to the control plane once per change; with discovery off nothing is captured.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <thread>

#include <rapidjson/document.h>

#include "fakes/fake_kong_admin/fake_kong_admin.hpp"
#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {

// Kong 3.x entity shapes, trimmed of fields the sidecar ignores only where they add nothing.
const std::string svc_search =
    R"({"id":"9748f662-7711-4a90-8186-dc02f10eb0f5","name":"search","host":"search.internal","port":80,)"
    R"("protocol":"http","path":null,"retries":5,"connect_timeout":60000,"enabled":true,)"
    R"("tags":["aforo:monetized","team-search"],"created_at":1700000000,"updated_at":1700000000})";
const std::string svc_billing =
    R"({"id":"4e3ad2e4-0bc4-4638-8e34-c84a417ba39b","name":"billing","host":"billing.internal","port":8080,)"
    R"("protocol":"https","path":"/api","enabled":true,"tags":null,"created_at":1700000000})";
const std::string route_search =
    R"({"id":"d35165e2-d03e-461a-bdeb-dad0a112abfe","name":"search-v1","paths":["/v1/search"],)"
    R"("methods":["GET","POST"],"hosts":["api.example.com"],"protocols":["http","https"],"strip_path":false,)"
    R"("preserve_host":false,"regex_priority":0,"path_handling":"v0","https_redirect_status_code":426,)"
    R"("service":{"id":"9748f662-7711-4a90-8186-dc02f10eb0f5"},"tags":null,"headers":null,"snis":null})";
const std::string route_items =
    R"({"id":"0f1e2d3c-0000-4000-8000-000000000001","name":"items","paths":["~/v1/items/(?<id>\\d+)$"],)"
    R"("methods":null,"hosts":null,"protocols":["http","https"],)"
    R"("service":{"id":"9748f662-7711-4a90-8186-dc02f10eb0f5"},"tags":null})";
const std::string route_invoices =
    R"({"id":"0f1e2d3c-0000-4000-8000-000000000002","name":"invoices","paths":["/v1/invoices"],)"
    R"("methods":["GET"],"hosts":null,"protocols":["https"],)"
    R"("service":{"id":"4e3ad2e4-0bc4-4638-8e34-c84a417ba39b"},"tags":null})";
const std::string plugin_metering =
    R"({"id":"a1","name":"aforo-metering","config":{"sidecar_url":"http://127.0.0.1:8750","discovery_enabled":true},)"
    R"("service":null,"route":null,"consumer":null,"enabled":true,"protocols":["http","https"],"tags":null})";
const std::string plugin_rate =
    R"({"id":"a2","name":"rate-limiting","config":{"minute":5},"service":{"id":"4e3ad2e4-0bc4-4638-8e34-c84a417ba39b"},)"
    R"("route":null,"consumer":null,"enabled":true,"tags":null})";

void serve_kong_config(aforo::fake::fake_kong_admin& admin) {
  admin.set_pages("/services", {{svc_search}, {svc_billing}});
  admin.set_pages("/routes", {{route_search}, {route_items}, {route_invoices}});
  admin.set_pages("/plugins", {{plugin_metering, plugin_rate}});
}

std::string event(int n, const std::string& method, const std::string& path, const std::string& service,
                  const std::string& route) {
  std::string md = R"({"gateway":"kong")";
  if (!service.empty()) md += R"(,"service":")" + service + "\"";
  if (!route.empty()) md += R"(,"route":")" + route + "\"";
  md += "}";
  return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-01-01T00:00:00Z",)"
         R"("idempotencyKey":"kong:disc-)" +
         std::to_string(n) + R"(","endpointPath":")" + path + R"(","httpMethod":")" + method +
         R"(","statusCode":200,"metadata":)" + md + "}";
}

std::string batch(const std::vector<std::string>& events) {
  std::string b = R"({"events":[)";
  for (std::size_t i = 0; i < events.size(); ++i) b += (i ? "," : "") + events[i];
  return b + "]}";
}

struct catalog_view {
  rapidjson::Document doc;
  bool ok = false;
  explicit catalog_view(const std::string& body) {
    doc.Parse(body.c_str());
    ok = !doc.HasParseError() && doc.IsObject();
  }
  [[nodiscard]] std::uint64_t revision() const {
    return ok && doc.HasMember("revision") ? doc["revision"].GetUint64() : 0;
  }
  const rapidjson::Value* api(const std::string& name) const {
    if (!ok || !doc.HasMember("apis")) return nullptr;
    for (const auto& a : doc["apis"].GetArray())
      if (name == a["name"].GetString()) return &a;
    return nullptr;
  }
  const rapidjson::Value* op(const std::string& api_name, const std::string& method, const std::string& path) const {
    const auto* a = api(api_name);
    if (a == nullptr) return nullptr;
    for (const auto& o : (*a)["operations"].GetArray())
      if (method == o["method"].GetString() && path == o["path"].GetString()) return &o;
    return nullptr;
  }
};

std::string str(const rapidjson::Value* v, const char* key) { return v == nullptr ? "" : (*v)[key].GetString(); }
std::uint64_t num(const rapidjson::Value* v, const char* key) { return v == nullptr ? 0 : (*v)[key].GetUint64(); }

std::string discovery_yaml(const std::string& admin_url, const std::string& control_url, const std::string& token_file,
                           const std::string& extra = "") {
  return "aforo:\n  control_url: \"" + control_url +
         "\"\n  tenant_id: tenant-1\n"
         "  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n"
         "discovery:\n  enabled: true\n  kong_admin_url: \"" +
         admin_url + "\"\n  admin_token_file: \"" + token_file +
         "\"\n  interval: 200ms\n  state_dir: \"{dir}/state\"\n  stale_after: 1h\n" + extra;
}

void stop_gracefully(sidecar_process& sc) {
  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_exit(10s) == std::optional<int>(0));
}

}  // namespace

TEST_CASE(
    "discovery: Admin API pages and traffic make a versioned catalog, kept across a restart, pushed once per change",
    "[discovery]") {
  aforo::fake::fake_kong_admin admin;
  serve_kong_config(admin);
  aforo::fake::fake_catalog_receiver cp;
  temp_dir secrets;
  const auto token = secrets.write("admin-token", "kong-admin-secret\n");
  sidecar_process sc(discovery_yaml(admin.url(), cp.url(), token), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();

  // The first poll walks every page: two services, three routes, two plugins.
  REQUIRE(wait_until([&] { return catalog_view(c.get("/v1/catalog").body).revision() >= 1; }));
  CHECK(admin.last_token() == "kong-admin-secret");
  {
    catalog_view v(c.get("/v1/catalog").body);
    REQUIRE(v.ok);
    CHECK(v.doc["enabled"].GetBool());
    CHECK(v.revision() == 1);
    const auto* search = v.api("search");
    REQUIRE(search != nullptr);
    CHECK(num(search, "version") == 1);
    CHECK(str(search, "state") == "NEW");
    CHECK((*search)["monetized"].GetBool());
    CHECK((*search)["metered"].GetBool());
    CHECK((*search)["operations"].Size() == 3);  // GET and POST /v1/search, any method on the items regex
    CHECK(str(v.op("search", "GET", "/v1/search"), "source") == "admin");
    CHECK(v.op("search", "*", "~/v1/items/(?<id>\\d+)$") != nullptr);
    const auto* billing = v.api("billing");
    REQUIRE(billing != nullptr);
    CHECK_FALSE((*billing)["monetized"].GetBool());
    CHECK((*billing)["plugins"].Size() == 2);
    CHECK(str(v.op("billing", "GET", "/v1/invoices"), "state") == "NEW");
  }
  REQUIRE(wait_until([&] { return cp.accepted().size() == 1; }));
  CHECK(cp.api_key() == "test-key-0001");
  CHECK(cp.tenant() == "tenant-1");
  CHECK(catalog_view(cp.accepted()[0]).revision() == 1);

  // Traffic: joins declared operations, adds new ones (ids folded), and a new API.
  auto r = c.post("/v1/ingest/batch",
                  batch({event(1, "GET", "/v1/search/items/42?q=x", "search", "search-v1"),
                         event(2, "GET", "/v1/search", "search", "search-v1"),
                         event(3, "DELETE", "/v1/items/77", "search", "items"),
                         event(4, "GET", "/v2/legacy/3fa85f64-5717-4562-b3fc-2c963f66afa6", "search", "search-v1"),
                         event(5, "GET", "/v2/legacy/6dcb09b5b57875f334f61aebed695e2e4193db5e", "search", "search-v1"),
                         event(6, "POST", "/users/12345/keys", "users", ""), event(7, "GET", "/nothing", "", "")}));
  REQUIRE(r.status == 202);
  REQUIRE(wait_until([&] { return catalog_view(c.get("/v1/catalog").body).revision() == 2; }));
  {
    catalog_view v(c.get("/v1/catalog").body);
    CHECK(num(v.api("search"), "version") == 2);
    CHECK(num(v.api("billing"), "version") == 1);
    CHECK(num(v.api("users"), "version") == 1);
    CHECK(str(v.op("search", "GET", "/v1/search"), "source") == "both");
    CHECK(num(v.op("search", "GET", "/v1/search"), "count") == 2);
    CHECK(num(v.op("search", "*", "~/v1/items/(?<id>\\d+)$"), "count") == 1);
    CHECK(num(v.op("search", "GET", "/v2/legacy/{id}"), "count") == 2);
    CHECK(str(v.op("search", "GET", "/v2/legacy/{id}"), "source") == "traffic");
    CHECK(str(v.op("users", "POST", "/users/{id}/keys"), "state") == "NEW");
    CHECK(v.api("") == nullptr);
  }
  REQUIRE(wait_until([&] { return cp.accepted().size() == 2; }));
  CHECK(catalog_view(cp.accepted()[1]).revision() == 2);

  // Counts alone and unchanged polls push nothing more.
  CHECK(c.post("/v1/ingest/batch", batch({event(8, "GET", "/v1/search", "search", "search-v1")})).status == 202);
  const int polls = admin.requests();
  REQUIRE(wait_until([&] { return admin.requests() >= polls + 9; }));
  CHECK(cp.accepted().size() == 2);
  CHECK(catalog_view(c.get("/v1/catalog").body).revision() == 2);
  const auto metrics = c.get("/metrics").body;
  CHECK(metrics.find("aforo_sidecar_discovery_apis 3") != std::string::npos);
  CHECK(metrics.find("aforo_sidecar_discovery_pushes_total{result=\"ok\"} 2") != std::string::npos);

  // A restart keeps versions, states and counts, and does not push the same revision again.
  stop_gracefully(sc);
  sc.restart();
  auto c2 = sc.client();
  {
    catalog_view v(c2.get("/v1/catalog").body);
    REQUIRE(v.ok);
    CHECK(v.revision() == 2);
    CHECK(num(v.api("search"), "version") == 2);
    CHECK(num(v.api("users"), "version") == 1);
    CHECK(num(v.op("search", "GET", "/v1/search"), "count") == 3);
  }
  const int polls2 = admin.requests();
  REQUIRE(wait_until([&] { return admin.requests() >= polls2 + 6; }));
  CHECK(cp.accepted().size() == 2);

  // A route removed from Kong: its unseen operations go, the API's version moves, one more push.
  admin.set_pages("/routes", {{route_search}, {route_items}});
  REQUIRE(wait_until([&] { return catalog_view(c2.get("/v1/catalog").body).revision() == 3; }));
  {
    catalog_view v(c2.get("/v1/catalog").body);
    CHECK(num(v.api("billing"), "version") == 2);
    CHECK(v.op("billing", "GET", "/v1/invoices") == nullptr);
  }
  REQUIRE(wait_until([&] { return cp.accepted().size() == 3; }));
}

TEST_CASE("discovery: the Admin API and the control plane being down delay nothing else and are retried",
          "[discovery]") {
  aforo::fake::fake_kong_admin admin;
  serve_kong_config(admin);
  admin.set_status(503);
  aforo::fake::fake_catalog_receiver cp;
  cp.set_status(503);
  sidecar_process sc(discovery_yaml(admin.url(), cp.url(), "", "retry:\n  backoff: [50ms, 50ms, 50ms]\n"));
  auto c = sc.client();
  REQUIRE(wait_until([&] { return admin.requests() >= 3; }));
  CHECK(c.get("/healthz").status == 200);

  // Traffic is still captured while the Admin API is down.
  REQUIRE(c.post("/v1/ingest/batch", batch({event(1, "GET", "/v1/search/1", "search", "")})).status == 202);
  REQUIRE(wait_until([&] { return catalog_view(c.get("/v1/catalog").body).revision() == 1; }));
  CHECK(catalog_view(c.get("/v1/catalog").body).op("search", "GET", "/v1/search/{id}") != nullptr);
  REQUIRE(wait_until([&] { return cp.requests() >= 3; }));
  CHECK(cp.accepted().empty());
  CHECK(c.get("/metrics").body.find("aforo_sidecar_discovery_admin_polls_total{result=\"error\"}") !=
        std::string::npos);

  // Both come back: the declarations join, and the latest revision is delivered.
  admin.set_status(0);
  cp.set_status(0);
  REQUIRE(wait_until([&] { return catalog_view(c.get("/v1/catalog").body).api("billing") != nullptr; }));
  REQUIRE(wait_until(
      [&] {
        auto acc = cp.accepted();
        return !acc.empty() &&
               catalog_view(acc.back()).revision() == catalog_view(c.get("/v1/catalog").body).revision();
      },
      15s));
  // One line per change of state, not one per failed poll.
  const auto out = sc.proc().output();
  const std::string line = "discovery: Kong Admin API " + admin.url() + " unavailable";
  std::size_t lines = 0;
  for (auto at = out.find(line); at != std::string::npos; at = out.find(line, at + 1)) ++lines;
  CHECK(lines == 1);
}

TEST_CASE("discovery: a corrupt catalog file is set aside and the catalog starts empty", "[discovery]") {
  aforo::fake::fake_kong_admin admin;  // serves no entities
  aforo::fake::fake_catalog_receiver cp;
  sidecar_process sc(discovery_yaml(admin.url(), cp.url(), ""));
  auto c = sc.client();
  REQUIRE(c.post("/v1/ingest/batch", batch({event(1, "GET", "/a/1", "svc", "")})).status == 202);
  REQUIRE(wait_until([&] { return catalog_view(c.get("/v1/catalog").body).revision() == 1; }));
  stop_gracefully(sc);
  const auto file = sc.dir().file("state/catalog.json");
  REQUIRE(std::filesystem::exists(file));
  sc.dir().write("state/catalog.json", "{\"format\":1,\"revision\":");
  sc.restart();
  auto c2 = sc.client();
  catalog_view v(c2.get("/v1/catalog").body);
  REQUIRE(v.ok);
  CHECK(v.revision() == 0);
  CHECK(v.doc["apis"].Size() == 0);
  CHECK(std::filesystem::exists(file + ".corrupt"));
  CHECK(c2.get("/healthz").status == 200);
}

TEST_CASE("discovery: with discovery off nothing is captured and /v1/catalog says so", "[discovery]") {
  aforo::fake::fake_kong_admin admin;
  serve_kong_config(admin);
  aforo::fake::fake_catalog_receiver cp;
  sidecar_process sc("aforo:\n  control_url: \"" + cp.url() +
                     "\"\n  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n"
                     "discovery:\n  enabled: false\n  kong_admin_url: \"" +
                     admin.url() + "\"\n  interval: 100ms\n  state_dir: \"{dir}/state\"\n");
  auto c = sc.client();
  REQUIRE(c.post("/v1/ingest/batch", batch({event(1, "GET", "/v1/search", "search", "search-v1")})).status == 202);
  std::this_thread::sleep_for(500ms);  // kept: nothing is discovered during 500 ms (five intervals) is the subject
  catalog_view v(c.get("/v1/catalog").body);
  REQUIRE(v.ok);
  CHECK_FALSE(v.doc["enabled"].GetBool());
  CHECK(v.doc["apis"].Size() == 0);
  CHECK(admin.requests() == 0);
  CHECK(cp.requests() == 0);
  // No catalog written (the state dir itself also keeps the last known good entitlement snapshot).
  CHECK_FALSE(std::filesystem::exists(sc.dir().file("state/catalog.json")));
}

TEST_CASE(
    "discovery: gRPC methods and GraphQL operations posted as events are operations of their service in the "
    "pushed catalog",
    "[discovery][protocol]") {
  // A Kong gRPC service whose route matches by prefix: without the protocol fields every method would
  // be the route's one path.
  aforo::fake::fake_kong_admin admin;
  admin.set_pages("/services",
                  {{R"({"id":"5a4b1c2d-0000-4000-8000-00000000000a","name":"shop","host":"shop.internal","port":50051,)"
                    R"("protocol":"grpc","path":null,"enabled":true,"tags":null})"}});
  admin.set_pages(
      "/routes",
      {{R"({"id":"5a4b1c2d-0000-4000-8000-00000000000b","name":"shop-rpc","paths":["/shop.v1.Catalog/","/graphql"],)"
        R"("methods":null,"hosts":null,"protocols":["grpc","http"],)"
        R"("service":{"id":"5a4b1c2d-0000-4000-8000-00000000000a"},"tags":null})"}});
  aforo::fake::fake_catalog_receiver cp;
  sidecar_process sc(discovery_yaml(admin.url(), cp.url(), ""), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(wait_until([&] { return cp.accepted().size() == 1; }));

  // The events as the plugin sends them (lua/README.md "Protocol-aware metering"): a gRPC call and a
  // failed one, a GraphQL mutation and the two operations of a batch (keys :1 and :2).
  const auto proto_event = [](const std::string& key, const std::string& product, const std::string& path,
                              const std::string& fields) {
    return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-01-01T00:00:00Z",)"
           R"("idempotencyKey":")" +
           key + R"(","productType":")" + product + R"(","executionStatus":"SUCCESS","endpointPath":")" + path +
           R"(","httpMethod":"POST","statusCode":200,"responseTimeMs":3,"dataBytes":15,)" + fields +
           R"(,"metadata":{"gateway":"kong","service":"shop","route":"shop-rpc"}})";
  };
  const auto r =
      c.post("/v1/ingest/batch",
             batch({proto_event("grpc:0a1b", "GRPC_API", "/shop.v1.Catalog/GetItem",
                                R"("grpcService":"shop.v1.Catalog","grpcMethod":"GetItem","grpcStatusCode":0)"),
                    proto_event("grpc:0a1c", "GRPC_API", "/shop.v1.Catalog/ListItems",
                                R"("grpcService":"shop.v1.Catalog","grpcMethod":"ListItems","grpcStatusCode":5)"),
                    proto_event("gql:0a1d", "GRAPHQL_API", "/graphql",
                                R"("gqlOperationType":"MUTATION","gqlOperationName":"AddItem")"),
                    proto_event("gql:0a1e:1", "GRAPHQL_API", "/graphql",
                                R"("gqlOperationType":"QUERY","gqlOperationName":"Items","gqlHasErrors":false)"),
                    proto_event("gql:0a1e:2", "GRAPHQL_API", "/graphql", R"("gqlOperationType":"QUERY")")}));
  REQUIRE(r.status == 202);
  INFO(r.body);

  REQUIRE(wait_until([&] { return cp.accepted().size() == 2; }));
  catalog_view pushed(cp.accepted().back());
  REQUIRE(pushed.ok);
  const auto* shop = pushed.api("shop");
  REQUIRE(shop != nullptr);
  INFO(cp.accepted().back());
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"POST", "/shop.v1.Catalog/GetItem"},
                                                        {"POST", "/shop.v1.Catalog/ListItems"},
                                                        {"MUTATION", "/graphql#AddItem"},
                                                        {"QUERY", "/graphql#Items"},
                                                        {"QUERY", "/graphql"}}) {
    const auto* op = pushed.op("shop", method, path);
    CHECK(op != nullptr);
    CHECK(num(op, "count") == 1);
  }
  CHECK(catalog_view(c.get("/v1/catalog").body).revision() == pushed.revision());
}
