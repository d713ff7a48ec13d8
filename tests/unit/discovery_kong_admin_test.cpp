// Discovery: Kong Admin API pages (real response shapes), pagination URLs, and event observations.
#include <catch2/catch.hpp>

#include "core/discovery/event_observation.hpp"
#include "core/discovery/kong_admin.hpp"

using namespace aforo::core::discovery;

TEST_CASE("discovery kong admin: a services page in Kong's shape parses with its next page",
          "[discovery][kong_admin]") {
  const char* body = R"({
    "data":[
      {"ca_certificates":null,"client_certificate":null,"connect_timeout":60000,"created_at":1700000000,
       "enabled":true,"host":"search.internal","id":"9748f662-7711-4a90-8186-dc02f10eb0f5","name":"search",
       "path":null,"port":80,"protocol":"http","read_timeout":60000,"retries":5,"tags":["aforo:monetized","team-a"],
       "tls_verify":null,"tls_verify_depth":null,"updated_at":1700000000,"write_timeout":60000},
      {"enabled":false,"host":"10.0.0.2","id":"4e3ad2e4-0bc4-4638-8e34-c84a417ba39b","name":null,
       "path":"/api","port":8080,"protocol":"https","tags":null},
      {"name":"no-id"}
    ],
    "next":"/services?offset=WyJkZTY0NzcwNi0zYmU3LTQyZjctODNlOS03NWQzYWQyNDFiNDIiXQ",
    "offset":"WyJkZTY0NzcwNi0zYmU3LTQyZjctODNlOS03NWQzYWQyNDFiNDIiXQ"})";
  auto page = parse_services_page(body);
  REQUIRE(page.ok());
  REQUIRE(page.data.size() == 2);
  CHECK(page.data[0].name == "search");
  CHECK(page.data[0].api_name() == "search");
  CHECK(page.data[0].tags == std::vector<std::string>{"aforo:monetized", "team-a"});
  CHECK(page.data[0].path.empty());
  CHECK(page.data[1].api_name() == "4e3ad2e4-0bc4-4638-8e34-c84a417ba39b");
  CHECK_FALSE(page.data[1].enabled);
  CHECK(page.data[1].tags.empty());
  CHECK(next_page_url("http://localhost:8001/", "/services", page.next, page.offset) ==
        "http://localhost:8001/services?offset=WyJkZTY0NzcwNi0zYmU3LTQyZjctODNlOS03NWQzYWQyNDFiNDIiXQ");
}

TEST_CASE("discovery kong admin: the last page has next null", "[discovery][kong_admin]") {
  auto page = parse_services_page(R"({"data":[],"next":null})");
  REQUIRE(page.ok());
  CHECK(page.data.empty());
  CHECK(next_page_url("http://localhost:8001", "/services", page.next, page.offset).empty());
}

TEST_CASE("discovery kong admin: routes and plugins keep their scope", "[discovery][kong_admin]") {
  const char* routes = R"({"data":[
      {"created_at":1700000000,"destinations":null,"headers":null,"hosts":["api.example.com"],
       "https_redirect_status_code":426,"id":"d35165e2-d03e-461a-bdeb-dad0a112abfe","methods":["get","POST"],
       "name":"search-v1","path_handling":"v0","paths":["/v1/search","~/v1/items/(?<id>\\d+)$"],
       "preserve_host":false,"protocols":["http","https"],"regex_priority":0,"request_buffering":true,
       "response_buffering":true,"service":{"id":"9748f662-7711-4a90-8186-dc02f10eb0f5"},"snis":null,
       "sources":null,"strip_path":true,"tags":null,"updated_at":1700000000},
      {"id":"r2","name":null,"methods":null,"paths":null,"hosts":null,"service":null}
    ],"next":null})";
  auto rp = parse_routes_page(routes);
  REQUIRE(rp.ok());
  REQUIRE(rp.data.size() == 2);
  CHECK(rp.data[0].methods == std::vector<std::string>{"GET", "POST"});
  CHECK(rp.data[0].paths.size() == 2);
  CHECK(rp.data[0].service_id == "9748f662-7711-4a90-8186-dc02f10eb0f5");
  CHECK(rp.data[0].label() == "search-v1");
  CHECK(rp.data[1].service_id.empty());
  CHECK(rp.data[1].label() == "r2");

  const char* plugins = R"({"data":[
      {"config":{"sidecar_url":"http://127.0.0.1:8750","discovery_enabled":true},"consumer":null,
       "created_at":1700000000,"enabled":true,"id":"p1","instance_name":null,"name":"aforo-metering",
       "protocols":["grpc","grpcs","http","https"],"route":null,"service":null,"tags":null},
      {"config":{},"consumer":null,"enabled":false,"id":"p2","name":"rate-limiting",
       "route":{"id":"d35165e2-d03e-461a-bdeb-dad0a112abfe"},"service":null,"tags":["x"]}
    ],"next":null})";
  auto pp = parse_plugins_page(plugins);
  REQUIRE(pp.ok());
  REQUIRE(pp.data.size() == 2);
  CHECK(pp.data[0].name == "aforo-metering");
  CHECK(pp.data[0].service_id.empty());
  CHECK(pp.data[0].route_id.empty());
  CHECK(pp.data[1].route_id == "d35165e2-d03e-461a-bdeb-dad0a112abfe");
  CHECK_FALSE(pp.data[1].enabled);
}

TEST_CASE("discovery kong admin: bodies that are not list pages are errors", "[discovery][kong_admin]") {
  CHECK_FALSE(parse_services_page("not json").ok());
  CHECK_FALSE(parse_services_page("[]").ok());
  CHECK_FALSE(parse_routes_page(R"({"message":"Unauthorized"})").ok());
}

TEST_CASE("discovery kong admin: next page URLs: absolute, relative, from the offset alone",
          "[discovery][kong_admin]") {
  CHECK(next_page_url("http://kong:8001", "/routes", "http://other:8001/routes?offset=a", "") ==
        "http://other:8001/routes?offset=a");
  CHECK(next_page_url("https://kong/admin", "/routes", "/routes?offset=a", "") == "https://kong/admin/routes?offset=a");
  CHECK(next_page_url("http://kong:8001", "/plugins", "", "ab+/=") == "http://kong:8001/plugins?offset=ab%2B%2F%3D");
}

TEST_CASE("discovery: an accepted usage event gives service, route, method and path", "[discovery][event]") {
  auto o = observation_from_event(
      R"({"customerId":"c","metricName":"api_calls","quantity":1,"occurredAt":"2026-01-01T00:00:00Z",)"
      R"("idempotencyKey":"kong:1","endpointPath":"/v1/search/items/42","httpMethod":"GET",)"
      R"("metadata":{"gateway":"kong","service":"search","route":"search-v1"}})");
  REQUIRE(o.has_value());
  CHECK(o->service == "search");
  CHECK(o->route == "search-v1");
  CHECK(o->method == "GET");
  CHECK(o->path == "/v1/search/items/42");

  auto bare = observation_from_event(R"({"endpointPath":"/x","httpMethod":"GET","metadata":{"gateway":"kong"}})");
  REQUIRE(bare.has_value());
  CHECK(bare->service.empty());
  CHECK_FALSE(observation_from_event(R"({"customerId":"c"})").has_value());
  CHECK_FALSE(observation_from_event("nope").has_value());
}
