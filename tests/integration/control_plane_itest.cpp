// The control-plane snapshot source through the real aforo-sidecar: loads the snapshot with the
// tenant's credentials, revalidates with If-None-Match (304), keeps serving a stale snapshot while
// the control plane is down, and answers 503 past entitlements.max_stale.
#include <catch2/catch.hpp>

#include <thread>

#include "fakes/fake_control_plane/fake_control_plane.hpp"
#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {

std::string snapshot_json(const std::string& version, const std::string& acme_status) {
  return R"({"version":")" + version + R"(","customers":{"cust_acme":{"plan":"enterprise","status":")" + acme_status +
         R"(","features":{"advanced_search":{"limit":10000,"period":"month"}}}},)"
         R"("features":[{"feature":"advanced_search","match":{"service":"search","path_prefix":"/v1/search"},)"
         R"("metric":"search_calls","unit_cost":0.004}]})";
}

const std::string acme_check = R"({"customer_id":"cust_acme","service":"search","method":"GET","path":"/v1/search/x"})";

std::string sidecar_yaml(const std::string& control_url, const std::string& extra_aforo = "",
                         const std::string& max_stale = "3s") {
  return "aforo:\n  control_url: \"" + control_url + "\"\n  tenant_id: tenant-1\n" + extra_aforo +
         "  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n"
         "entitlements:\n  source: control_plane\n  refresh_interval: 200ms\n  max_stale: " + max_stale + "\n";
}

template <class Pred>
bool eventually(Pred pred, millis timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

}  // namespace

TEST_CASE("control plane: the snapshot is fetched with credentials and revalidated with If-None-Match",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("7", "active"), "\"v7\"");
  sidecar_process sc(sidecar_yaml(cp.url()), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(eventually([&] { return c.get("/readyz").status == 200; }));
  auto r = c.post("/v1/check", acme_check);
  REQUIRE(r.status == 200);
  CHECK(r.body.find(R"("allowed":true)") != std::string::npos);
  CHECK(r.body.find(R"("cache":"hit")") != std::string::npos);
  CHECK(c.get("/v1/handshake").body.find(R"("entitlements":{"version":"7","age_s":0})") != std::string::npos);
  CHECK(cp.last_header("X-API-Key") == "test-key-0001");
  CHECK(cp.last_header("X-Tenant-Id") == "tenant-1");

  // Unchanged: every refresh is a conditional request answered 304, and the body is sent once.
  REQUIRE(eventually([&] { return cp.stats().not_modified >= 3; }));
  CHECK(cp.stats().full == 1);
  CHECK(cp.last_header("If-None-Match") == "\"v7\"");
  CHECK(c.post("/v1/check", acme_check).body.find(R"("cache":"hit")") != std::string::npos);

  // A new version is picked up at the next refresh.
  cp.set_snapshot(snapshot_json("8", "suspended"), "\"v8\"");
  REQUIRE(eventually([&] { return c.post("/v1/check", acme_check).body.find("subscription_inactive") != std::string::npos; }));
  CHECK(c.get("/v1/handshake").body.find(R"("version":"8")") != std::string::npos);
  CHECK(cp.stats().full == 2);
}

TEST_CASE("control plane: bearer auth sends Authorization instead of X-API-Key", "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("1", "active"), "\"v1\"");
  sidecar_process sc(sidecar_yaml(cp.url(), "  auth_scheme: bearer\n"), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(eventually([&] { return c.get("/readyz").status == 200; }));
  CHECK(cp.last_header("Authorization") == "Bearer test-key-0001");
  CHECK(cp.last_header("X-API-Key").empty());
}

TEST_CASE("control plane: down: the stale snapshot keeps serving, past max_stale 503, back: serving",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("7", "active"), "\"v7\"");
  sidecar_process sc(sidecar_yaml(cp.url()), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(eventually([&] { return c.get("/readyz").status == 200; }));

  cp.go_down();
  const auto down_at = std::chrono::steady_clock::now();
  // Served while stale (cache "stale" once refreshes have been failing for a while), never an error.
  bool saw_stale = false;
  while (std::chrono::steady_clock::now() - down_at < 2500ms) {
    auto r = c.post("/v1/check", acme_check);
    REQUIRE(r.status == 200);
    REQUIRE(r.body.find(R"("allowed":true)") != std::string::npos);
    saw_stale = saw_stale || r.body.find(R"("cache":"stale")") != std::string::npos;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(saw_stale);
  CHECK(sc.proc().output().find("unreachable") != std::string::npos);

  // Past max_stale (3 s): 503 so the plugin's fallback_on_error applies, and not ready.
  REQUIRE(eventually([&] { return c.post("/v1/check", acme_check).status == 503; }));
  auto r = c.post("/v1/check", acme_check);
  CHECK(r.body.find(R"("code":"no_snapshot")") != std::string::npos);
  CHECK(c.get("/readyz").status == 503);
  CHECK(c.get("/metrics").body.find("aforo_sidecar_check_unavailable_total 0") == std::string::npos);

  // Back: the same ETag is revalidated (304) and the snapshot is fresh again.
  const auto before = cp.stats();
  cp.come_up();
  REQUIRE(eventually([&] { return c.post("/v1/check", acme_check).status == 200; }));
  CHECK(c.get("/readyz").status == 200);
  CHECK(cp.stats().not_modified > before.not_modified);
  CHECK(cp.stats().full == before.full);
  CHECK(sc.proc().output().find("reachable again") != std::string::npos);
}

TEST_CASE("control plane: unreachable at start -> 503 and not ready until the first snapshot arrives",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("3", "active"), "\"v3\"");
  cp.set_status(500);
  sidecar_process sc(sidecar_yaml(cp.url()), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(eventually([&] { return cp.stats().requests >= 1; }));
  CHECK(c.post("/v1/check", acme_check).status == 503);
  CHECK(c.get("/readyz").status == 503);
  CHECK(sc.proc().output().find("control plane answered 500") != std::string::npos);

  // An invalid snapshot is refused with its errors; still not ready.
  cp.set_snapshot(R"({"version":"3","customers":{"cust_acme":{"plan":"p","status":"asleep"}}})", "\"bad\"");
  cp.set_status(0);
  REQUIRE(eventually([&] { return sc.proc().output().find("customers.cust_acme.status") != std::string::npos; }));
  CHECK(c.get("/readyz").status == 503);

  cp.set_snapshot(snapshot_json("3", "active"), "\"v3\"");
  REQUIRE(eventually([&] { return c.get("/readyz").status == 200; }));
  CHECK(c.post("/v1/check", acme_check).status == 200);
}
