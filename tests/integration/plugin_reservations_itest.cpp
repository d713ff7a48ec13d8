// End to end with quota reservations: the unchanged aforo-metering plugin in real nginx (decision
// leases on) in front of one sidecar, a second sidecar answering direct checks, one real Redis:
// leases are drawn from the first sidecar's chunk, so together they admit exactly the limit.
#include <catch2/catch.hpp>

#include <cstdlib>

#include <thread>

#include "plugin_e2e_support.hpp"

using namespace plugin_e2e;

namespace {

constexpr const char* snapshot = R"(version: "e2e-r1"
customers:
  cust_mid:
    plan: starter
    status: active
    features:
      advanced_search: { limit: 300, period: month }
features:
  - feature: advanced_search
    match: { service: search, path_prefix: /v1/search }
)";

// lease_requests: a direct client (b's) never reports leases: it gets none, as it would leave them
// set aside (counted as used) until its sidecar's units go back.
std::string sidecar_yaml(const std::string& snap, const std::string& ingest, const redis_server& r, int port,
                         int lease_requests = 20) {
  return "listen: [\"127.0.0.1:" + std::to_string(port) +
         "\"]\naforo:\n  tenant_id: tenant_e2e\n  ingest_url: \"http://" + ingest +
         "/v1/ingest/batch\"\nentitlements:\n  source: \"file:" + snap +
         "\"\n  lease_requests: " + std::to_string(lease_requests) + "\n  lease_ttl: 300ms\ncache:\n  redis: \"" +
         r.url() + "\"\n  sync_interval: 50ms\n  redis_timeout: 200ms\nbatch:\n  flush_interval: 200ms\n";
}

}  // namespace

TEST_CASE(
    "plugin: with quota reservations, leases come out of the sidecar's chunk: the plugin and another "
    "sidecar admit exactly the limit",
    "[plugin][e2e][lease][reservations]") {
  redis_server redis(free_port());
  temp_dir dir;
  const auto snap = dir.write("snapshot.yaml", snapshot);
  fake_ingest ingest;
  const auto ingest_addr = ingest.address();
  const std::vector<std::string> env{std::string("AFORO_API_KEY=") + api_key};
  sidecar_process a(sidecar_yaml(snap, ingest_addr, redis, free_port()), env);
  sidecar_process b(sidecar_yaml(snap, ingest_addr, redis, free_port(), 0), env);
  REQUIRE(wait_metric(a, "aforo_sidecar_redis_up", [](double v) { return v == 1; }) == 1);
  REQUIRE(wait_metric(b, "aforo_sidecar_redis_up", [](double v) { return v == 1; }) == 1);

  // The plugin's check timeout: a check that times out falls back to allow (fallback_on_error), which
  // admits without counting, by design; under ASan checks can take longer than the harness's 50 ms, so
  // there it is 2 s: this test is about leases drawn from the chunk. (A check whose answer is lost
  // re-sends its lease report, counted once, and the lease in the lost answer comes back: the quota
  // reservations itests and the lease specs show that.)
  const std::string timeout = std::getenv("ASAN_OPTIONS") != nullptr ? "AFORO_TIMEOUT=2000" : "AFORO_TIMEOUT=50";
  const nginx_harness nginx(dir.path() + "/nginx", "http://" + a.address(), {"AFORO_FLUSH_INTERVAL=100", timeout});
  http_client proxy(nginx.proxy());
  auto direct = b.client();
  int via_plugin = 0, via_b = 0;
  const auto round = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const auto r = proxy.request("GET", "/v1/search/items/" + std::to_string(i), {}, {{"X-Tenant-Id", "cust_mid"}});
      REQUIRE((r.status == 200 || r.status == 429));
      if (r.status == 200) ++via_plugin;
      const auto c = direct.post(
          "/v1/check", R"({"customer_id":"cust_mid","service":"search","method":"GET","path":"/v1/search/x"})");
      REQUIRE(c.status == 200);
      if (c.body.find(R"("allowed":true)") != std::string::npos) ++via_b;
      REQUIRE(via_plugin + via_b <= 300);  // never past the limit, leases included
    }
  };
  round(250);
  // The leases expire; the plugin's next checks report what they left unadmitted ("lease_unused"),
  // which goes back to the chunk (never by time: a report may come late); then the rest.
  std::this_thread::sleep_for(1200ms);  // kept: the leases expiring is what the second round relies on
  round(100);
  // A lease granted during that round may still hold units its worker did not admit: they come back
  // with the worker's next check after the lease ended (on a slow machine, e.g. under ASan, that is
  // after the round), so once more: the leases end, and the last unit or two is admitted.
  std::this_thread::sleep_for(1200ms);  // kept: the leases expiring is what this round relies on
  round(20);
  INFO("via plugin " << via_plugin << ", via the other sidecar " << via_b);
  INFO("reports re-sent: repeated "
       << a.metric(R"(aforo_sidecar_check_lease_reports_resent_total{kind="repeated"})") << ", unknown "
       << a.metric(R"(aforo_sidecar_check_lease_reports_resent_total{kind="unknown_resend"})") << "; leased "
       << a.metric("aforo_sidecar_check_leased_requests_total") << "; nginx error.log:\n"
       << nginx.error_log());
  CHECK(via_plugin + via_b == 300);  // exact, also when checks time out (a lease report is re-sent, counted once)
  CHECK(via_plugin > 0);
  CHECK(via_b > 0);
  CHECK(a.metric("aforo_sidecar_check_leases_total") > 0);  // leases were granted and used
}
