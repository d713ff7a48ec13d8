// The control-plane snapshot source through the real aforo-sidecar: loads the snapshot with the
// tenant's credentials, revalidates with If-None-Match (304), keeps serving a stale snapshot while
// the control plane is down (until it is back by default; 503 past entitlements.max_stale when one is
// set), and keeps the last known good snapshot on disk for a restart while the control plane is away.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
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
         "entitlements:\n  source: control_plane\n  refresh_interval: 200ms\n  max_stale: " +
         max_stale + "\n";
}

}  // namespace

TEST_CASE("control plane: the snapshot is fetched with credentials and revalidated with If-None-Match",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("7", "active"), "\"v7\"");
  sidecar_process sc(sidecar_yaml(cp.url()), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
  auto r = c.post("/v1/check", acme_check);
  REQUIRE(r.status == 200);
  CHECK(r.body.find(R"("allowed":true)") != std::string::npos);
  CHECK(r.body.find(R"("cache":"hit")") != std::string::npos);
  CHECK(c.get("/v1/handshake").body.find(R"("entitlements":{"version":"7","age_s":0,"state":"fresh")") !=
        std::string::npos);
  CHECK(cp.last_header("X-API-Key") == "test-key-0001");
  CHECK(cp.last_header("X-Tenant-Id") == "tenant-1");

  // Unchanged: every refresh is a conditional request answered 304, and the body is sent once.
  REQUIRE(wait_until([&] { return cp.stats().not_modified >= 3; }));
  CHECK(cp.stats().full == 1);
  CHECK(cp.last_header("If-None-Match") == "\"v7\"");
  CHECK(c.post("/v1/check", acme_check).body.find(R"("cache":"hit")") != std::string::npos);

  // A new version is picked up at the next refresh.
  cp.set_snapshot(snapshot_json("8", "suspended"), "\"v8\"");
  REQUIRE(wait_until(
      [&] { return c.post("/v1/check", acme_check).body.find("subscription_inactive") != std::string::npos; }));
  CHECK(c.get("/v1/handshake").body.find(R"("version":"8")") != std::string::npos);
  CHECK(cp.stats().full == 2);
}

TEST_CASE("control plane: bearer auth sends Authorization instead of X-API-Key", "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("1", "active"), "\"v1\"");
  sidecar_process sc(sidecar_yaml(cp.url(), "  auth_scheme: bearer\n"), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
  CHECK(cp.last_header("Authorization") == "Bearer test-key-0001");
  CHECK(cp.last_header("X-API-Key").empty());
}

TEST_CASE("control plane: down: the stale snapshot keeps serving, past max_stale 503, back: serving",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("7", "active"), "\"v7\"");
  sidecar_process sc(sidecar_yaml(cp.url()), {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));

  cp.go_down();
  const auto down_at = std::chrono::steady_clock::now();
  // Served while stale (cache "stale" once refreshes have been failing for a while), never an error.
  bool saw_stale = false;
  while (std::chrono::steady_clock::now() - down_at < 2500ms) {
    auto r = c.post("/v1/check", acme_check);
    REQUIRE(r.status == 200);
    REQUIRE(r.body.find(R"("allowed":true)") != std::string::npos);
    saw_stale = saw_stale || r.body.find(R"("cache":"stale")") != std::string::npos;
    std::this_thread::sleep_for(50ms);  // pacing: served throughout 2.5 s is the subject
  }
  CHECK(saw_stale);
  CHECK(sc.proc().output().find("unreachable") != std::string::npos);

  // Past a configured max_stale (3 s): 503 so the plugin's fallback_on_error applies; still ready
  // (the pod carries Kong and the ingest path too), with the snapshot's state reported.
  REQUIRE(wait_until([&] { return c.post("/v1/check", acme_check).status == 503; }));
  auto r = c.post("/v1/check", acme_check);
  CHECK(r.body.find(R"("code":"no_snapshot")") != std::string::npos);
  auto ready = c.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body.find(R"("state":"expired")") != std::string::npos);
  CHECK(c.get("/metrics").body.find("aforo_sidecar_check_unavailable_total 0") == std::string::npos);

  // Back: the same ETag is revalidated (304) and the snapshot is fresh again.
  const auto before = cp.stats();
  cp.come_up();
  REQUIRE(wait_until([&] { return c.post("/v1/check", acme_check).status == 200; }));
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
  REQUIRE(wait_until([&] { return cp.stats().requests >= 1; }));
  CHECK(c.post("/v1/check", acme_check).status == 503);
  CHECK(c.get("/readyz").status == 503);
  CHECK(sc.proc().output().find("control plane answered 500") != std::string::npos);

  // An invalid snapshot is refused with its errors; still not ready.
  cp.set_snapshot(R"({"version":"3","customers":{"cust_acme":{"plan":"p","status":"asleep"}}})", "\"bad\"");
  cp.set_status(0);
  REQUIRE(wait_until([&] { return sc.proc().output().find("customers.cust_acme.status") != std::string::npos; }));
  CHECK(c.get("/readyz").status == 503);

  cp.set_snapshot(snapshot_json("3", "active"), "\"v3\"");
  REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
  CHECK(c.post("/v1/check", acme_check).status == 200);
}

namespace {

// The check answers of a sidecar until `for_how_long` passes: true when every one was a 200 allow.
bool always_allowed(http_client& c, millis for_how_long, bool& saw_stale) {
  const auto until = std::chrono::steady_clock::now() + for_how_long;
  while (std::chrono::steady_clock::now() < until) {
    auto r = c.post("/v1/check", acme_check);
    if (r.status != 200 || r.body.find(R"("allowed":true)") == std::string::npos) return false;
    saw_stale = saw_stale || r.body.find(R"("cache":"stale")") != std::string::npos;
    std::this_thread::sleep_for(100ms);  // pacing of the checks over for_how_long
  }
  return true;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("control plane: down, by default (no max_stale) the stale snapshot keeps deciding and the pod stays ready",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("7", "active"), "\"v7\"");
  // refresh 200 ms: stale after 1.4 s; 5 s down is past what a 3 s max_stale would allow.
  sidecar_process sc("aforo:\n  control_url: \"" + cp.url() +
                         "\"\n  tenant_id: tenant-1\n"
                         "  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n"
                         "entitlements:\n  source: control_plane\n  refresh_interval: 200ms\n",
                     {"AFORO_API_KEY=test-key-0001"});
  auto c = sc.client();
  REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
  cp.go_down();
  bool saw_stale = false;
  CHECK(always_allowed(c, 5s, saw_stale));
  CHECK(saw_stale);
  auto ready = c.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body.find(R"("state":"stale")") != std::string::npos);
  CHECK(c.get("/v1/handshake").body.find(R"("state":"stale")") != std::string::npos);
  CHECK(sc.metric("aforo_sidecar_entitlements_snapshot_stale") == 1);
  CHECK(sc.metric("aforo_sidecar_entitlements_snapshot_age_seconds") >= 4);
  CHECK(sc.metric("aforo_sidecar_check_unavailable_total") == 0);
  // One WARN when it turned stale, not one per request or per failed refresh.
  CHECK(count_of(sc.proc().output(), "snapshot 7 is stale") == 1);
  CHECK(sc.proc().output().find("until a refresh succeeds") != std::string::npos);

  cp.come_up();
  REQUIRE(wait_until([&] { return c.get("/v1/handshake").body.find(R"("state":"fresh")") != std::string::npos; }));
  CHECK(sc.proc().wait_for_output("snapshot 7 is fresh again", 5s));
  CHECK(sc.metric("aforo_sidecar_entitlements_snapshot_stale") == 0);
}

TEST_CASE("control plane: restarted while it is down, the last known good snapshot decides with its true age",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("7", "active"), "\"v7\"");
  sidecar_process sc(sidecar_yaml(cp.url(), "", "0s"), {"AFORO_API_KEY=test-key-0001"});
  {
    auto c = sc.client();
    REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
    REQUIRE(c.post("/v1/check", acme_check).status == 200);
  }
  const std::string kept = sc.dir().file("state/entitlements.snapshot");
  REQUIRE(std::filesystem::exists(kept));
  CHECK((std::filesystem::status(kept).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_exit(10s) == 0);

  cp.go_down();
  std::this_thread::sleep_for(2500ms);  // the snapshot ages while the sidecar is stopped
  sc.restart();
  auto c = sc.client();
  REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
  auto r = c.post("/v1/check", acme_check);
  REQUIRE(r.status == 200);
  CHECK(r.body.find(R"("allowed":true)") != std::string::npos);
  CHECK(r.body.find(R"("cache":"stale")") != std::string::npos);
  const auto hs = c.get("/v1/handshake").body;
  CHECK(hs.find(R"("last_known_good":true)") != std::string::npos);
  CHECK(hs.find(R"("entitlements":{"version":"7","age_s":0)") == std::string::npos);  // not reset to 0
  CHECK(sc.metric("aforo_sidecar_entitlements_snapshot_age_seconds") >= 2.5);
  CHECK(sc.metric("aforo_sidecar_entitlements_last_known_good_loads_total{result=\"loaded\"}") == 1);
  const auto out = sc.proc().output();
  CHECK(out.find("serving the last known good snapshot 7") != std::string::npos);
  CHECK((out.find("(from control_plane, age 2s") != std::string::npos ||
         out.find("(from control_plane, age 3s") != std::string::npos));

  // Back: a full fetch replaces it (it was not fetched in this process, so no If-None-Match).
  cp.come_up();
  REQUIRE(
      wait_until([&] { return c.get("/v1/handshake").body.find(R"("last_known_good":false)") != std::string::npos; }));
  CHECK(c.get("/v1/handshake").body.find(R"("state":"fresh")") != std::string::npos);
}

TEST_CASE("control plane: a corrupt or truncated last known good file is ignored with a WARN",
          "[check][control_plane]") {
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot_json("7", "active"), "\"v7\"");
  sidecar_process sc(sidecar_yaml(cp.url(), "", "0s"), {"AFORO_API_KEY=test-key-0001"});
  {
    auto c = sc.client();
    REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
  }
  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_exit(10s) == 0);
  cp.go_down();
  const std::string kept = sc.dir().file("state/entitlements.snapshot");
  const std::string good = read_file(kept);
  REQUIRE(good.size() > 100);

  struct damage {
    const char* what;
    std::string content;
    const char* log;
  };
  std::string flipped = good;
  flipped[flipped.size() - 20] ^= 0x20;
  const std::vector<damage> cases{
      {"truncated", good.substr(0, good.size() / 2), "truncated"},
      {"one byte changed", flipped, "checksum mismatch"},
      {"garbage", std::string("\x00\x01\xff not a snapshot", 19), "ignored"},
      {"empty", "", "no header line"},
  };
  for (const auto& d : cases) {
    INFO(d.what);
    { std::ofstream(kept, std::ios::binary | std::ios::trunc) << d.content; }
    sc.restart();
    auto c = sc.client();
    REQUIRE(sc.proc().wait_for_output("last known good snapshot", 10s));
    REQUIRE(
        wait_until([&] { return sc.proc().output().find("no last known good one is usable") != std::string::npos; }));
    CHECK(sc.proc().output().find(d.log) != std::string::npos);
    CHECK(c.post("/v1/check", acme_check).status == 503);
    CHECK(c.get("/readyz").status == 503);
    CHECK(sc.proc().running());
    sc.proc().signal(SIGTERM);
    REQUIRE(sc.proc().wait_exit(10s) == 0);
  }
  // The control plane back: a good snapshot is loaded and written over the damaged file.
  cp.come_up();
  sc.restart();
  auto c = sc.client();
  REQUIRE(wait_until([&] { return c.get("/readyz").status == 200; }));
  REQUIRE(wait_until([&] { return read_file(kept) == good || read_file(kept).find("aforo-snapshot 1 ") == 0; }));
}
