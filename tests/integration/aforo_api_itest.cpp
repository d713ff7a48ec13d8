// entitlements.source aforo_api through the real aforo-sidecar against a fake of Aforo's two decision
// endpoints in their real shapes: allow, deny with Aforo's headers, warn, L2 throttling by
// throttleRate, L3 block with Aforo's body, one upstream call for many concurrent checks, a bounded
// wait on a slow answer, stale-while-error, background refresh, and the combined mode (snapshot
// first, API for the customers it lacks).
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <thread>
#include <vector>

#include "fakes/fake_control_plane/fake_aforo_api.hpp"
#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {

std::string api_yaml(const std::string& url, const std::string& api_extra = "",
                     const std::string& source = "aforo_api") {
  return "aforo:\n  control_url: \"" + url +
         "\"\n  tenant_id: tenant-1\n"
         "  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n"
         "entitlements:\n  source: \"" +
         source + "\"\n  aforo_api:\n" + (api_extra.find("wait:") == std::string::npos ? "    wait: 1s\n" : "") +
         api_extra;
}

const std::vector<std::string> key_env{"AFORO_API_KEY=test-key-0001"};

std::string check_body(const std::string& customer, const std::string& extra = "") {
  return R"({"customer_id":")" + customer + R"(","service":"svc","method":"GET","path":"/v1/x")" + extra + "}";
}

bool has(const std::string& body, const std::string& needle) { return body.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("aforo api: an ALLOW is asked in Aforo's shapes and forwarded with its headers", "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  api.set_quota("", R"({"decision":"ALLOW","reason":"ok","currentUsage":10,"limit":1000,"retryAfterMs":0,)"
                    R"("tierName":"pro","headers":{"X-RateLimit-Limit":"1000","X-RateLimit-Remaining":"990"}})");
  sidecar_process sc(api_yaml(api.url()), key_env);
  auto c = sc.client();
  CHECK(c.get("/readyz").status == 200);  // no snapshot needed
  const auto r = c.post("/v1/check", check_body("cust_acme"));
  REQUIRE(r.status == 200);
  CHECK(has(r.body, R"("decision":"allow","allowed":true)"));
  CHECK(has(r.body, R"("plan":"pro")"));
  CHECK(has(r.body, R"("remaining_quota":990)"));
  CHECK(has(r.body, R"("X-RateLimit-Remaining":"990")"));
  CHECK(api.bad_requests() == 0);
  CHECK(api.last_body(true) == R"({"customerId":"cust_acme","metricName":"api_calls"})");
  CHECK(api.last_header(true, "X-API-Key") == "test-key-0001");
  CHECK(api.last_header(true, "X-Tenant-Id") == "tenant-1");
  CHECK(api.last_target(false) ==
        "/internal/v1/margin-guard/quick-check?tenantId=tenant-1&scopeType=CUSTOMER&scopeId=cust_acme");
  CHECK(api.last_header(false, "X-Tenant-Id") == "tenant-1");
  CHECK(api.last_header(false, "X-API-Key").empty());
  // The second check inside the TTL is a cache hit: no further call.
  CHECK(has(c.post("/v1/check", check_body("cust_acme")).body, R"("cache":"hit")"));
  CHECK(api.quota_calls() == 1);
  CHECK(api.margin_calls() == 1);
  // The key never reaches the logs.
  CHECK_FALSE(has(sc.proc().output(), "test-key-0001"));
}

TEST_CASE("aforo api: DENY is 429 with Retry-After and Aforo's headers, WARN adds the warning header",
          "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api(/*wrap=*/false);  // bare answers are read too
  api.set_quota("cust_over", R"({"decision":"DENY","reason":"monthly quota reached","currentUsage":1000,"limit":1000,)"
                             R"("retryAfterMs":42000,"tierName":"starter","headers":{"X-RateLimit-Remaining":"0"}})");
  api.set_quota("cust_near", R"({"decision":"WARN","reason":"95% of quota used","currentUsage":950,"limit":1000,)"
                             R"("retryAfterMs":0,"tierName":"starter","headers":{}})");
  sidecar_process sc(api_yaml(api.url()), key_env);
  auto c = sc.client();
  auto r = c.post("/v1/check", check_body("cust_over"));
  REQUIRE(r.status == 200);
  CHECK(has(r.body, R"("decision":"block","allowed":false,"status":429,"reason":"quota_exceeded")"));
  CHECK(has(r.body, R"("retry_after":42)"));
  CHECK(has(r.body, R"("Retry-After":"42")"));
  CHECK(has(r.body, R"("X-RateLimit-Remaining":"0")"));
  CHECK(has(r.body, R"("message":"monthly quota reached")"));
  r = c.post("/v1/check", check_body("cust_near"));
  CHECK(has(r.body, R"("allowed":true,"status":200,"reason":"quota_warning")"));
  CHECK(has(r.body, R"("X-RateLimit-Warning":"95% of quota used")"));
  CHECK(sc.metric(R"(aforo_sidecar_checks_total{decision="block",reason="quota_exceeded"})") == 1);
}

TEST_CASE("aforo api: L2 lets throttleRate percent through and throttles the rest, L3 blocks with Aforo's body",
          "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  api.set_margin("cust_l2",
                 R"({"allowed":true,"level":"L2_THROTTLE","throttleRate":25,"retryAfterSeconds":5,"message":"slow"})");
  api.set_margin(
      "cust_l3",
      R"({"allowed":false,"level":"L3_BLOCK","throttleRate":0,"retryAfterSeconds":0,"message":"margin too low"})");
  api.set_margin("cust_l1",
                 R"({"allowed":true,"level":"L1_ALERT","throttleRate":100,"retryAfterSeconds":0,"message":""})");
  sidecar_process sc(api_yaml(api.url(), "    support_url: \"https://support.example.com\"\n"), key_env);
  auto c = sc.client();
  int allowed = 0, throttled = 0;
  for (int i = 0; i < 20; ++i) {
    const auto r = c.post("/v1/check", check_body("cust_l2"));
    if (has(r.body, R"("allowed":true)")) ++allowed;
    if (has(r.body, R"("decision":"throttle","allowed":false,"status":429,"reason":"margin_throttle")") &&
        has(r.body, R"("X-Margin-Guard-Level":"L2")") && has(r.body, R"("Retry-After":"5")") &&
        has(r.body, R"("code":"RATE_LIMITED_MARGIN")"))
      ++throttled;
  }
  CHECK(allowed == 5);
  CHECK(throttled == 15);

  const auto r = c.post("/v1/check", check_body("cust_l3"));
  CHECK(has(r.body, R"("decision":"block","allowed":false,"status":429,"reason":"margin_block")"));
  CHECK(has(r.body, R"("margin_level":"L3")"));
  CHECK(has(r.body, R"("X-Margin-Guard":"blocked","X-Margin-Guard-Level":"L3")"));
  CHECK(has(r.body, R"("Retry-After":"1800")"));
  CHECK(has(r.body, R"("body":{"error":{"code":"SERVICE_RESTRICTED_MARGIN","message":"margin too low",)"
                    R"("retryAfterSeconds":1800,"supportUrl":"https://support.example.com"}})"));

  const auto l1 = c.post("/v1/check", check_body("cust_l1"));
  CHECK(has(l1.body, R"("allowed":true,"status":200,"reason":"margin_alert")"));
  CHECK(has(l1.body, R"("upstream_headers":{"X-Margin-Guard-Warning":"margin-low"})"));
  CHECK(api.margin_calls("cust_l2") == 1);  // 20 checks, one margin call (30 s TTL)
}

TEST_CASE("aforo api: many concurrent checks of a new customer make one upstream call", "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  api.set_delay(300ms, 300ms);
  sidecar_process sc(api_yaml(api.url()), key_env);
  constexpr int n = 24;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&] {
      http_client c(sc.address());
      const auto r = c.post("/v1/check", check_body("cust_burst"));
      if (r.status == 200 && has(r.body, R"("allowed":true)")) ++ok;
    });
  for (auto& t : threads) t.join();
  CHECK(ok == n);
  CHECK(api.quota_calls("cust_burst/api_calls") == 1);
  CHECK(api.margin_calls("cust_burst") == 1);
  CHECK(sc.metric(R"(aforo_sidecar_aforo_api_checks_total{result="waited"})") == n);
}

TEST_CASE("aforo api: a slow answer is waited for only entitlements.aforo_api.wait, then 503 until it lands",
          "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  api.set_delay(800ms, 0ms);
  sidecar_process sc(api_yaml(api.url(), "    wait: 50ms\n"), key_env);
  auto c = sc.client();
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = c.post("/v1/check", check_body("cust_slow"));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.status == 503);
  CHECK(has(r.body, R"("code":"no_decision")"));
  CHECK(took < 600ms);  // bounded by the wait, not by the upstream's 800 ms
  // Other requests are served meanwhile: the event loop is not blocked.
  CHECK(c.get("/healthz").status == 200);
  REQUIRE(wait_until([&] { return c.post("/v1/check", check_body("cust_slow")).status == 200; }));
  CHECK(api.quota_calls("cust_slow/api_calls") == 1);
}

TEST_CASE("aforo api: while Aforo fails the last answers serve (stale), a customer never seen gets 503",
          "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  sidecar_process sc(api_yaml(api.url(), "    quota_ttl: 200ms\n    margin_ttl: 200ms\n    error_retry: 300ms\n"),
                     key_env);
  auto c = sc.client();
  REQUIRE(has(c.post("/v1/check", check_body("cust_acme")).body, R"("cache":"hit")"));
  api.set_status(500);
  std::this_thread::sleep_for(300ms);  // kept: the answer's 200 ms TTL passing is what is tested
  // Expired: one call fails, and from then on the old answer serves without waiting.
  auto r = c.post("/v1/check", check_body("cust_acme"));
  CHECK(r.status == 200);
  REQUIRE(wait_until([&] { return has(c.post("/v1/check", check_body("cust_acme")).body, R"("cache":"stale")"); }));
  r = c.post("/v1/check", check_body("cust_acme"));
  CHECK(has(r.body, R"("allowed":true)"));
  CHECK(c.post("/v1/check", check_body("cust_new")).status == 503);
  // Failing keys are re-asked every error_retry, not on every check.
  const int calls = api.quota_calls("cust_acme/api_calls");
  for (int i = 0; i < 20; ++i) c.post("/v1/check", check_body("cust_acme"));
  CHECK(api.quota_calls("cust_acme/api_calls") <= calls + 1);
  CHECK(sc.metric(R"(aforo_sidecar_aforo_api_calls_total{endpoint="quota",result="error"})") >= 1);
  // Back: fresh again.
  api.set_status(0);
  REQUIRE(wait_until([&] { return has(c.post("/v1/check", check_body("cust_acme")).body, R"("cache":"hit")"); }));
}

TEST_CASE("aforo api: checks late in the TTL refresh in the background: a steady customer never waits",
          "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  sidecar_process sc(api_yaml(api.url(), "    quota_ttl: 400ms\n    margin_ttl: 400ms\n    refresh_at: 50%\n"),
                     key_env);
  auto c = sc.client();
  const auto end = std::chrono::steady_clock::now() + 2s;
  int checks = 0;
  while (std::chrono::steady_clock::now() < end) {
    CHECK(has(c.post("/v1/check", check_body("cust_steady")).body, R"("cache":"hit")"));
    ++checks;
    std::this_thread::sleep_for(20ms);  // pacing: steady checks over 2 s are the subject
  }
  CHECK(sc.metric(R"(aforo_sidecar_aforo_api_checks_total{result="waited"})") == 1);  // the first one only
  const int calls = api.quota_calls("cust_steady/api_calls");
  CHECK(calls >= 4);  // about one per 200 ms
  CHECK(calls <= 12);
  CHECK(checks > 2 * calls);
}

TEST_CASE("aforo api: combined mode decides from the snapshot and asks the API only for customers it lacks",
          "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  api.set_quota("cust_elsewhere",
                R"({"decision":"DENY","reason":"over","currentUsage":5,"limit":5,"retryAfterMs":1000,)"
                R"("tierName":"free","headers":{}})");
  sidecar_process sc(api_yaml(api.url(), "    fill_missing: true\n", "file:{source}/config/snapshot.example.yaml"),
                     key_env);
  auto c = sc.client();
  const std::string search = R"(,"service":"search","path":"/v1/search/q")";
  auto r =
      c.post("/v1/check", R"({"customer_id":"cust_acme","service":"search","method":"GET","path":"/v1/search/q"})");
  CHECK(has(r.body, R"("plan":"enterprise")"));
  CHECK(api.quota_calls() == 0);
  CHECK(api.margin_calls() == 0);
  r = c.post("/v1/check",
             R"({"customer_id":"cust_elsewhere","service":"search","method":"GET","path":"/v1/search/q"})");
  CHECK(has(r.body, R"("reason":"quota_exceeded")"));
  CHECK(has(r.body, R"("plan":"free")"));
  // The snapshot's rule names the metric asked about.
  CHECK(api.quota_calls("cust_elsewhere/search_calls") == 1);
}

TEST_CASE("aforo api: config errors name the key", "[check][aforo_api][config]") {
  temp_dir d;
  const auto path = d.write("sidecar.yaml",
                            "entitlements:\n  source: aforo_api\n  aforo_api:\n    fill_missing: true\n"
                            "    bogus: 1\n    quota_check: false\n    margin_check: false\n");
  process p({sidecar_bin(), "--check-config", "--config", path});
  REQUIRE(p.wait_exit(10s) == 78);
  const auto out = p.output();
  CHECK(has(out, "entitlements.aforo_api.bogus: unknown key"));
}

TEST_CASE("aforo api: an answer with success false or an unknown decision is a failed call, logged without the key",
          "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api(/*wrap=*/false);
  api.set_quota("cust_refused", R"({"success":false,"error":{"code":"TENANT_UNKNOWN","message":"tenant unknown"}})");
  api.set_quota("cust_odd", R"({"decision":"MAYBE"})");
  sidecar_process sc(api_yaml(api.url()), key_env);
  auto c = sc.client();
  auto r = c.post("/v1/check", check_body("cust_refused"));
  CHECK(r.status == 503);
  CHECK(has(r.body, R"("code":"no_decision")"));
  CHECK(c.post("/v1/check", check_body("cust_odd")).status == 503);
  CHECK(sc.metric(R"(aforo_sidecar_aforo_api_calls_total{endpoint="quota",result="error"})") == 2);
  CHECK(sc.metric(R"(aforo_sidecar_aforo_api_checks_total{result="unavailable"})") == 2);
  REQUIRE(sc.proc().wait_for_output("success is false: tenant unknown", 5s));
  CHECK_FALSE(has(sc.proc().output(), "test-key-0001"));
}

TEST_CASE("aforo api: SIGHUP turns fill_missing on and off live", "[check][aforo_api]") {
  aforo::fake::fake_aforo_api api;
  // aforo_api.url needs a restart: it is there from the start; fill_missing applies live.
  const std::string base =
      "aforo:\n  tenant_id: tenant-1\n  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n"
      "entitlements:\n  source: \"file:{source}/config/snapshot.example.yaml\"\n"
      "  aforo_api:\n    url: \"" +
      api.url() + "\"\n";
  sidecar_process sc(base, key_env);
  auto c = sc.client();
  CHECK(has(c.post("/v1/check", check_body("cust_elsewhere")).body, R"("reason":"unknown_customer")"));
  std::string text = read_file(sc.config_path());
  const std::string url_line = "    url: \"" + api.url() + "\"\n";
  std::string on = text;
  on.insert(on.find(url_line) + url_line.size(), "    fill_missing: true\n");
  replace_file(sc.config_path(), on);
  sc.proc().signal(SIGHUP);
  REQUIRE(wait_until([&] { return has(c.post("/v1/check", check_body("cust_elsewhere")).body, R"("plan":"pro")"); }));
  CHECK(api.quota_calls() >= 1);
  replace_file(sc.config_path(), text);
  sc.proc().signal(SIGHUP);
  REQUIRE(wait_until(
      [&] { return has(c.post("/v1/check", check_body("cust_elsewhere")).body, R"("reason":"unknown_customer")"); }));
}
