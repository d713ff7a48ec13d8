// End to end: the unchanged aforo-metering plugin in real nginx (through our Kong PDK shim) talking to the
// real aforo-sidecar, which delivers to the fake Aforo ingest (plugin_e2e_support.hpp). The overflow file
// tests are in plugin_overflow_itest.cpp.
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "plugin_e2e_support.hpp"

using namespace plugin_e2e;

TEST_CASE("plugin: allowed requests reach the upstream with rate-limit headers and are metered end to end",
          "[plugin][e2e]") {
  const std::string version = GENERATE(as<std::string>{}, "3.9", "3.4");
  e2e_env env("", {"AFORO_KONG_VERSION=" + version});
  INFO("Kong profile " << version);
  for (int i = 0; i < 5; ++i) {
    const auto r = get(env.proxy(), "/v1/search/items/" + std::to_string(i) + "?cost=0.5&qty=" + std::to_string(i + 1),
                       {{"X-Tenant-Id", "cust_acme"}, {"X-Request-Id", "e2e-req-" + std::to_string(i)}});
    REQUIRE(r.status == 200);
    CHECK(r.body.find("upstream ok") != std::string::npos);
    CHECK(r.header("x-ratelimit-limit") == "100000");
    CHECK(!r.header("x-ratelimit-remaining").empty());
    // The upstream's X-Aforo-Cost and X-Aforo-Quantity are internal figures: metered, never forwarded.
    CHECK(r.header("x-aforo-cost").empty());
    CHECK(r.header("x-aforo-quantity").empty());
  }
  REQUIRE(env.wait_events(5) == 5);
  const auto d = env.received();
  std::set<std::string> keys;
  for (const auto& e : d["events"].GetArray()) {
    const auto& ev = e["event"];
    CHECK(std::string(ev["customerId"].GetString()) == "cust_acme");
    CHECK(std::string(ev["metricName"].GetString()).size() > 0);
    CHECK(std::string(ev["executionStatus"].GetString()) == "SUCCESS");
    CHECK(ev["statusCode"].GetInt() == 200);
    CHECK(std::string(ev["httpMethod"].GetString()) == "GET");
    CHECK(std::string(ev["occurredAt"].GetString()).back() == 'Z');
    CHECK(std::string(ev["metadata"]["service"].GetString()) == "search");
    CHECK(std::string(ev["metadata"]["gateway"].GetString()) == "kong");
    REQUIRE(ev["metadata"].HasMember("cost"));
    CHECK(ev["metadata"]["cost"].GetDouble() == 0.5);
    keys.insert(ev["idempotencyKey"].GetString());
    // ?qty=i+1 on /v1/search/items/i: the quantity header's value, per request.
    const std::string path = ev["endpointPath"].GetString();
    CHECK(ev["quantity"].GetInt() == std::stoi(path.substr(path.rfind('/') + 1)) + 1);
  }
  CHECK(keys.size() == 5);
  // Kong's own request id ($kong_request_id) is preferred over a client-sent X-Request-Id, so a client
  // cannot make Aforo deduplicate its usage away by repeating one id.
  for (const auto& k : keys) CHECK(k.rfind("kong:", 0) == 0);
  CHECK(keys.count("kong:e2e-req-0") == 0);
  // Every ingest request carried the key and tenant, lz4-compressed.
  for (const auto& r : d["requests"].GetArray()) {
    CHECK(std::string(r["api_key"].GetString()) == "match");
    CHECK(std::string(r["content_encoding"].GetString()) == "lz4");
  }
}

TEST_CASE("plugin: a client repeating X-Request-Id gets one event per request (the key is the gateway's)",
          "[plugin][e2e]") {
  // Kong 3.9 names its own request id $kong_request_id; Kong 3.4 has none, and the plugin then uses
  // nginx's $request_id. Neither takes the client's header.
  const std::string version = GENERATE(as<std::string>{}, "3.9", "3.4");
  e2e_env env("", {"AFORO_KONG_VERSION=" + version});
  INFO("Kong profile " << version);
  const std::string long_id(300, 'r');
  for (int i = 0; i < 50; ++i) {
    const auto r = get(env.proxy(), "/v1/search/same",
                       {{"X-Tenant-Id", "cust_acme"},
                        {"X-Request-Id", "same-id"},
                        {"X-Kong-Request-Id", i % 2 ? long_id : "same-id"}});
    REQUIRE(r.status == 200);
  }
  REQUIRE(env.wait_events(50) == 50);
  CHECK(env.wait_delivered(50) == 50);  // every event the plugin sent is at ingest: there is no 51st
  const auto d = env.received();
  REQUIRE(d["events"].Size() == 50);  // the fake ingest deduplicates by idempotencyKey
  std::set<std::string> keys;
  for (const auto& e : d["events"].GetArray()) {
    const std::string key = e["event"]["idempotencyKey"].GetString();
    CHECK(key.rfind("kong:", 0) == 0);
    CHECK(key.find("same-id") == std::string::npos);
    CHECK(key.size() <= 255);
    keys.insert(key);
  }
  CHECK(keys.size() == 50);
  CHECK(env.sidecar().metric(R"(aforo_sidecar_events_rejected_total{reason="invalid"})") == 0);
}

TEST_CASE("plugin: a path with quotes, backslashes and control characters is metered exactly", "[plugin][e2e]") {
  e2e_env env;
  // nginx decodes the path: the event must carry it escaped into valid JSON, byte for byte.
  const auto r = get(env.proxy(), "/v1/search/q%22uote%5Cback%09tab%01", {{"X-Tenant-Id", "cust_acme"}});
  REQUIRE(r.status == 200);
  REQUIRE(env.wait_events(1) == 1);
  const auto d = env.received();
  const auto& ev = d["events"][0]["event"];
  CHECK(std::string(ev["endpointPath"].GetString()) == "/v1/search/q\"uote\\back\ttab\x01");
}

TEST_CASE("plugin: a 3,000-byte path and a path that is not UTF-8 are metered within Aforo's limits", "[plugin][e2e]") {
  e2e_env env;
  const std::string long_path = "/v1/search/" + std::string(2989, 'p');
  REQUIRE(long_path.size() == 3000);
  REQUIRE(get(env.proxy(), long_path, {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  // nginx decodes %FF%FE to two bytes that are not UTF-8; %C3%A9 is a valid e-acute.
  REQUIRE(get(env.proxy(), "/v1/search/%FF%FEcaf%C3%A9", {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  REQUIRE(env.wait_events(2) == 2);
  std::set<std::string> paths;
  const auto d = env.received();
  for (const auto& e : d["events"].GetArray()) {
    const std::string p = e["event"]["endpointPath"].GetString();
    CHECK(p.size() <= 512);
    paths.insert(p);
  }
  CHECK(paths.count(long_path.substr(0, 512)) == 1);
  CHECK(paths.count("/v1/search/%FF%FEcaf\xC3\xA9") == 1);
  CHECK(env.sidecar().metric(R"(aforo_sidecar_events_rejected_total{reason="invalid"})") == 0);
  CHECK(env.error_log().find("sidecar rejected") == std::string::npos);
}

TEST_CASE("plugin: denials are applied with the contract's status, body and headers", "[plugin][e2e]") {
  // The access phase runs in a coroutine and kong.response.exit is deferred to the end of the phase, as
  // Kong's runloop does (tests/lua/shim/aforo_shim/runloop.lua): the answer is sent by the runloop.
  const std::string version = GENERATE(as<std::string>{}, "3.9", "3.4");
  e2e_env env("", {"AFORO_KONG_VERSION=" + version});
  INFO("Kong profile " << version);
  SECTION("quota exhausted: 429 with Retry-After") {
    for (int i = 0; i < 3; ++i)
      REQUIRE(get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_small"}}).status == 200);
    const auto r = get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_small"}});
    CHECK(r.status == 429);
    CHECK(std::stoi(r.header("retry-after")) > 0);
    CHECK(r.body.find(R"("reason":"quota_exceeded")") != std::string::npos);
    CHECK(r.header("content-type") == "application/json; charset=utf-8");
    CHECK(r.header("content-length") == std::to_string(r.body.size()));
    // The runloop, not the plugin, sent it; the plugin's later phases ran without a Lua error. They have run
    // once a later request of the same (only) worker is metered: its event follows cust_small's three.
    REQUIRE(get(env.proxy(), "/v1/search/after", {{"X-Tenant-Id", "cust_acme"}}).status == 200);
    REQUIRE(env.wait_events(4) == 4);
    CHECK(env.error_log().find("runtime error") == std::string::npos);
    CHECK(env.error_log().find("stack traceback") == std::string::npos);
  }
  SECTION("a feature outside the plan: 403") {
    const auto r = get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_basic"}});
    CHECK(r.status == 403);
    CHECK(r.body.find("feature_not_entitled") != std::string::npos);
  }
  SECTION("an unknown customer: 403 (unknown_customer: block)") {
    const auto r = get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_nobody"}});
    CHECK(r.status == 403);
    CHECK(r.body.find("unknown_customer") != std::string::npos);
  }
  SECTION("an authenticated consumer wins over X-Tenant-Id") {
    // cust_small is out of quota after three calls; billing cust_small while claiming cust_acme must not work.
    for (int i = 0; i < 3; ++i)
      REQUIRE(
          get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_acme"}, {"X-Test-Consumer", "cust_small"}}).status ==
          200);
    CHECK(get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_acme"}, {"X-Test-Consumer", "cust_small"}}).status ==
          429);
  }
  SECTION("an auth plugin's anonymous consumer (no credential) does not win over X-Tenant-Id") {
    // Were it billed, cust_small (3 an hour) would refuse the fourth request.
    for (int i = 0; i < 5; ++i) {
      CHECK(get(env.proxy(), "/v1/search/q",
                {{"X-Tenant-Id", "cust_acme"}, {"X-Test-Consumer", "cust_small"}, {"X-Test-Anonymous", "1"}})
                .status == 200);
    }
    REQUIRE(env.wait_events(5) == 5);
    const auto d = env.received();
    for (const auto& e : d["events"].GetArray()) {
      CHECK(std::string(e["event"]["customerId"].GetString()) == "cust_acme");
      CHECK_FALSE(e["event"]["metadata"].HasMember("consumer"));
    }
  }
}

TEST_CASE("plugin: with the sidecar unreachable, fallback_on_error allow serves and block refuses", "[plugin][e2e]") {
  const std::string version = GENERATE(as<std::string>{}, "3.9", "3.4");
  e2e_env env("", {"AFORO_KONG_VERSION=" + version});
  INFO("Kong profile " << version);
  CHECK(get(env.proxy(), "/down-allow/v1/search", {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  const auto blocked = get(env.proxy(), "/down-block/v1/search", {{"X-Tenant-Id", "cust_acme"}});
  CHECK(blocked.status == 503);
  CHECK(blocked.body.find(R"("reason":"sidecar_unavailable")") != std::string::npos);
  // The real sidecar killed: the same happens on the main route.
  env.sidecar().proc().signal(SIGKILL);
  env.sidecar().proc().wait_exit(5s);
  CHECK(get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  CHECK(get(env.proxy(), "/fail-closed/v1/search/q", {{"X-Tenant-Id", "cust_acme"}}).status == 503);
  CHECK(env.wait_log("[aforo-metering] ERROR sidecar unreachable at http://127.0.0.1:1"));
  CHECK(env.wait_log("(fallback_on_error=allow)"));
}

TEST_CASE("plugin: a request without X-Tenant-Id is proxied unmetered (allow) or refused (block)", "[plugin][e2e]") {
  const std::string version = GENERATE(as<std::string>{}, "3.9", "3.4");
  e2e_env env("", {"AFORO_KONG_VERSION=" + version});
  INFO("Kong profile " << version);
  CHECK(get(env.proxy(), "/v1/search/q").status == 200);
  const auto refused = get(env.proxy(), "/fail-closed/v1/search/q");
  CHECK(refused.status == 401);
  CHECK(refused.body.find(R"("reason":"missing_tenant")") != std::string::npos);
  CHECK(refused.header("content-type") == "application/json; charset=utf-8");
  // One metered request afterwards, to know the pipeline has flushed what it had.
  REQUIRE(get(env.proxy(), "/v1/search/q", {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  REQUIRE(env.wait_events(1) == 1);
  // One worker sends its events in order: the sidecar took exactly the one, and ingest holds it.
  CHECK(env.wait_delivered(1) == 1);
  CHECK(fake_ingest::count(env.received()) == 1);
  CHECK(env.wait_log("[aforo-metering] ERROR missing X-Tenant-Id header (request not metered)"));
}

TEST_CASE("plugin: nginx reloads under load lose no events, and error.log holds no unexpected errors",
          "[plugin][e2e]") {
  e2e_env env;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<bool> stop{false};
  std::thread load([&] {
    int i = 0;
    while (!stop.load()) {
      const auto r = get(env.proxy(), "/v1/search/load/" + std::to_string(i++), {{"X-Tenant-Id", "cust_acme"}});
      (r.status == 200 ? ok : failed)++;
    }
  });
  const auto pid = std::stoi(read_file(env.prefix() + "/logs/nginx.pid"));
  // Each reload comes after 20 more requests were served, and the load goes on for 20 more after the last.
  for (int reload = 0; reload < 4; ++reload) {
    if (!wait_until([&] { return ok.load() >= 20 * (reload + 1); }, 20s, 5ms)) break;  // REQUIRE below
    if (reload < 3) ::kill(pid, SIGHUP);
  }
  stop = true;
  load.join();
  INFO("ok " << ok << ", failed " << failed);
  REQUIRE(ok > 50);
  CHECK(env.wait_events(static_cast<std::size_t>(ok.load()), 20s) == static_cast<std::size_t>(ok.load()));

  // No error-level line other than the plugin's own ERROR lines.
  std::vector<std::string> unexpected;
  std::istringstream lines(env.error_log());
  for (std::string line; std::getline(lines, line);) {
    const bool severe = line.find("[error]") != std::string::npos || line.find("[crit]") != std::string::npos ||
                        line.find("[alert]") != std::string::npos || line.find("[emerg]") != std::string::npos;
    if (severe && line.find("[aforo-metering] ERROR") == std::string::npos) unexpected.push_back(line);
  }
  std::string all;
  for (const auto& l : unexpected) all += l + "\n";
  INFO(all);
  CHECK(unexpected.empty());
}

TEST_CASE("plugin: requests in flight across a reload under Kong's timer-ng are all metered", "[plugin][e2e]") {
  // The harness replaces ngx.timer.at with its timer-ng emulation (AFORO_TIMER_NG=on, the default): the
  // exiting worker's timer library stops after about a second, and the slow requests (1.5 s upstream)
  // finish after that, so their flushes must not go through it.
  e2e_env env;
  REQUIRE(get(env.proxy(), "/v1/search/warm", {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  constexpr int slow = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < slow; ++i) {
    clients.emplace_back([&, i] {
      if (get(env.proxy(), "/v1/search/slow/" + std::to_string(i), {{"X-Tenant-Id", "cust_acme"}}).status == 200) ++ok;
    });
  }
  // Kept: the requests being in flight at the upstream is not observable (a lease admits them without a
  // check); 300 ms to get there is well within the upstream's 1.5 s.
  std::this_thread::sleep_for(300ms);
  env.nginx().reload();
  for (auto& t : clients) t.join();
  REQUIRE(ok == slow);
  CHECK(env.wait_events(slow + 1, 15s) == slow + 1);
  CHECK(env.error_log().find("could not be sent") == std::string::npos);
}

TEST_CASE("plugin: decision leases spare most check round trips and the quota count stays exact",
          "[plugin][e2e][lease]") {
  e2e_env env("  lease_requests: 20\n  lease_ttl: 300ms\n");
  const std::string allow_ok = R"(aforo_sidecar_checks_total{decision="allow",reason="ok"})";
  long last_remaining = 100000;
  // advanced_search is mapped by the prefix /v1/search: one lease covers every path under it.
  for (int i = 0; i < 100; ++i) {
    const auto r = get(env.proxy(), "/v1/search/items/" + std::to_string(i), {{"X-Tenant-Id", "cust_acme"}});
    REQUIRE(r.status == 200);
    CHECK(r.header("x-ratelimit-limit") == "100000");
    const long remaining = std::stol(r.header("x-ratelimit-remaining"));
    CHECK(remaining < last_remaining);  // counted down under a lease too
    last_remaining = remaining;
  }
  // A lease of 20 is renewed with 5 left: one check per 16 requests, a few more if a slow machine lets
  // a lease pass 3/4 of its 300 ms.
  const double checks = env.sidecar().metric(allow_ok);
  CHECK(checks >= 6);
  CHECK(checks <= 25);

  // After the lease expires, the next check reports what was admitted under it: the count is exact.
  std::this_thread::sleep_for(400ms);  // kept: the lease's 300 ms TTL passing is what this step tests
  const auto r = get(env.proxy(), "/v1/search/other", {{"X-Tenant-Id", "cust_acme"}});
  REQUIRE(r.status == 200);
  CHECK(r.header("x-ratelimit-remaining") == std::to_string(100000 - 101));
  CHECK(env.sidecar().metric("aforo_sidecar_check_leased_requests_total") == 101 - env.sidecar().metric(allow_ok));
  CHECK(env.wait_events(101) == 101);  // every request metered, leased or not
}

TEST_CASE("plugin: a customer near its limit gets no lease and is held to the limit exactly", "[plugin][e2e][lease]") {
  e2e_env env("  lease_requests: 20\n");
  int allowed = 0;
  for (int i = 0; i < 6; ++i) {
    const auto r = get(env.proxy(), "/v1/search/items/1", {{"X-Tenant-Id", "cust_small"}});
    if (r.status == 200) ++allowed;
  }
  CHECK(allowed == 3);  // limit 3 an hour: remaining / 64 is 0, every request asks
  CHECK(env.sidecar().metric("aforo_sidecar_check_leases_total") == 0);
}

namespace {

/// A compact JWT of these claims (base64url, no padding), as Kong's jwt plugin keeps a token it verified; the
/// harness's X-Test-JWT header plays that plugin (tests/lua/shim/aforo_shim/runner.lua).
std::string jwt(const std::string& claims_json) {
  const auto b64url = [](const std::string& in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
      const unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                         static_cast<unsigned char>(in[i + 2]);
      for (int s = 18; s >= 0; s -= 6) out += t[(n >> s) & 63];
    }
    if (i < in.size()) {
      unsigned n = static_cast<unsigned char>(in[i]) << 16;
      if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
      out += t[(n >> 18) & 63];
      out += t[(n >> 12) & 63];
      if (i + 1 < in.size()) out += t[(n >> 6) & 63];
    }
    return out;
  };
  return b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(claims_json) + ".c2lnbmF0dXJl";
}

}  // namespace

TEST_CASE("plugin: an Aforo v2.2 config loads and meters as v2.2 did: JWT claim, status options, product type",
          "[plugin][e2e][compat]") {
  const std::string version = GENERATE(as<std::string>{}, "3.9", "3.4");
  e2e_env env("", {"AFORO_KONG_VERSION=" + version});
  INFO("Kong profile " << version);
  // The v2.2 fields that belong to the sidecar: one WARN each naming where they go, never their values.
  const auto& loaded = env.start_output();
  CHECK(loaded.find("[aforo-metering] Aforo v2.2 field 'api_key' belongs to the sidecar now: environment variable "
                    "AFORO_API_KEY") != std::string::npos);
  CHECK(loaded.find("field 'tenant_id' belongs to the sidecar now: sidecar.yaml aforo.tenant_id") != std::string::npos);
  CHECK(loaded.find("field 'aforo_endpoint' belongs to the sidecar now: sidecar.yaml aforo.ingest_url") !=
        std::string::npos);
  CHECK(loaded.find("HARNESS_SECRET") == std::string::npos);

  const std::string acme = jwt(R"({"sub":"u1","tenant_id":"cust_acme"})");
  const auto call = [&](const std::string& path, std::vector<std::pair<std::string, std::string>> headers) {
    return get(env.proxy(), path, std::move(headers)).status;
  };
  CHECK(call("/compat/status/404", {{"X-Test-JWT", acme}}) == 404);  // metered: VALIDATION_FAILED
  CHECK(call("/compat/v1/items", {{"X-Test-JWT", acme}}) == 200);    // metered: SUCCESS
  CHECK(call("/compat/status/418", {{"X-Test-JWT", acme}}) == 418);  // exclude_status_codes
  CHECK(call("/compat/status/429", {{"X-Test-JWT", acme}}) == 429);  // Aforo's default exclusion
  CHECK(call("/compat/v1/items", {{"X-Test-JWT", jwt(R"({"tenant_id":"cust_acme","impersonated_by":"staff"})")}}) ==
        200);                                                              // exclude claim
  CHECK(call("/compat/v1/items", {{"X-Tenant-Id", "cust_acme"}}) == 200);  // v2.2 never read a header
  CHECK(call("/compat/v1/items", {{"Authorization", "Bearer " + jwt(R"({"tenant_id":"cust_forged"})")}}) ==
        200);  // an unverified token is nobody
  CHECK(call("/compat/v1/consumer", {{"X-Test-Consumer", "issuer;cust_small"}}) == 200);  // consumer custom_id
  // The last request's event at ingest means every earlier one is there too (one worker, one queue, in order).
  const auto has_consumer = [](const rapidjson::Document& d) {
    for (const auto& e : d["events"].GetArray())
      if (std::string(e["event"]["endpointPath"].GetString()) == "/compat/v1/consumer") return true;
    return false;
  };
  REQUIRE(wait_until(
      [&] {
        const auto d = env.received();
        return fake_ingest::count(d) > 0 && has_consumer(d);
      },
      15s, 50ms));
  const auto d = env.received();
  REQUIRE(d["events"].Size() == 3);
  std::map<std::string, std::pair<std::string, std::string>> by_path;  // path -> customer, executionStatus
  for (const auto& e : d["events"].GetArray()) {
    const auto& ev = e["event"];
    CHECK(std::string(ev["productType"].GetString()) == "AGENTIC_API");
    by_path[ev["endpointPath"].GetString()] = {ev["customerId"].GetString(), ev["executionStatus"].GetString()};
  }
  CHECK(by_path["/compat/status/404"] == std::make_pair(std::string("cust_acme"), std::string("VALIDATION_FAILED")));
  CHECK(by_path["/compat/v1/items"] == std::make_pair(std::string("cust_acme"), std::string("SUCCESS")));
  CHECK(by_path["/compat/v1/consumer"] == std::make_pair(std::string("cust_small"), std::string("SUCCESS")));
  CHECK(env.error_log().find("HARNESS_SECRET") == std::string::npos);
}
