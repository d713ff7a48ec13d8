// End to end, protocol-aware metering (docs/design/plugin-contract.md#protocols): the unchanged plugin in
// real nginx (tests/lua/nginx, location /p/ and the h2c gRPC server: every protocol option on) and the real
// sidecar, with requests shaped as real clients send them; the events at the fake ingest carry exactly
// the fields their productType requires. The default location, with every option off, meters the same
// requests as plain API events.
#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include <map>
#include <set>

#include "plugin_e2e_support.hpp"

using namespace plugin_e2e;

namespace {

constexpr const char* snapshot = R"(version: "proto-1"
customers:
  cust_acme:
    plan: enterprise
    status: active
    features:
      tools: {}
    revenue: { amount: 2000.00, period: month }
features:
  - feature: admin_tools            # not in cust_acme's plan: the operations below are refused
    match: { path_prefix: /, operation: delete_everything }
  - feature: admin_graphql
    match: { path_prefix: /, operation: DropAll }
  - feature: tools
    match: { path_prefix: / }
    metric: api_calls
)";

/// The plugin_e2e setup (fake ingest <- sidecar <- plugin) with this file's snapshot and shorter flushes.
struct protocol_env : e2e_env {
  protocol_env() : e2e_env(e2e_options{.snapshot = snapshot, .sidecar_flush = "100ms", .plugin_flush = "50"}) {}
  /// Waits until the fake ingest holds n events; returns what it holds.
  [[nodiscard]] rapidjson::Document wait_events(std::size_t n) const {
    (void)e2e_env::wait_events(n);
    return received();
  }
};

const std::set<std::string> base_fields = {
    "customerId",   "metricName", "quantity",   "occurredAt",     "idempotencyKey", "productType", "executionStatus",
    "endpointPath", "httpMethod", "statusCode", "responseTimeMs", "dataBytes",      "metadata"};

std::set<std::string> with(std::initializer_list<const char*> extra) {
  auto s = base_fields;
  for (const char* f : extra) s.insert(f);
  return s;
}

std::set<std::string> fields_of(const rapidjson::Value& e) {
  std::set<std::string> s;
  for (const auto& m : e.GetObject()) s.insert(m.name.GetString());
  return s;
}

std::string str(const rapidjson::Value& e, const char* name) {
  return e.HasMember(name) && e[name].IsString() ? e[name].GetString() : std::string("<absent>");
}

/// A gRPC call over h2c with prior knowledge, as a gRPC client puts it on the wire: POST, content-type
/// application/grpc, te: trailers, a length-prefixed (empty) message. Returns curl's output: the HTTP
/// status, after curl's error message when it failed.
std::string grpc_call(const protocol_env& env, const std::string& method) {
  const auto body = env.dir().write("grpc-message.bin", std::string(5, '\0'));
  process curl({"/usr/bin/curl",
                "-sS",
                "--http2-prior-knowledge",
                "--unix-socket",
                env.prefix() + "/grpc.sock",
                "-H",
                "Content-Type: application/grpc",
                "-H",
                "te: trailers",
                "-H",
                "grpc-accept-encoding: identity",
                "-H",
                "User-Agent: grpc-c++/1.51.1",
                "-H",
                "X-Tenant-Id: cust_acme",
                "--data-binary",
                "@" + body,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://localhost/shop.v1.Catalog/" + method});
  curl.wait_exit(10s);
  return curl.output();
}

}  // namespace

TEST_CASE("plugin protocols: gRPC, GraphQL, WebSocket, MCP and traced requests reach ingest with their fields",
          "[plugin][e2e][protocol]") {
  protocol_env env;
  http_client c(env.proxy());
  const std::vector<std::pair<std::string, std::string>> tenant = {{"X-Tenant-Id", "cust_acme"}};
  auto json_headers = tenant;
  json_headers.emplace_back("Content-Type", "application/json");

  // gRPC: through nginx's grpc_pass to an h2c upstream; NotFound answers the trailer grpc-status 5. On a
  // failure, both nginx error logs say what the proxy and the gRPC upstream saw.
  for (const char* method : {"GetItem", "NotFound"}) {
    const auto got = grpc_call(env, method);
    INFO("gRPC call " << method << ": " << got << "\nnginx error.log:\n"
                      << env.error_log() << "\nbackends error.log:\n"
                      << read_file(env.prefix() + "/backends/logs/error.log"));
    CHECK(got == "200");
  }

  // GraphQL: a POST with operationName (Apollo Client's shape) and one without (a shorthand query).
  REQUIRE(
      c.post("/p/graphql",
             R"({"operationName":"AddItem","variables":{"name":"x"},)"
             R"("query":"query Items { items { id } }\nmutation AddItem($name: String!) { add(name: $name) { id } }"})",
             json_headers)
          .status == 200);
  REQUIRE(c.post("/p/graphql", R"({"query":"{ items(filter: \"query X\") { id } }"})", json_headers).status == 200);

  // A batch of two operations (Apollo's batch link): one event each, keyed by its position.
  REQUIRE(
      c.post("/p/graphql",
             R"([{"operationName":"Items","query":"query Items { items { id } }"},)"
             R"({"query":"mutation AddItem($name: String!) { add(name: $name) { id } }","variables":{"name":"y"}}])",
             json_headers)
          .status == 200);

  // A GraphQL body over the 64 KiB cap: metered without its operation, as an API event.
  REQUIRE(c.post("/p/graphql", R"({"query":"query Big { a }","variables":{"pad":")" + std::string(70000, 'x') + "\"}}",
                 json_headers)
              .status == 200);

  // MCP: a tools/call, then a batch of two calls and a tools/list (Streamable HTTP transport).
  auto mcp_headers = json_headers;
  mcp_headers.emplace_back("Mcp-Session-Id", "1868a90c-5f9c-4c8b-9e0e-2a2ed0f6a4b1");
  mcp_headers.emplace_back("Accept", "application/json, text/event-stream");
  REQUIRE(
      c.post("/p/mcp",
             R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_docs","arguments":{"q":"x"}}})",
             mcp_headers)
          .status == 200);
  REQUIRE(c.post("/p/mcp",
                 R"([{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fetch","arguments":{}}},)"
                 R"({"jsonrpc":"2.0","id":3,"method":"tools/list"},)"
                 R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"fetch","arguments":{}}}])",
                 mcp_headers)
              .status == 200);

  // Agentic: a W3C traceparent and tracestate.
  auto traced = tenant;
  traced.emplace_back("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  traced.emplace_back("tracestate", "congo=t61rcWkgMzE");
  REQUIRE(c.request("GET", "/p/agent/run", {}, traced).status == 200);

  // WebSocket: an upgrade through the proxy, held open ~0.5 s, then closed by the client.
  {
    raw_connection ws(env.proxy(), 500ms);
    ws.send(
        "GET /p/ws/chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "X-Tenant-Id: cust_acme\r\n\r\n");
    const auto reply = ws.read_all();
    REQUIRE(reply.rfind("HTTP/1.1 101", 0) == 0);
    CHECK(reply.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);
  }

  // The same traced request where every option is off: a plain API event.
  REQUIRE(c.request("GET", "/v1/plain", {}, traced).status == 200);

  const auto d = env.wait_events(13);
  REQUIRE(d["events"].Size() == 13);
  std::map<std::string, std::vector<const rapidjson::Value*>> by_type;
  std::set<std::string> keys;
  for (const auto& r : d["events"].GetArray()) {
    const auto& e = r["event"];
    by_type[e["productType"].GetString()].push_back(&e);
    keys.insert(e["idempotencyKey"].GetString());
  }
  CHECK(keys.size() == 13);

  REQUIRE(by_type["GRPC_API"].size() == 2);
  for (const auto* e : by_type["GRPC_API"]) {
    CHECK(fields_of(*e) == with({"grpcService", "grpcMethod", "grpcStatusCode"}));
    CHECK(str(*e, "grpcService") == "shop.v1.Catalog");
    CHECK(str(*e, "idempotencyKey").rfind("grpc:", 0) == 0);
    const bool not_found = str(*e, "grpcMethod") == "NotFound";
    CHECK((*e)["grpcStatusCode"].GetInt() == (not_found ? 5 : 0));
    CHECK(str(*e, "executionStatus") == (not_found ? "ERROR" : "SUCCESS"));
    CHECK(str(*e, "httpMethod") == "POST");
  }

  REQUIRE(by_type["GRAPHQL_API"].size() == 4);
  std::multiset<std::string> operations;  // "<type> <name or -> <key suffix: :n in a batch, - alone>"
  for (const auto* e : by_type["GRAPHQL_API"]) {
    const auto key = str(*e, "idempotencyKey");
    CHECK(key.rfind("gql:", 0) == 0);
    const auto colon = key.find(':', 4);
    CHECK(fields_of(*e) == (e->HasMember("gqlOperationName") ? with({"gqlOperationType", "gqlOperationName"})
                                                             : with({"gqlOperationType"})));
    CHECK(str(*e, "endpointPath") == "/p/graphql");
    operations.insert(str(*e, "gqlOperationType") + " " +
                      (e->HasMember("gqlOperationName") ? str(*e, "gqlOperationName") : "-") + " " +
                      (colon == std::string::npos ? "-" : key.substr(colon)));
  }
  CHECK(operations ==
        std::multiset<std::string>{"MUTATION AddItem -", "QUERY - -", "QUERY Items :1", "MUTATION AddItem :2"});

  REQUIRE(by_type["MCP_SERVER"].size() == 3);
  std::multiset<std::string> tools;
  for (const auto* e : by_type["MCP_SERVER"]) {
    CHECK(fields_of(*e) == with({"sessionId", "agentId", "toolName", "executionDurationMs"}));
    CHECK(str(*e, "agentId") == "cust_acme");
    CHECK(str(*e, "sessionId") == "1868a90c-5f9c-4c8b-9e0e-2a2ed0f6a4b1");
    CHECK(str((*e)["metadata"], "mcp_product_id") == "mcp-prod-1");
    tools.insert(str(*e, "toolName"));
  }
  CHECK(tools == std::multiset<std::string>{"fetch", "fetch", "search_docs"});

  REQUIRE(by_type["AGENTIC_API"].size() == 1);
  const auto& agentic = *by_type["AGENTIC_API"][0];
  CHECK(fields_of(agentic) == with({"traceId", "spanId", "trace"}));
  CHECK(str(agentic, "traceId") == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(str(agentic, "spanId") == "00f067aa0ba902b7");
  CHECK(str(agentic["trace"], "traceparent") == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CHECK(str(agentic["trace"], "tracestate") == "congo=t61rcWkgMzE");

  REQUIRE(by_type["WEBSOCKET_API"].size() == 1);
  const auto& ws = *by_type["WEBSOCKET_API"][0];
  CHECK(fields_of(ws) == with({"executionDurationMs", "wsConnectionId"}));
  CHECK(str(ws, "wsConnectionId") == "dGhlIHNhbXBsZSBub25jZQ==");
  CHECK(ws["statusCode"].GetInt() == 101);
  CHECK(ws["executionDurationMs"].GetDouble() >= 400);
  CHECK(str(ws, "idempotencyKey").rfind("ws:", 0) == 0);

  REQUIRE(by_type["API"].size() == 2);
  std::set<std::string> api_paths;
  for (const auto* e : by_type["API"]) {
    CHECK(fields_of(*e) == base_fields);
    api_paths.insert(str(*e, "endpointPath"));
  }
  CHECK(api_paths == std::set<std::string>{"/v1/plain", "/p/graphql"});
}

TEST_CASE("plugin protocols: the check names the MCP tool or GraphQL operation, so a feature rule can refuse one",
          "[plugin][e2e][protocol][operation]") {
  protocol_env env;
  http_client c(env.proxy());
  const std::vector<std::pair<std::string, std::string>> json_headers = {{"X-Tenant-Id", "cust_acme"},
                                                                         {"Content-Type", "application/json"}};
  auto call = [&](const std::string& tool) {
    return c.post("/p/mcp", R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")" + tool + R"("}})",
                  json_headers);
  };
  auto r = call("delete_everything");
  CHECK(r.status == 403);
  CHECK(r.body.find("feature_not_entitled") != std::string::npos);
  CHECK(call("search_docs").status == 200);  // the same endpoint, another tool: feature tools
  // A batch of calls is checked by its path alone (feature tools), whatever its tools.
  CHECK(c.post("/p/mcp",
               R"([{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_everything"}},)"
               R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search_docs"}}])",
               json_headers)
            .status == 200);

  r = c.post("/p/graphql", R"({"query":"mutation DropAll { drop }"})", json_headers);
  CHECK(r.status == 403);
  // A batch of operations too: checked by its path alone (feature tools), DropAll among them.
  CHECK(c.post("/p/graphql", R"([{"query":"query Items { items { id } }"},{"query":"mutation DropAll { drop }"}])",
               json_headers)
            .status == 200);
  CHECK(c.post("/p/graphql", R"({"query":"query Items { items { id } }"})", json_headers).status == 200);
}

// gqlHasErrors: the handler's body_filter phase reads a GraphQL upstream's response (protocol.body_filter).
TEST_CASE("plugin protocols: gqlHasErrors from a GraphQL upstream's errors member, per operation of a batch",
          "[plugin][e2e][protocol][gql_errors]") {
  protocol_env env;
  http_client c(env.proxy());
  const std::vector<std::pair<std::string, std::string>> json_headers = {{"X-Tenant-Id", "cust_acme"},
                                                                         {"Content-Type", "application/json"}};
  auto r = c.post("/p/errors/graphql", R"({"query":"query Items { items { id } }"})", json_headers);
  REQUIRE(r.status == 200);
  CHECK(r.body.find("\"data\"") != std::string::npos);
  r = c.post("/p/errors/graphql", R"({"query":"query Fail { fail }"})", json_headers);
  REQUIRE(r.status == 200);
  CHECK(r.body.rfind(R"({"errors":[)", 0) == 0);  // passed on unchanged
  REQUIRE(c.post("/p/errors/graphql",
                 R"([{"query":"query Items { items { id } }"},{"query":"mutation Fail { fail }"}])", json_headers)
              .status == 200);
  // Not JSON ("upstream ok"): no gqlHasErrors.
  REQUIRE(c.post("/p/graphql", R"({"query":"query Plain { a }"})", json_headers).status == 200);

  const auto d = env.wait_events(5);
  REQUIRE(d["events"].Size() == 5);
  std::map<std::string, std::string> seen;  // operation name (and key suffix in a batch) -> gqlHasErrors
  for (const auto& rec : d["events"].GetArray()) {
    const auto& e = rec["event"];
    REQUIRE(str(e, "productType") == "GRAPHQL_API");
    const auto key = str(e, "idempotencyKey");
    const auto colon = key.find(':', 4);
    seen[str(e, "gqlOperationName") + (colon == std::string::npos ? "" : key.substr(colon))] =
        e.HasMember("gqlHasErrors") ? (e["gqlHasErrors"].GetBool() ? "true" : "false") : "<absent>";
    CHECK(fields_of(e) == (e.HasMember("gqlHasErrors") ? with({"gqlOperationType", "gqlOperationName", "gqlHasErrors"})
                                                       : with({"gqlOperationType", "gqlOperationName"})));
  }
  CHECK(seen ==
        std::map<std::string, std::string>{
            {"Items", "false"}, {"Fail", "true"}, {"Items:1", "false"}, {"Fail:2", "true"}, {"Plain", "<absent>"}});
}
