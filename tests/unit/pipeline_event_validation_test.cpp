// Unit tests for ingest event validation and the 202 body (docs/design/ingest-contract.md#local-ingest).
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "core/pipeline/event_validation.hpp"
#include "pipeline_event_validation_support.hpp"

using namespace event_validation_test;

TEST_CASE("event validation: a valid event is accepted with its key fields", "[pipeline][validation]") {
  const auto r = single_event_batch(event(R"(,"metadata":{"gateway":"kong","cost":0.25})", "2.5"));
  REQUIRE(r.error == ingest_request_error::none);
  REQUIRE(r.accepted.size() == 1);
  const auto& e = r.accepted[0];
  CHECK(e.customer_id == "cust_acme");
  CHECK(e.metric_name == "api_calls");
  CHECK(e.idempotency_key == "kong:req-1");
  CHECK(e.quantity == 2.5);
  REQUIRE(e.cost.has_value());
  CHECK(*e.cost == 0.25);
}

TEST_CASE("event validation: accepted events are compact canonical JSON without unknown fields",
          "[pipeline][validation]") {
  const std::string body =
      "{ \"events\" : [ { \"junk\": [1,2,3], \"customerId\" : \"c1\",\n \"metricName\":\"m\","
      " \"quantity\": 3, \"occurredAt\": \"2026-01-01T00:00:00Z\", \"idempotencyKey\": \"k\","
      " \"statusCode\": null, \"metadata\": {\"route\":\"r1\", \"extra\":\"x\", \"consumer\":null} } ] }";
  const auto r = parse_ingest_batch(body, 1000);
  REQUIRE(r.accepted.size() == 1);
  CHECK(r.accepted[0].json == R"({"customerId":"c1","metricName":"m","quantity":3,"occurredAt":"2026-01-01T00:00:00Z",)"
                              R"("idempotencyKey":"k","metadata":{"route":"r1","extra":"x"}})");
  CHECK_FALSE(r.accepted[0].cost.has_value());
}

TEST_CASE("event validation: required fields are enforced one by one", "[pipeline][validation]") {
  const std::string all[] = {R"("customerId":"c")", R"("metricName":"m")", R"("quantity":1)",
                             R"("occurredAt":"2026-01-01T00:00:00Z")", R"("idempotencyKey":"k")"};
  for (int skip = 0; skip < 5; ++skip) {
    std::string ev = "{";
    for (int i = 0; i < 5; ++i) {
      if (i == skip) continue;
      if (ev.size() > 1) ev += ",";
      ev += all[i];
    }
    ev += "}";
    const auto r = single_event_batch(ev);
    INFO(ev);
    CHECK(r.accepted.empty());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].message.find(std::string(all[skip]).substr(1, all[skip].find('"', 1) - 1)) == 0);
  }
}

TEST_CASE("event validation: length limits count characters", "[pipeline][validation]") {
  const auto with_customer = [](const std::string& c) {
    return R"({"customerId":")" + c +
           R"(","metricName":"m","quantity":1,"occurredAt":"2026-01-01T00:00:00Z","idempotencyKey":"k"})";
  };
  CHECK(accepted_one(with_customer(std::string(64, 'a'))));
  CHECK_FALSE(accepted_one(with_customer(std::string(65, 'a'))));
  std::string accented;
  for (int i = 0; i < 64; ++i) accented += "\xC3\xA9";  // 64 characters, 128 bytes
  CHECK(accepted_one(with_customer(accented)));
  CHECK_FALSE(accepted_one(with_customer("")));
  CHECK(accepted_one(event("", "1", std::string(255, 'k'))));
  CHECK_FALSE(accepted_one(event("", "1", std::string(256, 'k'))));
}

TEST_CASE("event validation: quantity must be positive with 14 integer digits and 6 decimals",
          "[pipeline][validation]") {
  CHECK(accepted_one(event("", "1")));
  CHECK(accepted_one(event("", "0.1")));
  CHECK(accepted_one(event("", "0.000001")));
  CHECK(accepted_one(event("", "12.345678")));
  CHECK(accepted_one(event("", "99999999999999")));
  CHECK(accepted_one(event("", "99999999999999.5")));
  CHECK_FALSE(accepted_one(event("", "100000000000000")));
  CHECK_FALSE(accepted_one(event("", "0")));
  CHECK_FALSE(accepted_one(event("", "-1")));
  CHECK_FALSE(accepted_one(event("", "-0.5")));
  CHECK_FALSE(accepted_one(event("", "1.0000001")));
  CHECK_FALSE(accepted_one(event("", "0.0000001")));
  CHECK_FALSE(accepted_one(event("", "\"5\"")));
  CHECK_FALSE(accepted_one(event("", "true")));
}

TEST_CASE("event validation: occurredAt must be an ISO-8601 UTC string ending in Z", "[pipeline][validation]") {
  const auto at = [](const std::string& t) {
    return R"({"customerId":"c","metricName":"m","quantity":1,"occurredAt":)" + t + R"(,"idempotencyKey":"k"})";
  };
  CHECK(accepted_one(at("\"2026-11-26T10:00:00Z\"")));
  CHECK(accepted_one(at("\"2026-11-26T10:00:00.123456Z\"")));
  CHECK_FALSE(accepted_one(at("1764151200")));
  CHECK_FALSE(accepted_one(at("\"2026-11-26T10:00:00+00:00\"")));
  CHECK_FALSE(accepted_one(at("\"2026-11-26 10:00:00Z\"")));
  CHECK_FALSE(accepted_one(at("\"2026-13-26T10:00:00Z\"")));
  CHECK_FALSE(accepted_one(at("\"2026-11-26T24:00:00Z\"")));
  CHECK_FALSE(accepted_one(at("\"2026-11-26T10:00:00.Z\"")));
  CHECK_FALSE(accepted_one(at("\"yesterday\"")));
}

TEST_CASE("event validation: optional fields are type-checked", "[pipeline][validation]") {
  CHECK(accepted_one(event(R"(,"productType":"API","executionStatus":"SUCCESS","endpointPath":"/v1/x",)"
                           R"("httpMethod":"GET","statusCode":200,"responseTimeMs":12.5,"dataBytes":1024)")));
  CHECK_FALSE(accepted_one(event(R"(,"statusCode":"200")")));
  CHECK_FALSE(accepted_one(event(R"(,"statusCode":42)")));
  CHECK_FALSE(accepted_one(event(R"(,"executionStatus":"FINE")")));
  // Every executionStatus of docs/design/event-fields.md#execution-status (the plugin's status_outcomes may set any),
  // nothing else.
  for (const char* status : {"SUCCESS", "PARTIAL", "TIMEOUT", "ERROR", "VALIDATION_FAILED", "FAILED", "FAILURE",
                             "CANCELLED", "PENDING", "BLOCKED", "HITL_REQUIRED"}) {
    INFO(status);
    CHECK(accepted_one(event(std::string(R"(,"executionStatus":")") + status + "\"")));
  }
  CHECK_FALSE(accepted_one(event(R"(,"executionStatus":"pending")")));
  CHECK_FALSE(accepted_one(event(R"(,"responseTimeMs":-1)")));
  CHECK_FALSE(accepted_one(event(R"(,"dataBytes":1.5)")));
  CHECK_FALSE(accepted_one(event(R"(,"productType":7)")));
  CHECK_FALSE(accepted_one(event(R"(,"httpMethod":"")")));
  CHECK_FALSE(accepted_one(event(R"(,"metadata":"kong")")));
  CHECK_FALSE(accepted_one(event(R"(,"metadata":{"request_bytes":-3})")));
  CHECK_FALSE(accepted_one(event(R"(,"metadata":{"cost":"0.1"})")));
  CHECK_FALSE(accepted_one(event(R"(,"metadata":{"service":{}})")));
  CHECK(accepted_one(event(R"(,"metadata":{"service":"s","request_bytes":10,"response_bytes":20,"cost":0})")));
}

TEST_CASE("event validation: whole-request errors take nothing", "[pipeline][validation]") {
  CHECK(parse_ingest_batch("{\"events\":[", 1000).error == ingest_request_error::malformed_json);
  CHECK(parse_ingest_batch("{} x", 1000).error == ingest_request_error::malformed_json);
  CHECK(parse_ingest_batch("", 1000).error == ingest_request_error::malformed_json);
  CHECK(parse_ingest_batch("[]", 1000).error == ingest_request_error::not_an_object);
  CHECK(parse_ingest_batch("{\"data\":[]}", 1000).error == ingest_request_error::missing_events);
  CHECK(parse_ingest_batch("{\"events\":{}}", 1000).error == ingest_request_error::missing_events);
  const auto r = parse_ingest_batch(batch_of(event() + "," + event()), 1);
  CHECK(r.error == ingest_request_error::too_many_events);
  CHECK(r.accepted.empty());
  CHECK(status_for(ingest_request_error::too_many_events) == 413);
  CHECK(status_for(ingest_request_error::malformed_json) == 400);
  CHECK(status_for(ingest_request_error::none) == 202);
  const auto bad = parse_ingest_batch("{\"events\":[", 1000);
  CHECK_FALSE(bad.error_message.empty());
}

TEST_CASE("event validation: invalid events are reported by index and valid ones are kept", "[pipeline][validation]") {
  const auto r = parse_ingest_batch(
      batch_of(event("", "1", "a") + ",42," + event("", "0", "b") + "," + event("", "1", "c")), 1000);
  REQUIRE(r.error == ingest_request_error::none);
  REQUIRE(r.accepted.size() == 2);
  CHECK(r.accepted[0].idempotency_key == "a");
  CHECK(r.accepted[1].idempotency_key == "c");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].index == 1);
  CHECK(r.errors[0].message == "event must be a JSON object");
  CHECK(r.errors[1].index == 2);
  CHECK(r.errors[1].message.rfind("quantity", 0) == 0);
}

TEST_CASE("event validation: invalid UTF-8 rejects only its event", "[pipeline][validation]") {
  const auto r =
      parse_ingest_batch(batch_of(event("", "1", "bad\xFF") + "," + event(",\"metadata\":{\"route\":\"\xC3\"}") + "," +
                                  event(",\"junk\":\"\xFF\"", "1", "good")),
                         1000);
  REQUIRE(r.error == ingest_request_error::none);
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].index == 0);
  CHECK(r.errors[0].message == "event has a string that is not valid UTF-8");
  CHECK(r.errors[1].index == 1);
  REQUIRE(r.accepted.size() == 1);
  CHECK(r.accepted[0].idempotency_key == "good");
}

TEST_CASE("event validation: endpointPath is normalised, never a reason to reject", "[pipeline][validation]") {
  const auto path_of = [](const ingest_parse_result& r) {
    REQUIRE(r.accepted.size() == 1);
    rapidjson::Document d;
    d.Parse(r.accepted[0].json.data(), r.accepted[0].json.size());
    REQUIRE(d.IsObject());
    CHECK(std::string(d["endpointPath"].GetString()) == std::string(r.accepted[0].endpoint_path));
    return std::string(d["endpointPath"].GetString());
  };
  SECTION("a 3,000-byte path is truncated to 512 bytes") {
    const std::string path = "/" + std::string(2999, 'a');
    const auto r = single_event_batch(event(R"(,"endpointPath":")" + path + "\""));
    CHECK(r.errors.empty());
    CHECK(path_of(r) == path.substr(0, max_endpoint_path_bytes));
    CHECK(r.rewritten == 1);
  }
  SECTION("the cut is before a UTF-8 character, never inside one") {
    const std::string path = "/" + std::string(510, 'a') + "\xE2\x82\xAC" + "tail";  // euro sign at bytes 512-514
    CHECK(path_of(single_event_batch(event(R"(,"endpointPath":")" + path + "\""))) == "/" + std::string(510, 'a'));
    const std::string two = "/" + std::string(509, 'a') + "\xC3\xA9" + "tail";  // e-acute at bytes 511-512
    CHECK(path_of(single_event_batch(event(R"(,"endpointPath":")" + two + "\""))) ==
          "/" + std::string(509, 'a') + "\xC3\xA9");
  }
  SECTION("bytes that are not UTF-8 are percent-encoded; valid characters stay") {
    const auto r =
        single_event_batch(event(",\"endpointPath\":\"/v1/\xFF\xFE"
                                 "caf\xC3\xA9/\xC3(\xED\xA0\x80\""));
    CHECK(r.errors.empty());
    CHECK(path_of(r) == "/v1/%FF%FEcaf\xC3\xA9/%C3(%ED%A0%80");
  }
  SECTION("a valid path within the limit is forwarded as posted") {
    const auto r = single_event_batch(event(",\"endpointPath\":\"/caf\xC3\xA9/" + std::string(400, 'x') + "\""));
    CHECK(r.errors.empty());
    CHECK(r.rewritten == 0);
  }
  SECTION("other fields keep their rules") {
    CHECK_FALSE(accepted_one(event(R"(,"endpointPath":42)")));
    CHECK_FALSE(accepted_one(event(",\"endpointPath\":\"/ok\",\"httpMethod\":\"" + std::string(17, 'G') + "\"")));
    CHECK_FALSE(accepted_one(event(",\"endpointPath\":\"/ok\",\"metadata\":{\"route\":\"\xFF\"}")));
  }
  CHECK(normalize_endpoint_path("/plain") == std::nullopt);
  CHECK(normalize_endpoint_path(std::string(512, 'a')) == std::nullopt);
  CHECK(normalize_endpoint_path(std::string(513, 'a')) == std::string(512, 'a'));
}

TEST_CASE("event validation: a single-event body is validated as index 0", "[pipeline][validation]") {
  const auto ok = parse_ingest_single(event());
  REQUIRE(ok.accepted.size() == 1);
  const auto bad = parse_ingest_single(event("", "-1"));
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].index == 0);
  CHECK(parse_ingest_single("[1]").error == ingest_request_error::not_an_object);
  CHECK(parse_ingest_single("{").error == ingest_request_error::malformed_json);
}

TEST_CASE("event validation: 10k invalid events are each reported", "[pipeline][validation]") {
  std::string events;
  for (int i = 0; i < 10000; ++i) events += (i ? ",{}" : "{}");
  const auto r = parse_ingest_batch(batch_of(events), 10000);
  CHECK(r.accepted.empty());
  REQUIRE(r.errors.size() == 10000);
  CHECK(r.errors.back().index == 9999);
  const auto body = build_ingest_response(r.accepted.size(), r.errors);
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE(d.IsObject());
  CHECK(d["failed"].GetUint() == 10000);
  CHECK(d["errors"].Size() == 10000);
}

TEST_CASE("event validation: the 202 body lists counts and errors", "[pipeline][validation]") {
  const auto body = build_ingest_response(3, {{1, "quantity: bad \"x\""}, {4, "customerId: missing"}});
  CHECK(body == R"({"accepted":3,"failed":2,"errors":[{"index":1,"message":"quantity: bad \"x\""},)"
                R"({"index":4,"message":"customerId: missing"}]})");
  CHECK(build_ingest_response(0, {}) == R"({"accepted":0,"failed":0,"errors":[]})");
  CHECK(build_ingest_error_body(ingest_request_error::too_many_events, "too many") ==
        R"({"error":{"code":"payload_too_large","message":"too many"}})");
}

TEST_CASE("event validation: a number beyond the double range rejects its event, not the batch",
          "[pipeline][validation]") {
  const auto r = aforo::core::parse_ingest_batch(
      R"({"events":[{"customerId":"c","metricName":"m","quantity":1,"occurredAt":"2026-11-26T10:00:00Z",)"
      R"("idempotencyKey":"k1","metadata":{"cost":11e308}},)"
      R"({"customerId":"c","metricName":"m","quantity":1,"occurredAt":"2026-11-26T10:00:00Z",)"
      R"("idempotencyKey":"k2","responseTimeMs":11e308},)"
      R"({"customerId":"c","metricName":"m","quantity":1,"occurredAt":"2026-11-26T10:00:00Z","idempotencyKey":"k3"}]})",
      1000);
  REQUIRE(r.error == aforo::core::ingest_request_error::none);
  REQUIRE(r.accepted.size() == 1);
  CHECK(r.accepted[0].idempotency_key == "k3");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].index == 0);
  CHECK(r.errors[1].index == 1);
}

// --- Forwarding as posted -------------------------------------------------------------------------
