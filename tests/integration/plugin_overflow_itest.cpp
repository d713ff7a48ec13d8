// End to end, the plugin's overflow file: the unchanged plugin in real nginx (plugin_e2e_support.hpp) keeps
// what the sidecar does not take in a file under the nginx prefix and replays it, in order, once the
// sidecar answers again; past overflow_max_bytes it drops and counts.
#include <signal.h>

#include <set>
#include <thread>

#include "plugin_e2e_support.hpp"

using namespace plugin_e2e;

TEST_CASE("plugin: 1,000 requests while the sidecar is down reach ingest once each after it restarts",
          "[plugin][e2e][overflow]") {
  // buffer_max_size 200: past 100 queued events the worker appends them to its overflow file under the
  // prefix, and replays the file, in order, once the sidecar answers again.
  e2e_env env("", {"AFORO_BUFFER_MAX_SIZE=200"});
  env.sidecar().proc().signal(SIGKILL);
  env.sidecar().proc().wait_exit(5s);
  int ok = 0;
  for (int i = 0; i < 1000; ++i) {
    if (get(env.proxy(), "/v1/search/down/" + std::to_string(i), {{"X-Tenant-Id", "cust_acme"}}).status == 200) ++ok;
  }
  REQUIRE(ok == 1000);  // fallback_on_error=allow
  CHECK(env.wait_log("not taking events: appending them to " + env.prefix() + "/aforo-overflow-0-"));
  CHECK(env.error_log().find("buffer full") == std::string::npos);
  env.sidecar().restart();
  CHECK(env.wait_events(1000, 40s) == 1000);
  CHECK(env.wait_delivered(1000) == 1000);  // what the sidecar took is all at ingest
  const auto d = env.received();
  std::set<int> seen;
  for (const auto& e : d["events"].GetArray()) {
    const std::string p = e["event"]["endpointPath"].GetString();
    seen.insert(std::stoi(p.substr(p.rfind('/') + 1)));
  }
  CHECK(seen.size() == 1000);
  CHECK(*seen.begin() == 0);
  CHECK(*seen.rbegin() == 999);
  // Each once: the plugin sent every event to the restarted sidecar exactly one time.
  CHECK(env.sidecar().metric("aforo_sidecar_events_accepted_total") == 1000);
  CHECK(env.error_log().find(" events from overflow file ") != std::string::npos);
}

TEST_CASE("plugin: a reload while the sidecar is down loses nothing: the next worker replays the overflow file",
          "[plugin][e2e][overflow]") {
  e2e_env env("", {"AFORO_BUFFER_MAX_SIZE=200"});
  env.sidecar().proc().signal(SIGKILL);
  env.sidecar().proc().wait_exit(5s);
  for (int i = 0; i < 150; ++i)
    REQUIRE(get(env.proxy(), "/v1/search/before/" + std::to_string(i), {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  // Some of them are in the worker's memory: the exiting worker appends them to its file.
  env.nginx().reload();
  CHECK(env.wait_log("for the next worker"));
  env.sidecar().restart();
  // No request after the reload: the new worker (Kong >= 3.5 calls configure) finds the file itself.
  CHECK(env.wait_events(150, 40s) == 150);
  for (int i = 0; i < 50; ++i)
    REQUIRE(get(env.proxy(), "/v1/search/after/" + std::to_string(i), {{"X-Tenant-Id", "cust_acme"}}).status == 200);
  CHECK(env.wait_events(200, 20s) == 200);
  CHECK(env.wait_delivered(200) == 200);  // the sidecar took no event twice
  CHECK(fake_ingest::count(env.received()) == 200);
}

TEST_CASE("plugin: past overflow_max_bytes events are dropped, logged and counted where the sidecar shows them",
          "[plugin][e2e][overflow]") {
  // An event is about 420 bytes: 4,000 bytes keep a few of the 100.
  e2e_env env("", {"AFORO_BUFFER_MAX_SIZE=20", "AFORO_OVERFLOW_MAX_BYTES=4000"});
  env.sidecar().proc().signal(SIGKILL);
  env.sidecar().proc().wait_exit(5s);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(get(env.proxy(), "/v1/search/full/" + std::to_string(i), {{"X-Tenant-Id", "cust_acme"}}).status == 200);
    // Kept: pacing, not a wait for a state. Bursts of 10 with a pause give the spill timer its turn, so the
    // 20-event buffer overflows into the file (what is tested) rather than dropping as buffer_full.
    if (i % 10 == 9) std::this_thread::sleep_for(50ms);
  }
  // The spill timer writes the file and logs the drop past its bound (waited for: a busy machine delays timers).
  const bool logged = env.wait_log("[aforo-metering] ERROR overflow file " + env.prefix() + "/aforo-overflow-0-");
  INFO(env.error_log());
  CHECK(logged);
  env.sidecar().restart();
  // Every one of the 100 is either at ingest or counted as dropped by the plugin, none twice.
  const auto accounted = [&] {
    const double dropped =
        env.sidecar().metric(R"(aforo_sidecar_plugin_events_dropped_total{reason="overflow_full"})") +
        env.sidecar().metric(R"(aforo_sidecar_plugin_events_dropped_total{reason="buffer_full"})");
    return static_cast<std::size_t>(dropped) + env.wait_events(1, 100ms);
  };
  CHECK(wait_until([&] { return accounted() >= 100; }, 30s, 100ms));
  env.wait_delivered(1);  // nothing the sidecar took is still on its way to ingest
  const auto kept = env.wait_events(1, 100ms);
  const double overflow_dropped =
      env.sidecar().metric(R"(aforo_sidecar_plugin_events_dropped_total{reason="overflow_full"})");
  INFO("kept " << kept << ", dropped past the file " << overflow_dropped);
  CHECK(kept >= 5);
  CHECK(overflow_dropped > 0);
  CHECK(accounted() == 100);
  const auto hs = env.sidecar().client().get("/v1/handshake").body;
  CHECK(hs.find(R"("plugin_events_dropped":{"buffer_full":)") != std::string::npos);
  CHECK(hs.find(R"("overflow_full":)" + std::to_string(static_cast<int>(overflow_dropped)) + "}") != std::string::npos);
}
