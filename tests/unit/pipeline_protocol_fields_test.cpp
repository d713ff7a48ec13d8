// Unit tests for the protocol-specific event fields of docs/design/event-fields.md#product-types: product types, the
// fields each type requires, Aforo's limits (truncation of long strings), and forwarding in the written form.
#include <catch2/catch.hpp>

#include <string>

#include "core/pipeline/event_validation.hpp"
#include "core/pipeline/protocol_fields.hpp"

using namespace aforo::core;

namespace {

const std::string head = R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,)"
                         R"("occurredAt":"2026-11-26T10:00:00.123Z","idempotencyKey":"k-1")";

ingest_parse_result one(const std::string& rest) {
  return parse_ingest_batch(R"({"events":[)" + head + rest + "}]}", 1000);
}

std::string error_of(const std::string& rest) {
  const auto r = one(rest);
  REQUIRE(r.error == ingest_request_error::none);
  return r.errors.empty() ? std::string() : r.errors[0].message;
}

bool accepted(const std::string& rest) {
  const auto r = one(rest);
  return r.error == ingest_request_error::none && r.accepted.size() == 1 && r.errors.empty();
}

}  // namespace

TEST_CASE("protocol fields: every product type of Aforo is accepted, others are refused with a reason",
          "[pipeline][validation][protocol]") {
  CHECK(accepted(R"(,"productType":"API")"));
  CHECK(accepted(R"(,"productType":"AGENTIC_API","traceId":"4bf92f3577b34da6a3ce929d0e0e4736")"));
  CHECK(accepted(R"(,"productType":"AI_AGENT","sessionId":"s-1","agentId":"a-1")"));
  CHECK(accepted(R"(,"productType":"MCP_SERVER","agentId":"a-1","toolName":"search")"));
  CHECK(accepted(R"(,"productType":"GRPC_API","grpcService":"pkg.Svc","grpcMethod":"Get")"));
  CHECK(accepted(R"(,"productType":"GRAPHQL_API","gqlOperationType":"QUERY")"));
  CHECK(accepted(R"(,"productType":"WEBSOCKET_API","wsConnectionId":"dGhlIHNhbXBsZSBub25jZQ==")"));
  CHECK(accepted(R"(,"productType":"MQTT_BROKER")"));
  CHECK(error_of(R"(,"productType":"SOAP")").rfind("productType: must be one of API,", 0) == 0);
  CHECK(error_of(R"(,"productType":"api")").rfind("productType:", 0) == 0);
  CHECK(error_of(R"(,"productType":7)").rfind("productType:", 0) == 0);
}

TEST_CASE("protocol fields: each product type's required fields are enforced with a per-event reason",
          "[pipeline][validation][protocol]") {
  CHECK(error_of(R"(,"productType":"GRPC_API","grpcService":"pkg.Svc")") ==
        "grpcMethod: required for productType GRPC_API");
  CHECK(error_of(R"(,"productType":"GRPC_API","grpcMethod":"Get")") ==
        "grpcService: required for productType GRPC_API");
  CHECK(error_of(R"(,"productType":"GRPC_API","grpcService":"pkg.Svc","grpcMethod":"")") ==
        "grpcMethod: required for productType GRPC_API");
  CHECK(error_of(R"(,"productType":"MCP_SERVER","agentId":"a")") == "toolName: required for productType MCP_SERVER");
  CHECK(error_of(R"(,"productType":"MCP_SERVER","toolName":"t")") == "agentId: required for productType MCP_SERVER");
  CHECK(error_of(R"(,"productType":"GRAPHQL_API","gqlOperationName":"Q")") ==
        "gqlOperationType: required for productType GRAPHQL_API");
  CHECK(error_of(R"(,"productType":"WEBSOCKET_API")") == "wsConnectionId: required for productType WEBSOCKET_API");
  CHECK(error_of(R"(,"productType":"AI_AGENT","agentId":"a")") == "sessionId: required for productType AI_AGENT");
  CHECK(error_of(R"(,"productType":"AI_AGENT","sessionId":"s")") == "agentId: required for productType AI_AGENT");
  // A null counts as absent (the written form drops it).
  CHECK(error_of(R"(,"productType":"GRPC_API","grpcService":"pkg.Svc","grpcMethod":null)") ==
        "grpcMethod: required for productType GRPC_API");

  // One bad event in a batch is refused alone, with its index.
  const auto r = parse_ingest_batch(R"({"events":[)" + head + R"(,"productType":"API"},)" + head +
                                        R"(,"productType":"GRPC_API","grpcService":"s"}]})",
                                    1000);
  REQUIRE(r.accepted.size() == 1);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].index == 1);
  CHECK(r.errors[0].message == "grpcMethod: required for productType GRPC_API");
}

TEST_CASE("protocol fields: strings over Aforo's length limits are truncated to them, before a character",
          "[pipeline][validation][protocol]") {
  const std::string long_method(200, 'm');
  const auto r = one(R"(,"productType":"GRPC_API","grpcService":"pkg.Svc","grpcMethod":")" + long_method + "\"");
  REQUIRE(r.accepted.size() == 1);
  CHECK(r.rewritten == 1);
  CHECK(r.accepted[0].grpc_method == std::string(max_grpc_method_chars, 'm'));
  CHECK(r.accepted[0].json.find(R"("grpcMethod":")" + std::string(128, 'm') + "\"}") != std::string_view::npos);

  // Characters, not bytes: 40 two-byte characters fit agentId's 36 only when cut to 36 characters.
  std::string accented;
  for (int i = 0; i < 40; ++i) accented += "\xC3\xA9";
  const auto a = one(R"(,"productType":"MCP_SERVER","agentId":")" + accented + R"(","toolName":"t")");
  REQUIRE(a.accepted.size() == 1);
  std::string expected;
  for (int i = 0; i < 36; ++i) expected += "\xC3\xA9";
  CHECK(std::string(a.accepted[0].json).find(R"("agentId":")" + expected + "\"") != std::string::npos);

  const struct {
    const char* name;
    std::size_t limit;
  } limits[] = {{"traceId", 128},          {"spanId", 32},         {"sessionId", 64},
                {"agentId", 36},           {"toolName", 64},       {"capabilityName", 64},
                {"subscriptionId", 64},    {"grpcService", 255},   {"grpcMethod", 128},
                {"gqlOperationName", 255}, {"wsConnectionId", 64}, {"mqttTopic", 500},
                {"mqttClientId", 128}};
  for (const auto& l : limits) {
    INFO(l.name);
    const auto at = one(std::string(R"(,")") + l.name + R"(":")" + std::string(l.limit, 'x') + "\"");
    REQUIRE(at.accepted.size() == 1);
    CHECK(at.rewritten == 0);  // at the limit: forwarded as posted
    const auto over = one(std::string(R"(,")") + l.name + R"(":")" + std::string(l.limit + 1, 'x') + "\"");
    REQUIRE(over.accepted.size() == 1);
    CHECK(std::string(over.accepted[0].json).find(std::string(l.limit, 'x') + "\"") != std::string::npos);
    CHECK(std::string(over.accepted[0].json).find(std::string(l.limit + 1, 'x')) == std::string::npos);
    CHECK(error_of(std::string(R"(,")") + l.name + R"(":5)") == std::string(l.name) + ": must be a string");
  }
}

TEST_CASE("protocol fields: typed fields outside their types are refused with a reason",
          "[pipeline][validation][protocol]") {
  CHECK(accepted(R"(,"executionDurationMs":12.5,"messageCount":3,"grpcStatusCode":0,"gqlComplexity":7,)"
                 R"("gqlHasErrors":false,"grpcCallType":"UNARY","wsDirection":"INBOUND","wsFrameType":"TEXT")"));
  CHECK(error_of(R"(,"executionDurationMs":-1)") == "executionDurationMs: must be a number >= 0");
  CHECK(error_of(R"(,"messageCount":1.5)") == "messageCount: must be an integer >= 0");
  CHECK(error_of(R"(,"grpcStatusCode":"OK")") == "grpcStatusCode: must be an integer >= 0");
  CHECK(error_of(R"(,"gqlComplexity":-3)") == "gqlComplexity: must be a number >= 0");
  CHECK(error_of(R"(,"gqlHasErrors":"yes")") == "gqlHasErrors: must be true or false");
  CHECK(error_of(R"(,"gqlOperationType":"")") == "gqlOperationType: must be a string of 1 to 20 characters");
  CHECK(error_of(R"(,"grpcCallType":")" + std::string(21, 'X') + "\"") ==
        "grpcCallType: must be a string of 1 to 20 characters");
  CHECK(accepted(R"(,"executionStatus":"HITL_REQUIRED")"));
  CHECK(accepted(R"(,"executionStatus":"PARTIAL")"));
  CHECK(error_of(R"(,"executionStatus":"FINE")").rfind("executionStatus: must be SUCCESS, PARTIAL,", 0) == 0);
}

TEST_CASE("protocol fields: the trace object carries its four members as strings", "[pipeline][validation][protocol]") {
  const std::string trace =
      R"(,"productType":"AGENTIC_API","traceId":"4bf92f3577b34da6a3ce929d0e0e4736",)"
      R"("spanId":"00f067aa0ba902b7","trace":{"traceparent":)"
      R"("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"congo=t61rcWkgMzE",)"
      R"("xRequestId":"r-1"})";
  const auto r = one(trace);
  REQUIRE(r.accepted.size() == 1);
  CHECK(r.rewritten == 0);  // the written form: forwarded byte for byte
  CHECK(r.accepted[0].json == head + trace + "}");
  CHECK(r.accepted[0].product_type == "AGENTIC_API");
  CHECK(error_of(R"(,"trace":"00-abc")") == "trace: must be an object");
  CHECK(error_of(R"(,"trace":{"baggage":"x"})") ==
        "trace: members are traceparent, tracestate, xTraceId and xRequestId only");
  CHECK(error_of(R"(,"trace":{"xTraceId":1})") == "trace: members must be strings of at most 512 characters");
  CHECK(error_of(R"(,"trace":{"tracestate":")" + std::string(513, 's') + "\"}") ==
        "trace: members must be strings of at most 512 characters");
}

TEST_CASE("protocol fields: an event in the written form is forwarded as posted, with its dimensions read",
          "[pipeline][validation][protocol]") {
  // As the plugin writes a gRPC and a GraphQL event: core fields, then protocol ones in order, metadata last.
  const std::string grpc =
      R"(,"productType":"GRPC_API","executionStatus":"SUCCESS","endpointPath":)"
      R"("/shop.v1.Catalog/GetItem","httpMethod":"POST","statusCode":200,"responseTimeMs":3,)"
      R"("dataBytes":12,"grpcService":"shop.v1.Catalog","grpcMethod":"GetItem","grpcStatusCode":0,)"
      R"("grpcCallType":"UNARY","metadata":{"gateway":"kong","service":"shop"}})";
  const auto r = parse_ingest_batch(R"({"events":[)" + head + grpc + "]}", 1000);
  REQUIRE(r.accepted.size() == 1);
  CHECK(r.rewritten == 0);
  CHECK(r.accepted[0].json == head + grpc);
  CHECK(r.accepted[0].grpc_service == "shop.v1.Catalog");
  CHECK(r.accepted[0].grpc_method == "GetItem");
  CHECK(r.accepted[0].service == "shop");

  // Out of order (metadata before grpcService): the same event, re-serialized in the written order.
  const std::string reordered = R"(,"productType":"GRPC_API","metadata":{"gateway":"kong","service":"shop"},)"
                                R"("grpcMethod":"GetItem","grpcService":"shop.v1.Catalog","junk":1})";
  const auto o = parse_ingest_batch(R"({"events":[)" + head + reordered + "]}", 1000);
  REQUIRE(o.accepted.size() == 1);
  CHECK(o.rewritten == 1);
  CHECK(o.accepted[0].json == head + R"(,"productType":"GRPC_API","grpcService":"shop.v1.Catalog",)"
                                     R"("grpcMethod":"GetItem","metadata":{"gateway":"kong","service":"shop"}})");

  const std::string gql = R"(,"productType":"GRAPHQL_API","gqlOperationType":"MUTATION","gqlOperationName":"AddItem",)"
                          R"("gqlHasErrors":true})";
  const auto g = one(gql.substr(0, gql.size() - 1));
  REQUIRE(g.accepted.size() == 1);
  CHECK(g.rewritten == 0);
  CHECK(g.accepted[0].gql_operation_type == "MUTATION");
  CHECK(g.accepted[0].gql_operation_name == "AddItem");
}

TEST_CASE("protocol fields: the plugin's MCP and WebSocket events are forwarded as posted",
          "[pipeline][validation][protocol]") {
  // As lua/kong/plugins/aforo-metering/protocol.lua + event.lua write them (lua/README.md examples).
  const std::string mcp = R"(,"productType":"MCP_SERVER","executionStatus":"SUCCESS","endpointPath":"/p/mcp",)"
                          R"("httpMethod":"POST","statusCode":200,"responseTimeMs":1,"dataBytes":275,)"
                          R"("traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",)"
                          R"("sessionId":"s-1","agentId":"cust_acme","toolName":"fetch","executionDurationMs":1,)"
                          R"("trace":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},)"
                          R"("metadata":{"gateway":"kong","request_bytes":331,"response_bytes":275,"service":"shop",)"
                          R"("route":"protocols","mcp_product_id":"mcp-prod-1"}})";
  const std::string ws = R"(,"productType":"WEBSOCKET_API","executionStatus":"SUCCESS","endpointPath":"/p/ws/chat",)"
                         R"("httpMethod":"GET","statusCode":101,"responseTimeMs":1016,"dataBytes":129,)"
                         R"("executionDurationMs":1016,"wsConnectionId":"dGhlIHNhbXBsZSBub25jZQ==",)"
                         R"("metadata":{"gateway":"kong","request_bytes":180,"response_bytes":129}})";
  for (const auto& rest : {mcp, ws}) {
    const auto r = parse_ingest_batch(R"({"events":[)" + head + rest + "]}", 1000);
    REQUIRE(r.accepted.size() == 1);
    CHECK(r.rewritten == 0);
    CHECK(r.accepted[0].json == head + rest);
  }
}
