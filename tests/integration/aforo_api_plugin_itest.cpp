// End to end with Aforo's decision endpoints: the unchanged plugin in real nginx (tests/lua/nginx) asks the
// real sidecar, which decides customers its snapshot lacks from a fake of Aforo's quota and margin
// endpoints (entitlements.aforo_api.fill_missing): the client gets Aforo's L3 body and headers, and a
// quota DENY's 429 with Retry-After and Aforo's headers.
#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "fakes/fake_control_plane/fake_aforo_api.hpp"
#include "plugin_e2e_support.hpp"

using namespace plugin_e2e;

namespace {

constexpr const char* snapshot = R"(version: "e2e-api"
customers:
  cust_acme:
    plan: enterprise
    status: active
    features:
      advanced_search: { limit: 100000, period: month }
features:
  - feature: advanced_search
    match: { service: search, path_prefix: /v1/search }
    metric: search_calls
)";

http_reply get(const std::string& address, const std::string& target, const std::string& customer) {
  return plugin_e2e::get(address, target, {{"X-Tenant-Id", customer}});
}

}  // namespace

TEST_CASE("plugin: Aforo's margin block and quota deny reach the client through real nginx",
          "[plugin][e2e][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  api.set_margin("cust_l3", R"({"allowed":false,"level":"L3_BLOCK","throttleRate":0,"retryAfterSeconds":900,)"
                            R"("message":"Service restricted: margin below threshold"})");
  api.set_quota("cust_over", R"({"decision":"DENY","reason":"quota exceeded","currentUsage":10,"limit":10,)"
                             R"("retryAfterMs":60000,"tierName":"free","headers":{"X-RateLimit-Remaining":"0"}})");
  temp_dir dir;
  const auto snap = dir.write("snapshot.yaml", snapshot);
  sidecar_process sc(
      "aforo:\n  tenant_id: tenant_e2e\n  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n"
      "entitlements:\n  source: \"file:" +
          snap + "\"\n  aforo_api:\n    url: \"" + api.url() +
          "\"\n    fill_missing: true\n    support_url: \"https://support.example.com\"\n",
      {"AFORO_API_KEY=sk_test_e2e_key_0123456789"});
  const nginx_harness nginx(dir.path() + "/nginx", "http://" + sc.address(), {"AFORO_METERING=false"});
  const std::string proxy = nginx.proxy();

  // In the snapshot: decided locally, Aforo not asked.
  CHECK(get(proxy, "/v1/search/q", "cust_acme").status == 200);
  CHECK(api.quota_calls() == 0);

  auto r = get(proxy, "/v1/search/q", "cust_l3");
  CHECK(r.status == 429);
  CHECK(r.header("x-margin-guard") == "blocked");
  CHECK(r.header("x-margin-guard-level") == "L3");
  CHECK(r.header("retry-after") == "900");
  CHECK(r.body.find(R"("code":"SERVICE_RESTRICTED_MARGIN")") != std::string::npos);
  CHECK(r.body.find(R"("retryAfterSeconds":900)") != std::string::npos);
  rapidjson::Document body;  // Kong's cjson writes "/" as "\/": compare parsed
  body.Parse(r.body.c_str());
  REQUIRE(body.IsObject());
  CHECK(std::string(body["error"]["supportUrl"].GetString()) == "https://support.example.com");
  CHECK(std::string(body["error"]["message"].GetString()) == "Service restricted: margin below threshold");

  r = get(proxy, "/v1/search/q", "cust_over");
  CHECK(r.status == 429);
  CHECK(r.header("retry-after") == "60");
  CHECK(r.header("x-ratelimit-remaining") == "0");
  CHECK(r.body.find(R"("reason":"quota_exceeded")") != std::string::npos);
  CHECK(api.quota_calls("cust_over/search_calls") == 1);
}
