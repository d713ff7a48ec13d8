// Event validation, the written form: events the plugin builds are forwarded byte for byte; events in
// another form are re-serialized exactly as RapidJSON's Writer writes them.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <random>
#include <string>
#include <vector>

#include "core/pipeline/event_validation.hpp"
#include "pipeline_event_validation_support.hpp"

using namespace event_validation_test;

namespace {

// An event as the Kong plugin builds it (lua/kong/plugins/aforo-metering/event.lua): already in the
// written form, so it is forwarded byte for byte.
std::string plugin_event(int i) {
  return R"({"customerId":"cust_bench","metricName":"api_calls","quantity":1,"occurredAt":"2026-11-26T12:00:00.123Z",)"
         R"("idempotencyKey":"kong:0b7c9e64-1f2a-4c3d-9e8f-)" +
         std::to_string(100000000000 + i) +
         R"(","productType":"API","executionStatus":"SUCCESS","endpointPath":"/v1/search/items/42","httpMethod":"GET",)"
         R"("statusCode":200,"responseTimeMs":1,"dataBytes":12,"metadata":{"gateway":"kong","request_bytes":120,)"
         R"("response_bytes":200,"service":"search","route":"search-v1","cost":0.002}})";
}

// The re-serialization as the validator wrote every event before it could forward one as posted: a
// DOM parse and RapidJSON's Writer, the contract fields in order, first occurrence, nulls dropped
// (at the top level and directly in metadata). The reference the fast path must match byte for byte.
std::string reference_json(const std::string& event_text) {
  static const char* const fields[] = {
      "customerId",       "metricName",       "quantity",       "occurredAt",     "idempotencyKey",
      "productType",      "executionStatus",  "endpointPath",   "httpMethod",     "statusCode",
      "responseTimeMs",   "dataBytes",        "traceId",        "spanId",         "sessionId",
      "agentId",          "toolName",         "capabilityName", "subscriptionId", "executionDurationMs",
      "messageCount",     "grpcService",      "grpcMethod",     "grpcStatusCode", "grpcCallType",
      "gqlOperationType", "gqlOperationName", "gqlComplexity",  "gqlHasErrors",   "wsConnectionId",
      "wsDirection",      "wsFrameType",      "mqttTopic",      "mqttClientId",   "trace",
      "metadata"};
  rapidjson::Document d;
  d.Parse(event_text.data(), event_text.size());
  REQUIRE_FALSE(d.HasParseError());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const char* f : fields) {
    const auto it = d.FindMember(f);
    if (it == d.MemberEnd() || it->value.IsNull()) continue;
    w.Key(f);
    if (std::string_view(f) != "metadata") {
      it->value.Accept(w);
      continue;
    }
    w.StartObject();
    for (const auto& m : it->value.GetObject()) {
      if (m.value.IsNull()) continue;
      w.Key(m.name.GetString(), m.name.GetStringLength());
      m.value.Accept(w);
    }
    w.EndObject();
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

TEST_CASE("event validation: events in the written form are forwarded as posted, byte for byte",
          "[pipeline][validation]") {
  std::string events;
  for (int i = 0; i < 200; ++i) events += (i ? "," : "") + plugin_event(i);
  const auto r = parse_ingest_batch(batch_of(events), 1000);
  REQUIRE(r.error == ingest_request_error::none);
  REQUIRE(r.accepted.size() == 200);
  CHECK(r.rewritten == 0);
  for (int i = 0; i < 200; ++i) {
    const auto& e = r.accepted[static_cast<std::size_t>(i)];
    CHECK(e.json == plugin_event(i));
    CHECK(e.json == reference_json(plugin_event(i)));
  }
  const auto& e = r.accepted[7];
  CHECK(e.customer_id == "cust_bench");
  CHECK(e.idempotency_key == "kong:0b7c9e64-1f2a-4c3d-9e8f-100000000007");
  CHECK(e.http_method == "GET");
  CHECK(e.endpoint_path == "/v1/search/items/42");
  CHECK(e.service == "search");
  CHECK(e.route == "search-v1");
  REQUIRE(e.cost.has_value());
  CHECK(*e.cost == 0.002);

  const auto single = parse_ingest_single(plugin_event(3));
  REQUIRE(single.accepted.size() == 1);
  CHECK(single.rewritten == 0);
  CHECK(single.accepted[0].json == plugin_event(3));
}

TEST_CASE("event validation: an event in another form is re-serialized exactly as the Writer writes it",
          "[pipeline][validation]") {
  const std::string base = R"({"customerId":"c","metricName":"m","quantity":1,"occurredAt":"2026-01-01T00:00:00Z",)"
                           R"("idempotencyKey":"k")";
  // Each one differs from the written form in one way the positional check must catch.
  const std::vector<std::string> variants = {
      base + R"(,"endpointPath":"\/v1\/x"})",                   // escaped slash: written as "/"
      base + R"(,"endpointPath":"/v1/\u0078"})",                // \u escape
      base + R"(,"endpointPath":"/a\"b","httpMethod":"GET"})",  // an escape the Writer keeps, before another field
      base + R"(,"endpointPath":"/v1/x" })",                    // whitespace before '}'
      base + R"(, "endpointPath":"/v1/x"})",                    // whitespace after ','
      base + R"(,"endpointPath" :"/v1/x"})",                    // whitespace before ':'
      base + R"(,"responseTimeMs":1.50})",                      // written as 1.5
      base + R"(,"responseTimeMs":1e2})",                       // written as 100.0
      base + R"(,"responseTimeMs":1E2,"dataBytes":3})",
      base + R"(,"responseTimeMs":-0})",  // written as 0
      base + R"(,"responseTimeMs":0.0020})",
      base + R"(,"responseTimeMs":18446744073709551616})",  // past uint64: a double
      base + R"(,"statusCode":null,"dataBytes":3})",        // a null field is dropped
      base + R"(,"junk":1})",                               // an unknown field is dropped
      base + R"(,"quantity":2})",                           // a repeated field: the first wins
      R"({"metricName":"m","customerId":"c","quantity":1,"occurredAt":"2026-01-01T00:00:00Z","idempotencyKey":"k"})",
      base + R"(,"metadata":{"gateway":null,"service":"s"}})",  // a null in metadata is dropped
      base + R"(,"metadata":{"service":"s","x":null}})",
      base + R"(,"metadata":{"service":"s" ,"route":"r"}})",
      base + R"(,"metadata":{"cost":0.50}})",
      // escapes between long plain runs: the plain text after an escape moves down in place
      base + R"(,"endpointPath":"\u0041bcdefghijklmnopqrstuvwxyz\"0123456789abcdefgh\\tail of more than eight\n"})",
  };
  for (const auto& v : variants) {
    INFO(v);
    const auto r = single_event_batch(v);
    REQUIRE(r.accepted.size() == 1);
    CHECK(r.rewritten == 1);
    CHECK(r.accepted[0].json == reference_json(v));
  }
  // Written form, nothing to change (nested values in metadata keep their nulls, numbers as the Writer
  // spells them, non-ASCII text as it is): forwarded as posted.
  const std::vector<std::string> as_posted = {
      base + "}",
      base + R"(,"responseTimeMs":1.5,"dataBytes":0})",
      base + R"(,"responseTimeMs":100.0})",
      base + R"(,"responseTimeMs":1e-7})",
      base + R"(,"endpointPath":"/caf)"
             "\xC3\xA9"
             R"("})",
      base + R"(,"metadata":{}})",
      base + R"(,"metadata":{"x":{"y":null,"z":[1,null,true,false,"s",{}]},"cost":0}})",
  };
  for (const auto& v : as_posted) {
    INFO(v);
    const auto r = single_event_batch(v);
    REQUIRE(r.accepted.size() == 1);
    CHECK(r.rewritten == 0);
    CHECK(r.accepted[0].json == v);
    CHECK(r.accepted[0].json == reference_json(v));
  }
}

TEST_CASE("event validation: random edits of the plugin's event re-serialize as the Writer would",
          "[pipeline][validation]") {
  // Each round edits the plugin's event a few times (whitespace, escapes, number spellings, order, nulls,
  // unknown or repeated fields) and checks every accepted event against the reference, and the fields
  // discovery and the margin guard read against what the written JSON holds.
  std::mt19937 rng(20261126);
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  // Each edit's pattern includes what follows it, so an edit never applies to its own result.
  const std::vector<std::pair<std::string, std::string>> edits = {
      {R"("quantity":1,)", R"("quantity":1.0,)"},
      {R"("quantity":1,)", R"("quantity":1e0,)"},
      {R"("quantity":1,)", R"("quantity": 1,)"},
      {R"("responseTimeMs":1,)", R"("responseTimeMs":-0,)"},
      {R"("responseTimeMs":1,)", R"("responseTimeMs":null,)"},
      {R"("cost":0.002})", R"("cost":2e-3})"},
      {R"("cost":0.002})", R"("cost":0.0020})"},
      {R"("cost":0.002})", R"("cost":null})"},
      {R"("/v1/search/items/42")", R"("\/v1\/search\/items\/42")"},
      {R"("GET")", R"("G\u0045T")"},
      {R"("search",)", R"("sea\u0072ch",)"},
      {R"("search-v1",)", R"("search-v1" ,)"},
      {R"({"gateway")", R"({ "gateway")"},
      {R"(,"productType")", R"(,"extra":[1,2],"productType")"},
      {R"(,"statusCode":200,)", ","},
      {R"("statusCode":200,"responseTimeMs")", R"("statusCode":200,"statusCode":201,"responseTimeMs")"},
      {R"("httpMethod":"GET",)", ""},
      {R"({"customerId":"cust_bench","metricName":"api_calls",)",
       R"({"metricName":"api_calls","customerId":"cust_bench",)"},
      {R"(,"service":"search",)", R"(,"service":null,"service":"search",)"},
      {R"("route":"search-v1",)", R"("route":"search-v1","route":"other",)"},
      {R"(,"cost":0.002})", "}"},
      {R"("metadata":{"gateway")", R"("metadata":{"nested":{"a":null},"gateway")"},
      {R"(}})", R"(} })"},
  };
  std::size_t rewritten = 0, as_posted = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string ev = plugin_event(round);
    for (std::size_t k = pick(4); k > 0; --k) {
      const auto& [from, to] = edits[pick(edits.size())];
      if (const auto at = ev.find(from); at != std::string::npos) ev.replace(at, from.size(), to);
    }
    INFO(ev);
    const auto r = single_event_batch(ev);
    REQUIRE(r.accepted.size() == 1);
    const auto& e = r.accepted[0];
    const std::string expected = reference_json(ev);
    CHECK(e.json == expected);
    (r.rewritten == 0 ? as_posted : rewritten) += 1;
    if (r.rewritten == 0) CHECK(e.json == ev);
    rapidjson::Document d;
    d.Parse(expected.c_str());
    const auto str = [](const rapidjson::Value& o, const char* k) -> std::string {
      const auto it = o.FindMember(k);
      return it != o.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
    };
    CHECK(e.http_method == str(d, "httpMethod"));
    CHECK(e.endpoint_path == str(d, "endpointPath"));
    const auto md = d.FindMember("metadata");
    CHECK(e.service == (md != d.MemberEnd() ? str(md->value, "service") : ""));
    CHECK(e.route == (md != d.MemberEnd() ? str(md->value, "route") : ""));
  }
  CHECK(as_posted > 100);  // both paths are exercised
  CHECK(rewritten > 100);
}

TEST_CASE("event validation: in a mixed batch each event keeps its own form and index", "[pipeline][validation]") {
  const std::string escaped = plugin_event(2).replace(plugin_event(2).find("\"GET\""), 5, R"("G\u0045T")");
  const std::string spaced = plugin_event(4).replace(plugin_event(4).find(",\"dataBytes\""), 1, " ,");
  const std::string body = R"({"other":{"events":[1]},"events":[)" + plugin_event(0) + ",42," + escaped + "," +
                           event("", "0") + "," + spaced + ",null," + plugin_event(5) + R"(],"events":[]})";
  const auto r = parse_ingest_batch(body, 1000);
  REQUIRE(r.error == ingest_request_error::none);
  REQUIRE(r.accepted.size() == 4);
  CHECK(r.rewritten == 2);
  CHECK(r.accepted[0].json == plugin_event(0));
  CHECK(r.accepted[1].json == reference_json(escaped));
  CHECK(r.accepted[1].http_method == "GET");
  CHECK(r.accepted[2].json == reference_json(spaced));
  CHECK(r.accepted[3].json == plugin_event(5));
  REQUIRE(r.errors.size() == 3);
  CHECK(r.errors[0].index == 1);
  CHECK(r.errors[1].index == 3);
  CHECK(r.errors[2].index == 5);
}

TEST_CASE("event validation: a UTF-8 byte order mark before the body is skipped and counted in offsets",
          "[pipeline][validation]") {
  const auto r = parse_ingest_batch("\xEF\xBB\xBF" + batch_of(plugin_event(1)), 1000);
  REQUIRE(r.accepted.size() == 1);
  CHECK(r.accepted[0].json == plugin_event(1));
  CHECK(parse_ingest_batch("\xEF\xBB\xBF{", 1000).error_message ==
        "malformed JSON at offset 4: Missing a name for object member.");
  CHECK(parse_ingest_single("\xEF\xBB\xBF" + plugin_event(2)).accepted.size() == 1);
}
