// Unit tests: discovery lists gRPC methods and GraphQL operations as operations of their service
// (docs/design/discovery.md#sources), even when a Kong route's path would otherwise stand for all of them.
#include <catch2/catch.hpp>

#include <string>

#include "core/discovery/catalog.hpp"
#include "core/discovery/event_observation.hpp"
#include "core/pipeline/event_validation.hpp"

using namespace aforo::core;
using namespace aforo::core::discovery;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;

std::string ev(const std::string& key, const std::string& fields) {
  return R"({"customerId":"c","metricName":"m","quantity":1,"occurredAt":"2026-11-26T10:00:00Z","idempotencyKey":")" +
         key + "\"," + fields + R"(,"metadata":{"service":"shop","route":"shop-grpc"}})";
}

bool has_op(const catalog& c, const std::string& path, const std::string& method) {
  const auto a = c.apis().find("shop");
  return a != c.apis().end() && a->second.operations.count({path, method}) == 1;
}

}  // namespace

TEST_CASE("discovery: gRPC methods and GraphQL operations are operations of their service", "[discovery][protocol]") {
  const std::string body =
      R"({"events":[)" +
      ev("k1", R"("productType":"GRPC_API","endpointPath":"/shop.v1.Catalog/GetItem","httpMethod":"POST",)"
               R"("grpcService":"shop.v1.Catalog","grpcMethod":"GetItem")") +
      "," +
      ev("k2", R"("productType":"GRPC_API","endpointPath":"/shop.v1.Catalog/ListItems","httpMethod":"POST",)"
               R"("grpcService":"shop.v1.Catalog","grpcMethod":"ListItems")") +
      "," +
      ev("k3", R"("productType":"GRAPHQL_API","endpointPath":"/graphql","httpMethod":"POST",)"
               R"("gqlOperationType":"MUTATION","gqlOperationName":"AddItem")") +
      "," +
      ev("k4", R"("productType":"GRAPHQL_API","endpointPath":"/graphql","httpMethod":"POST",)"
               R"("gqlOperationType":"QUERY")") +
      "," + ev("k5", R"("productType":"API","endpointPath":"/v1/items/42","httpMethod":"GET")") + "]}";
  const auto parsed = parse_ingest_batch(body, 1000);
  REQUIRE(parsed.accepted.size() == 5);

  // A Kong route for the gRPC service by its path prefix: without the protocol fields every method
  // would be the one operation "/shop.v1.Catalog/".
  kong_admin_state admin;
  admin.services.push_back({"svc-1", "shop", "shop.internal", "grpc", "", {}, true});
  kong_route r;
  r.id = "route-1";
  r.name = "shop-grpc";
  r.service_id = "svc-1";
  r.paths = {"/shop.v1.Catalog/", "/graphql"};
  admin.routes.push_back(r);
  catalog c;
  c.apply_admin(admin, t0);

  traffic_observation o;
  for (const auto& e : parsed.accepted) {
    REQUIRE(observation_from_accepted(e, o));
    CHECK(c.observe(o, t0) != observe_result::ignored);
  }
  c.seal(t0);
  CHECK(has_op(c, "/shop.v1.Catalog/GetItem", "POST"));
  CHECK(has_op(c, "/shop.v1.Catalog/ListItems", "POST"));
  CHECK(has_op(c, "/graphql#AddItem", "MUTATION"));
  CHECK(has_op(c, "/graphql", "QUERY"));
  CHECK(has_op(c, "/v1/items/{id}", "GET"));  // a plain API event is templated as before
}
