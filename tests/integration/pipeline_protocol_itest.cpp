// Protocol-specific events (docs/design/event-fields.md#product-types) through the real sidecar to the fake ingest:
// gRPC, GraphQL, WebSocket, MCP and agentic events arrive with their fields; an event missing its type's required
// field is refused alone with a per-event reason; a field over Aforo's limit arrives truncated to it.
#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;

namespace {

std::string protocol_event(const std::string& key, const std::string& fields) {
  return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-11-26T10:00:00Z",)"
         R"("idempotencyKey":")" +
         key + "\"," + fields + R"(,"metadata":{"gateway":"kong","service":"shop"}})";
}

}  // namespace

TEST_CASE("pipeline: protocol events reach ingest with their type-specific fields, invalid ones get a reason",
          "[pipeline][protocol]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 100, flush_interval: 100ms }\n"),
                     sidecar_env());
  auto c = sc.client();
  const std::string long_method(300, 'm');
  const std::string body =
      R"({"events":[)" +
      protocol_event("grpc:tenant-1:r1:shop.v1.Catalog/GetItem",
                     R"("productType":"GRPC_API","endpointPath":"/shop.v1.Catalog/GetItem","httpMethod":"POST",)"
                     R"("statusCode":200,"grpcService":"shop.v1.Catalog","grpcMethod":"GetItem","grpcStatusCode":5,)"
                     R"("grpcCallType":"UNARY")") +
      "," +
      protocol_event("grpc:tenant-1:r2:shop.v1.Catalog/",
                     R"("productType":"GRPC_API","grpcService":"shop.v1.Catalog")") +
      "," +
      protocol_event("gql:tenant-1:r3:AddItem",
                     R"("productType":"GRAPHQL_API","gqlOperationType":"MUTATION","gqlOperationName":"AddItem",)"
                     R"("gqlHasErrors":false)") +
      "," +
      protocol_event("ws:tenant-1:dGhlIHNhbXBsZSBub25jZQ==",
                     R"("productType":"WEBSOCKET_API","wsConnectionId":"dGhlIHNhbXBsZSBub25jZQ==",)"
                     R"("executionDurationMs":2500)") +
      "," +
      protocol_event(
          "mcp:tenant-1:r5:search_docs",
          R"("productType":"MCP_SERVER","sessionId":"sess-9","agentId":"cust_acme","toolName":"search_docs",)"
          R"("executionDurationMs":41)") +
      "," +
      protocol_event("kong:r6", R"("productType":"AGENTIC_API","traceId":"4bf92f3577b34da6a3ce929d0e0e4736",)"
                                R"("spanId":"00f067aa0ba902b7","trace":{"traceparent":)"
                                R"("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})") +
      "," +
      protocol_event(
          "grpc:tenant-1:r7:shop.v1.Catalog/m",
          R"("productType":"GRPC_API","grpcService":"shop.v1.Catalog","grpcMethod":")" + long_method + "\"") +
      "]}";
  const auto r = c.post("/v1/ingest/batch", body);
  REQUIRE(r.status == 202);
  CHECK(r.body.find(R"("accepted":6,"failed":1)") != std::string::npos);
  CHECK(r.body.find(R"({"index":1,"message":"grpcMethod: required for productType GRPC_API"})") != std::string::npos);

  REQUIRE(wait_until([&] { return received_keys(fake).size() == 6; }, 5s));
  auto d = fake.received();
  std::map<std::string, const rapidjson::Value*> by_key;
  for (const auto& e : d["events"].GetArray()) by_key[e["event"]["idempotencyKey"].GetString()] = &e["event"];
  CHECK(fake_stat(fake, "failed") == 0);  // the fake refuses, as Aforo does, an event missing its type's fields

  const auto& grpc = *by_key.at("grpc:tenant-1:r1:shop.v1.Catalog/GetItem");
  CHECK(std::string(grpc["productType"].GetString()) == "GRPC_API");
  CHECK(std::string(grpc["grpcService"].GetString()) == "shop.v1.Catalog");
  CHECK(std::string(grpc["grpcMethod"].GetString()) == "GetItem");
  CHECK(grpc["grpcStatusCode"].GetInt() == 5);
  CHECK(std::string(grpc["grpcCallType"].GetString()) == "UNARY");

  const auto& gql = *by_key.at("gql:tenant-1:r3:AddItem");
  CHECK(std::string(gql["gqlOperationType"].GetString()) == "MUTATION");
  CHECK(std::string(gql["gqlOperationName"].GetString()) == "AddItem");
  CHECK(gql["gqlHasErrors"].GetBool() == false);

  const auto& ws = *by_key.at("ws:tenant-1:dGhlIHNhbXBsZSBub25jZQ==");
  CHECK(std::string(ws["wsConnectionId"].GetString()) == "dGhlIHNhbXBsZSBub25jZQ==");
  CHECK(ws["executionDurationMs"].GetInt() == 2500);

  const auto& mcp = *by_key.at("mcp:tenant-1:r5:search_docs");
  CHECK(std::string(mcp["toolName"].GetString()) == "search_docs");
  CHECK(std::string(mcp["agentId"].GetString()) == "cust_acme");
  CHECK(std::string(mcp["sessionId"].GetString()) == "sess-9");

  const auto& agentic = *by_key.at("kong:r6");
  CHECK(std::string(agentic["traceId"].GetString()) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(std::string(agentic["spanId"].GetString()) == "00f067aa0ba902b7");
  CHECK(std::string(agentic["trace"]["traceparent"].GetString()) ==
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");

  const auto& cut = *by_key.at("grpc:tenant-1:r7:shop.v1.Catalog/m");
  CHECK(std::string(cut["grpcMethod"].GetString()) == std::string(128, 'm'));
}
