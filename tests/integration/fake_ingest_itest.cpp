// aforo-fake-ingest behaves like Aforo's ingest (headers, key, LZ4, envelope, deduplication,
// per-event failures) and applies its fault script, so the pipeline tests can rely on it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "fakes/fake_ingest/fake_ingest_process.hpp"
#include "support/testkit.hpp"

namespace {

using aforo::fake::blocking_client;
using aforo::fake::fake_ingest_options;
using aforo::fake::fake_ingest_process;
using headers = std::vector<std::pair<std::string, std::string>>;

headers ingest_headers() {
  return {{"Content-Type", "application/json"}, {"X-API-Key", "test-key-0001"}, {"X-Tenant-Id", "tenant-1"}};
}

std::string event(const std::string& key) {
  return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-11-26T10:00:00Z",)"
         R"("idempotencyKey":")" +
         key + R"("})";
}

std::string batch(std::initializer_list<std::string> events) {
  std::string s = R"({"events":[)";
  bool first = true;
  for (const auto& e : events) {
    s += (first ? "" : ",") + e;
    first = false;
  }
  return s + "]}";
}

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

}  // namespace

TEST_CASE("fake ingest: duplicates by idempotencyKey are counted and stored once", "[fake_ingest]") {
  fake_ingest_process fake;
  blocking_client c;
  auto r1 = c.send("POST", fake.ingest_url(), batch({event("a"), event("b"), event("a")}), ingest_headers());
  REQUIRE(r1.status == 202);
  auto d1 = parse(r1.body);
  CHECK(d1["success"].GetBool());
  CHECK(d1["data"]["accepted"].GetUint() == 2);
  CHECK(d1["data"]["duplicates"].GetUint() == 1);
  CHECK(d1["data"]["failed"].GetUint() == 0);
  CHECK(d1["meta"].IsObject());

  auto r2 = c.send("POST", fake.ingest_url(), batch({event("b"), event("c")}), ingest_headers());
  auto d2 = parse(r2.body);
  CHECK(d2["data"]["accepted"].GetUint() == 1);
  CHECK(d2["data"]["duplicates"].GetUint() == 1);

  auto got = fake.received();
  REQUIRE(got["events"].Size() == 3);
  CHECK(std::string(got["events"][0]["event"]["idempotencyKey"].GetString()) == "a");
  CHECK(std::string(got["events"][1]["event"]["idempotencyKey"].GetString()) == "b");
  CHECK(std::string(got["events"][2]["event"]["idempotencyKey"].GetString()) == "c");
  CHECK(got["events"][2]["request"].GetUint() == 2);
  auto st = fake.stats();
  CHECK(st["duplicates"].GetUint() == 2);
  CHECK(st["by_status"]["202"].GetUint() == 2);
}

TEST_CASE("fake ingest: --count-only accepts a batch's events by count, still checking the key", "[fake_ingest]") {
  fake_ingest_options o;
  o.count_only = true;
  fake_ingest_process fake(o);
  blocking_client c;
  auto r = c.send("POST", fake.ingest_url(), batch({event("a"), event("b"), event("a")}), ingest_headers());
  REQUIRE(r.status == 202);
  auto d = parse(r.body);
  CHECK(d["data"]["accepted"].GetUint() == 3);  // not deduplicated: nothing is parsed or remembered
  CHECK(d["data"]["failed"].GetUint() == 0);
  CHECK(fake.stats()["accepted"].GetUint() == 3);
  CHECK(fake.received()["events"].Size() == 0);

  CHECK(c.send("POST", fake.ingest_url(), R"({"events":[]})", ingest_headers()).status == 400);
  auto wrong_key = ingest_headers();
  wrong_key[1].second = "wrong";
  CHECK(c.send("POST", fake.ingest_url(), batch({event("c")}), wrong_key).status == 401);
}

TEST_CASE("fake ingest: events without customerId or idempotencyKey, and injected ones, fail one by one",
          "[fake_ingest]") {
  fake_ingest_process fake;
  fake.set_faults(R"([{"fail_events":[3]}])");
  blocking_client c;
  const std::string body = batch({event("a"), R"({"idempotencyKey":"x"})", R"({"customerId":"c"})", event("d")});
  auto r = c.send("POST", fake.ingest_url(), body, ingest_headers());
  REQUIRE(r.status == 202);
  auto d = parse(r.body);
  CHECK(d["data"]["accepted"].GetUint() == 1);
  CHECK(d["data"]["failed"].GetUint() == 3);
  const auto& errors = d["data"]["errors"];
  REQUIRE(errors.Size() == 3);
  CHECK(errors[0]["index"].GetUint() == 1);
  CHECK(std::string(errors[0]["message"].GetString()).find("customerId") != std::string::npos);
  CHECK(errors[1]["index"].GetUint() == 2);
  CHECK(errors[2]["index"].GetUint() == 3);
  CHECK(fake.received()["events"].Size() == 1);
}

TEST_CASE("fake ingest: scripted statuses apply to the next requests in order", "[fake_ingest]") {
  fake_ingest_process fake;
  fake.set_faults(
      R"({"steps":[{"status":503,"times":2},{"status":429,"retry_after":2},{"status":401},{"status":400}]})");
  blocking_client c;
  auto send = [&] { return c.send("POST", fake.ingest_url(), batch({event("k")}), ingest_headers()); };
  CHECK(send().status == 503);
  CHECK(send().status == 503);
  auto r429 = send();
  CHECK(r429.status == 429);
  CHECK(r429.header("Retry-After") == "2");
  CHECK(send().status == 401);
  CHECK(send().status == 400);
  CHECK(send().status == 202);  // script exhausted
  auto st = fake.stats();
  CHECK(st["by_status"]["503"].GetUint() == 2);
  CHECK(st["faults_pending"].GetUint() == 0);
  CHECK(st["stored"].GetUint() == 1);
}

TEST_CASE("fake ingest: rejects bad headers, bad bodies and bad keys as Aforo does", "[fake_ingest]") {
  fake_ingest_process fake;
  blocking_client c;
  auto h = ingest_headers();
  SECTION("missing Content-Type is 415") {
    CHECK(c.send("POST", fake.ingest_url(), batch({event("a")}),
                 {{"X-API-Key", "test-key-0001"}, {"X-Tenant-Id", "tenant-1"}})
              .status == 415);
  }
  SECTION("malformed JSON and no events are 400; too many events are 413, as Aforo answers past its limit") {
    CHECK(c.send("POST", fake.ingest_url(), "{nope", h).status == 400);
    CHECK(c.send("POST", fake.ingest_url(), R"({"events":[]})", h).status == 400);
    std::string big = R"({"events":[)";
    for (int i = 0; i < 1001; ++i) big += (i ? "," : "") + event("e" + std::to_string(i));
    CHECK(c.send("POST", fake.ingest_url(), big + "]}", h).status == 413);
  }
  SECTION("a body that is not an LZ4 frame is 400") {
    h.emplace_back("Content-Encoding", "lz4");
    CHECK(c.send("POST", fake.ingest_url(), batch({event("a")}), h).status == 400);
  }
  SECTION("a missing key is 401 and another tenant is 403") {
    CHECK(c.send("POST", fake.ingest_url(), batch({event("a")}), {{"Content-Type", "application/json"}}).status == 401);
    CHECK(c.send("POST", fake.ingest_url(), batch({event("a")}),
                 {{"Content-Type", "application/json"}, {"X-API-Key", "test-key-0001"}, {"X-Tenant-Id", "other"}})
              .status == 403);
  }
  CHECK(fake.stats()["stored"].GetUint() == 0);
}

TEST_CASE("fake ingest: bearer auth mode takes Authorization: Bearer", "[fake_ingest]") {
  fake_ingest_options o;
  o.bearer = true;
  o.tenant.clear();
  fake_ingest_process fake(o);
  blocking_client c;
  CHECK(c.send("POST", fake.ingest_url(), batch({event("a")}),
               {{"Content-Type", "application/json"}, {"Authorization", "Bearer test-key-0001"}})
            .status == 202);
  CHECK(c.send("POST", fake.ingest_url(), batch({event("b")}),
               {{"Content-Type", "application/json"}, {"X-API-Key", "test-key-0001"}})
            .status == 401);
}

TEST_CASE("fake ingest: a body compressed by the lz4 command-line tool is decoded", "[fake_ingest][lz4]") {
  aforo::testkit::temp_dir dir;
  const std::string plain = dir.write("batch.json", batch({event("cli-1"), event("cli-2")}));
  const std::string packed = dir.file("batch.json.lz4");
  REQUIRE(std::system(("lz4 -q -f " + plain + " " + packed).c_str()) == 0);
  fake_ingest_process fake;
  blocking_client c;
  auto h = ingest_headers();
  h.emplace_back("Content-Encoding", "lz4");
  auto r = c.send("POST", fake.ingest_url(), aforo::testkit::read_file(packed), h);
  REQUIRE(r.status == 202);
  CHECK(parse(r.body)["data"]["accepted"].GetUint() == 2);
}

TEST_CASE("fake ingest: the test endpoint takes one event", "[fake_ingest]") {
  fake_ingest_process fake;
  blocking_client c;
  const std::string url = fake.base_url() + "/v1/ingest/test";
  CHECK(c.send("POST", url, event("t-1"), ingest_headers()).status == 202);
  CHECK(c.send("POST", url, batch({event("t-2"), event("t-3")}), ingest_headers()).status == 400);
  CHECK(fake.stats()["stored"].GetUint() == 1);
}

TEST_CASE("fake ingest: --record appends stored events as JSON lines, and reset clears state", "[fake_ingest]") {
  aforo::testkit::temp_dir dir;
  fake_ingest_options o;
  o.record = dir.file("events.jsonl");
  fake_ingest_process fake(o);
  blocking_client c;
  REQUIRE(c.send("POST", fake.ingest_url(), batch({event("r1"), event("r2"), event("r1")}), ingest_headers()).status ==
          202);
  const std::string lines = aforo::testkit::read_file(o.record);
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 2);
  CHECK(lines.find(R"("idempotencyKey":"r2")") != std::string::npos);

  fake.reset();
  CHECK(fake.stats()["requests"].GetUint() == 0);
  // After a reset a key seen before is new again.
  auto r = c.send("POST", fake.ingest_url(), batch({event("r1")}), ingest_headers());
  CHECK(parse(r.body)["data"]["accepted"].GetUint() == 1);
}

TEST_CASE("fake ingest: a delayed answer is committed on arrival", "[fake_ingest]") {
  fake_ingest_process fake;
  fake.set_faults(R"([{"delay_ms":2000}])");
  aforo::io::client_options opts;
  opts.request_timeout = std::chrono::milliseconds(200);
  blocking_client c(opts);
  const auto r = c.send("POST", fake.ingest_url(), batch({event("slow")}), ingest_headers());
  // Seen once on a loaded machine: another error than the timeout; say which if it comes back.
  INFO("error kind " << static_cast<int>(r.error) << ": " << r.error_message
                     << "; fake ingest: " << fake.proc().output());
  CHECK(r.error == aforo::io::client_result::error_kind::timeout);
  CHECK(fake.stats()["stored"].GetUint() == 1);
}

TEST_CASE("fake ingest: --rtt-ms answers no sooner than the round trip, and /_control/network changes it live",
          "[fake_ingest][network]") {
  fake_ingest_options o;
  o.rtt_ms = 150;
  fake_ingest_process fake(o);
  blocking_client c;
  const auto timed = [&](const std::string& key) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = c.send("POST", fake.ingest_url(), batch({event(key)}), ingest_headers());
    CHECK(r.status == 202);
    return std::chrono::steady_clock::now() - t0;
  };
  CHECK(timed("n1") >= std::chrono::milliseconds(150));
  const auto r = fake.control("POST", "/_control/network", R"({"rtt_ms":400})");
  CHECK(parse(r.body)["rtt_ms"].GetUint() == 400);
  CHECK(timed("n2") >= std::chrono::milliseconds(400));
  fake.control("POST", "/_control/network", R"({"rtt_ms":0})");
  CHECK(timed("n3") < std::chrono::milliseconds(400));  // loopback again
  CHECK(fake.stats()["accepted"].GetUint() == 3);
}

TEST_CASE("fake ingest: a request past --max-in-flight is answered 429 with Retry-After: 1, the others as usual",
          "[fake_ingest][network]") {
  fake_ingest_options o;
  o.rtt_ms = 500;
  o.max_in_flight = 1;
  fake_ingest_process fake(o);
  aforo::io::client_result first;
  std::thread t([&] {
    blocking_client c1;
    first = c1.send("POST", fake.ingest_url(), batch({event("f1")}), ingest_headers());
  });
  REQUIRE(aforo::testkit::wait_until([&] { return fake.stats()["in_flight"].GetUint() == 1; }));
  blocking_client c2;
  const auto over = c2.send("POST", fake.ingest_url(), batch({event("f2")}), ingest_headers());
  t.join();
  CHECK(first.status == 202);
  CHECK(over.status == 429);
  CHECK(over.header("Retry-After") == "1");
  CHECK(parse(over.body)["error"]["code"].GetString() == std::string("TOO_MANY_REQUESTS"));
  const auto st = fake.stats();
  CHECK(st["over_limit"].GetUint() == 1);
  CHECK(st["peak_in_flight"].GetUint() == 2);  // the refused one was in progress too, for its round trip
  CHECK(st["accepted"].GetUint() == 1);        // the refused batch was not taken
  // Alone again: taken.
  CHECK(c2.send("POST", fake.ingest_url(), batch({event("f2")}), ingest_headers()).status == 202);
}

TEST_CASE("fake ingest: POST /_control/network with a bad body is 400 and changes nothing", "[fake_ingest][network]") {
  fake_ingest_options o;
  o.rtt_ms = 100;
  fake_ingest_process fake(o);
  blocking_client c;
  for (const char* body : {"not json", "[1]", R"({"rtt_ms":"50"})", R"({"rtt_ms":-1})", R"({"jitter_ms":1.5})",
                           R"({"max_in_flight":true})"}) {
    INFO("body " << body);
    const auto r = c.send("POST", fake.base_url() + "/_control/network", body);
    CHECK(r.status == 400);
    CHECK(r.body.find("bad_request") != std::string::npos);
  }
  // Still a 100 ms round trip.
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(c.send("POST", fake.ingest_url(), batch({event("b1")}), ingest_headers()).status == 202);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(100));
}
