// Parsing the POST /v1/check body: fields, defaults and clear errors.
#include <catch2/catch.hpp>

#include <string>

#include "core/entitlements/check_request.hpp"

using namespace aforo::core::entitlements;

namespace {
std::optional<std::string> parse(std::string& body, check_request& out) { return parse_check_request(body, out); }
std::string error_of(std::string body) {
  check_request req;
  auto e = parse_check_request(body, req);
  return e ? *e : std::string("(ok)");
}
}  // namespace

TEST_CASE("check request: the contract example parses", "[entitlements][check]") {
  std::string body = R"({"customer_id":"cust_acme","feature":null,"service":"search","route":"search-v1",
    "method":"GET","path":"/v1/search/items/42","quantity":3,"request_id":"9f1c"})";
  check_request req;
  REQUIRE_FALSE(parse(body, req).has_value());
  CHECK(req.customer_id == "cust_acme");
  CHECK_FALSE(req.feature.has_value());
  CHECK(req.service == "search");
  CHECK(req.route == "search-v1");
  CHECK(req.method == "GET");
  CHECK(req.path == "/v1/search/items/42");
  CHECK(req.quantity == 3);
  CHECK(req.request_id == "9f1c");
}

TEST_CASE("check request: defaults, escapes, explicit feature and unknown keys", "[entitlements][check]") {
  std::string body = R"({"customer_id":"c\u00e9\"1","feature":"reports","extra":{"a":[1,{"b":null}]},"x":[]})";
  check_request req;
  REQUIRE_FALSE(parse(body, req).has_value());
  CHECK(req.customer_id == "c\xc3\xa9\"1");
  REQUIRE(req.feature.has_value());
  CHECK(*req.feature == "reports");
  CHECK(req.quantity == 1);
  CHECK(req.path.empty());

  std::string zero = R"({"customer_id":"c","quantity":0})";
  REQUIRE_FALSE(parse(zero, req).has_value());
  CHECK(req.quantity == 0);
  std::string whole = R"({"customer_id":"c","quantity":2.0})";
  REQUIRE_FALSE(parse(whole, req).has_value());
  CHECK(req.quantity == 2);
}

TEST_CASE("check request: malformed bodies get clear errors", "[entitlements][check]") {
  CHECK(error_of("{\"customer_id\":").rfind("malformed JSON at offset", 0) == 0);
  CHECK(error_of("") == "the body must be a JSON object");
  CHECK(error_of("[1]") == "the body must be a JSON object");
  CHECK(error_of(R"({"customer_id":"c"} x)").rfind("malformed JSON", 0) == 0);
  CHECK(error_of(std::string("{\"customer_id\":\"c\"}\0x", 22)) == "the body contains a NUL byte");
  CHECK(error_of("{}") == "customer_id is required");
  CHECK(error_of(R"({"customer_id":null})") == "customer_id must be a string");
  CHECK(error_of(R"({"customer_id":""})") == "customer_id must not be empty");
  CHECK(error_of(R"({"customer_id":42})") == "customer_id must be a string");
  CHECK(error_of(R"({"customer_id":"c","service":["a"]})") == "service must be a string");
  CHECK(error_of(R"({"customer_id":"c","method":{}})") == "method must be a string");
  CHECK(error_of(R"({"customer_id":"c","quantity":"3"})") == "quantity must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","quantity":-1})") == "quantity must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","quantity":1.5})") == "quantity must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","quantity":true})") == "quantity must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","quantity":18446744073709551615})") == "quantity must be at most 1000000000000");
  CHECK(error_of("{\"customer_id\":\"" + std::string(65, 'a') + "\"}") == "customer_id is longer than 64 characters");
  CHECK(error_of("{\"customer_id\":\"" + std::string(64, 'a') + "\"}") == "(ok)");
  CHECK(error_of("{\"customer_id\":\"c\",\"method\":\"" + std::string(17, 'G') + "\"}") ==
        "method is longer than 16 characters");
  // Nesting: at most 64 levels, the root object included (core/json/bounded_parse.hpp).
  CHECK(error_of("{\"customer_id\":\"c\",\"x\":" + std::string(63, '[') + std::string(63, ']') + "}") == "(ok)");
  CHECK(error_of("{\"customer_id\":\"c\",\"x\":" + std::string(10000, '[') + std::string(10000, ']') + "}") ==
        "JSON nested deeper than 64 levels");
  CHECK(error_of("{\"customer_id\":\"\xff\"}").rfind("malformed JSON", 0) == 0);  // invalid UTF-8
}

TEST_CASE("check request: leased is an optional count of requests admitted under a lease",
          "[entitlements][check][lease]") {
  std::string body = R"({"customer_id":"c","leased":49})";
  check_request req;
  REQUIRE_FALSE(parse(body, req).has_value());
  CHECK(req.leased == 49);
  CHECK(req.quantity == 1);
  std::string none = R"({"customer_id":"c","leased":null})";
  check_request req2;
  REQUIRE_FALSE(parse(none, req2).has_value());
  CHECK(req2.leased == 0);
  CHECK(error_of(R"({"customer_id":"c","leased":-1})") == "leased must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","leased":"3"})") == "leased must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","leased":1.5})") == "leased must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","leased":10000000000000})") == "leased must be at most 1000000000000");
}

TEST_CASE("check request: lease_unused is an optional count of lease units never admitted",
          "[entitlements][check][lease]") {
  std::string body = R"({"customer_id":"c","leased":4,"lease_unused":3})";
  check_request req;
  REQUIRE_FALSE(parse(body, req).has_value());
  CHECK(req.leased == 4);
  CHECK(req.lease_unused == 3);
  CHECK(req.reports_unused);
  CHECK(owned_check_request(req).view().lease_unused == 3);
  CHECK(owned_check_request(req).view().reports_unused);
  std::string zero = R"({"customer_id":"c","lease_unused":0})";
  check_request req0;
  REQUIRE_FALSE(parse(zero, req0).has_value());
  CHECK(req0.reports_unused);  // present, even 0: the client reports unused lease units
  std::string absent = R"({"customer_id":"c","leased":2})";
  check_request req1;
  REQUIRE_FALSE(parse(absent, req1).has_value());
  CHECK_FALSE(req1.reports_unused);
  CHECK(error_of(R"({"customer_id":"c","lease_unused":-1})") == "lease_unused must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","lease_unused":"3"})") == "lease_unused must be an integer >= 0");
}

TEST_CASE("check request: operation is an optional name the feature rules may match", "[entitlements][check]") {
  std::string body = R"({"customer_id":"c","path":"/graphql","operation":"ExportReport"})";
  check_request req;
  REQUIRE_FALSE(parse(body, req).has_value());
  CHECK(req.operation == "ExportReport");
  const owned_check_request owned(req);
  body.assign(body.size(), 'x');  // the owned copy does not point into the body
  CHECK(owned.view().operation == "ExportReport");
  CHECK(owned.view().path == "/graphql");

  std::string none = R"({"customer_id":"c","operation":null})";
  REQUIRE_FALSE(parse(none, req).has_value());
  CHECK(req.operation.empty());
  std::string grpc = R"({"customer_id":"c","operation":"shop.v1.Catalog/GetItem"})";
  REQUIRE_FALSE(parse(grpc, req).has_value());
  CHECK(req.operation == "shop.v1.Catalog/GetItem");
  CHECK(error_of(R"({"customer_id":"c","operation":7})") == "operation must be a string");
  CHECK(error_of(R"({"customer_id":"c","operation":")" + std::string(512, 'a') + "\"}") == "(ok)");
  CHECK(error_of(R"({"customer_id":"c","operation":")" + std::string(513, 'a') + "\"}") ==
        "operation is longer than 512 characters");
}

TEST_CASE("check request: report_id, report_resent and renewal name a lease report", "[entitlements][check]") {
  std::string body =
      R"({"customer_id":"c","leased":4,"lease_unused":2,"report_id":"w1a2:17","report_resent":true,"renewal":true})";
  check_request req;
  REQUIRE_FALSE(parse(body, req).has_value());
  CHECK(req.report_id == "w1a2:17");
  CHECK(req.report_resent);
  CHECK(req.renewal);
  const owned_check_request owned(req);
  CHECK(owned.view().report_id == "w1a2:17");
  CHECK(owned.view().report_resent);
  CHECK(owned.view().renewal);

  std::string plain = R"({"customer_id":"c"})";
  REQUIRE_FALSE(parse(plain, req).has_value());
  CHECK(req.report_id.empty());
  CHECK_FALSE(req.report_resent);
  CHECK_FALSE(req.renewal);

  CHECK(error_of(R"({"customer_id":"c","report_id":7})") == "report_id must be a string");
  CHECK(error_of(R"({"customer_id":"c","renewal":"yes"})") == "renewal must be true or false");
  CHECK(error_of(R"({"customer_id":"c","report_resent":1})") == "report_resent must be true or false");
  CHECK(error_of(R"({"customer_id":"c","leased":true})") == "leased must be an integer >= 0");
  CHECK(error_of(R"({"customer_id":"c","report_id":")" + std::string(65, 'x') + "\"}") ==
        "report_id is longer than 64 characters");
}
