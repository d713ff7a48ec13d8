// Bad input to POST /v1/ingest/batch and /v1/ingest gets clear errors and never costs a valid event.
#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;

namespace {

std::string invalid_event(int i) {
  // quantity of the wrong type, occurredAt as a bare number: two rule violations.
  return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":"lots","occurredAt":1732615200,)"
         R"("idempotencyKey":"bad-)" +
         std::to_string(i) + R"("})";
}

}  // namespace

TEST_CASE("pipeline: malformed, mistyped and oversized requests get clear errors and lose no valid event",
          "[pipeline]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 100, flush_interval: 100ms }\n"
                                  "server: { max_body: 8MiB, max_batch_events: 10000 }\n"),
                     sidecar_env());
  auto c = sc.client();
  int valid = 0;
  auto post_valid = [&](int n) {
    REQUIRE(c.post("/v1/ingest/batch", batch("v", valid, valid + n)).status == 202);
    valid += n;
  };
  post_valid(5);

  SECTION("malformed JSON is 400 and takes nothing") {
    for (const char* body : {R"({"events":[{"customerId":)", "not json", R"([1,2,3])", R"({"events":"x"})", ""}) {
      INFO(body);
      const auto r = c.post("/v1/ingest/batch", body);
      CHECK(r.status == 400);
      CHECK(r.body.find(R"("code":"bad_request")") != std::string::npos);
    }
    CHECK(metric(sc, "aforo_sidecar_usage_requests_refused_total{reason=\"malformed\"}") == 5);
  }
  SECTION("wrong types are refused one by one; the valid neighbours are taken") {
    std::string body = R"({"events":[)" + event(key("v", valid)) + "," + invalid_event(0) + "," +
                       event(key("v", valid + 1)) + R"(,{"customerId":42},"text"]})";
    valid += 2;
    const auto r = c.post("/v1/ingest/batch", body);
    REQUIRE(r.status == 202);
    CHECK(r.body.find(R"("accepted":2,"failed":3)") != std::string::npos);
    CHECK(r.body.find(R"("index":1)") != std::string::npos);
    CHECK(r.body.find(R"("index":3)") != std::string::npos);
    CHECK(r.body.find(R"("index":4)") != std::string::npos);
    CHECK(r.body.find("quantity") != std::string::npos);
    const auto one = c.post("/v1/ingest", invalid_event(1));
    CHECK(one.status == 202);
    CHECK(one.body.find(R"("accepted":0,"failed":1)") != std::string::npos);
  }
  SECTION("a body over server.max_body is 413") {
    // Announced length over the limit: answered before the body is read.
    aforo::testkit::raw_connection raw(sc.address());
    raw.send("POST /v1/ingest/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(9 * 1024 * 1024) + "\r\n\r\n" + batch("big", 0, 10));
    const auto out = raw.read_all();
    CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(out.find(R"("code":"payload_too_large")") != std::string::npos);
  }
  SECTION("more events than server.max_batch_events is 413 with a reason") {
    const auto r = c.post("/v1/ingest/batch", batch("many", 0, 10001));
    CHECK(r.status == 413);
    CHECK(r.body.find("10000") != std::string::npos);
    CHECK(metric(sc, "aforo_sidecar_usage_requests_refused_total{reason=\"too_many_events\"}") == 1);
  }
  SECTION("a batch of 10k invalid events gets 10k reasons and takes none") {
    std::string body = R"({"events":[)";
    for (int i = 0; i < 10000; ++i) body += (i ? "," : "") + invalid_event(i);
    body += "]}";
    const auto r = c.post("/v1/ingest/batch", body);
    REQUIRE(r.status == 202);
    CHECK(r.body.rfind(R"({"accepted":0,"failed":10000,)", 0) == 0);
    CHECK(r.body.find(R"("index":9999)") != std::string::npos);
    CHECK(metric(sc, "aforo_sidecar_events_rejected_total{reason=\"invalid\"}") == 10000);
  }

  post_valid(5);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == static_cast<std::uint64_t>(valid); }, 5s));
  check_exactly(received_keys(fake), "v", 0, valid);
  CHECK(metric(sc, "aforo_sidecar_events_accepted_total") == valid);
}
