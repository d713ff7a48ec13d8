// Shutdown of the whole daemon graph (app/daemon_graph.hpp) with every dependency in use: SIGTERM lands
// while checks (shared through a real redis-server, snapshot from the control plane) and usage batches
// (ingest refusing them, so they wait in custody) keep arriving. The services stop in the reverse of
// their start order, the process exits 0, and nothing acknowledged is lost.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "fakes/fake_control_plane/fake_control_plane.hpp"
#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;
using aforo::testkit::free_port;
using aforo::testkit::redis_server;

namespace {

// cust_acme's search feature is limited (quota counted and shared through Redis) and priced (COGS).
const std::string snapshot =
    R"({"version":"1","customers":{"cust_acme":{"plan":"enterprise","status":"active",)"
    R"("features":{"advanced_search":{"limit":100000000,"period":"month"}}}},)"
    R"("features":[{"feature":"advanced_search","match":{"service":"search","path_prefix":"/v1/search"},)"
    R"("metric":"api_calls","unit_cost":0.004}]})";

const std::string reserved = R"(aforo_sidecar_quota_reservation_calls_total{result="granted"})";
const std::string cogs_pushed = R"(aforo_sidecar_redis_sync_pushes_total{counters="cogs",result="ok"})";

const std::string check = R"({"customer_id":"cust_acme","service":"search","method":"GET","path":"/v1/search/x"})";

// The services in the order the graph builds and starts them.
const std::vector<std::string> start_order{"margin", "decisions", "discovery", "pipeline", "handshake", "ops"};

// Where `line` first appears in `out` (npos when absent).
std::size_t at(const std::string& out, const std::string& line) { return out.find(line); }

}  // namespace

TEST_CASE(
    "shutdown: SIGTERM under load stops every service in reverse start order, exits 0 and keeps every "
    "acknowledged event",
    "[shutdown][signals][redis]") {
  redis_server redis(free_port());
  aforo::fake::fake_control_plane cp;
  cp.set_snapshot(snapshot, "\"v1\"");
  fake_ingest_process fake;
  fake.refuse(true);  // deliveries keep failing: every acknowledged event is still in custody at SIGTERM
  sidecar_process sc("aforo:\n  ingest_url: \"" + fake.ingest_url() + "\"\n  control_url: \"" + cp.url() +
                         "\"\n  connect_timeout: 1s\n"
                         "entitlements: { source: control_plane, refresh_interval: 200ms }\n"
                         "cache: { redis: \"" +
                         redis.url() +
                         "\", sync_interval: 100ms, redis_timeout: 200ms }\n"
                         "batch: { max_events: 100, flush_interval: 50ms }\n"
                         "retry: { backoff: [100ms, 200ms], jitter: 0% }\n"
                         "buffer: { durability: memory, max_events: 1000000, spool_dir: \"{dir}/spool\" }\n"
                         "discovery: { kong_admin_url: \"http://127.0.0.1:9\", state_dir: \"{dir}/state\" }\n"
                         "log: { level: debug }\n",
                     sidecar_env());
  {
    auto c = sc.client();
    REQUIRE(
        wait_until([&] { return c.get("/readyz").status == 200 && sc.metric("aforo_sidecar_redis_up") == 1; }, 10s));
  }

  // Load: one client posting usage batches, one asking for decisions, until the sidecar goes away
  // (paced, so the restart below has a few thousand events to deliver, not millions).
  std::atomic<bool> done{false};
  std::atomic<int> acknowledged{0};  // events answered 202: the sidecar has custody of them
  std::vector<int> acked_batches;    // their batch numbers (batch r holds g-20r .. g-20r+19)
  std::atomic<int> decided{0};
  std::thread ingest_load([&] {
    auto c = sc.client();
    for (int r = 0; !done; ++r) {
      const auto res = c.post("/v1/ingest/batch", batch("g", r * 20, r * 20 + 20));
      if (res.status == 202) {
        acked_batches.push_back(r);
        acknowledged += 20;
      } else if (res.status == 0) {
        return;  // refused or closed: the sidecar is stopping (that batch may or may not be in custody)
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  std::thread check_load([&] {
    auto c = sc.client();
    while (!done) {
      const auto res = c.post("/v1/check", check);
      if (res.status == 0) return;
      if (res.status == 200) ++decided;
      std::this_thread::sleep_for(1ms);
    }
  });
  // Mid-load: usage taken, decisions made, quota reserved and COGS shared through Redis.
  const bool loaded = wait_until(
      [&] { return acknowledged >= 1000 && decided >= 200 && sc.metric(reserved) >= 1 && sc.metric(cogs_pushed) >= 1; },
      20s);
  const double reservations = sc.metric(reserved), pushes = sc.metric(cogs_pushed);
  sc.proc().signal(SIGTERM);
  const auto code = sc.proc().wait_exit(15s);
  done = true;
  ingest_load.join();
  check_load.join();
  INFO("acknowledged " << acknowledged << ", decided " << decided << ", quota reservations " << reservations
                       << ", COGS pushes " << pushes);
  REQUIRE(loaded);
  REQUIRE(code.has_value());
  CHECK(*code == 0);

  const std::string out = sc.proc().output();
  INFO(out.substr(out.size() > 6000 ? out.size() - 6000 : 0));
  CHECK(out.find("AddressSanitizer") == std::string::npos);
  CHECK(out.find("runtime error:") == std::string::npos);
  // Started in build order, stopped in reverse, each after the one built after it finished stopping.
  std::size_t prev = 0;
  for (const auto& name : start_order) {
    const auto p = at(out, "service " + name + " started");
    INFO("service " << name);
    REQUIRE(p != std::string::npos);
    CHECK(p >= prev);
    prev = p;
  }
  for (auto it = start_order.rbegin(); it != start_order.rend(); ++it) {
    const auto begin = at(out, "stopping service " + *it);
    const auto end = at(out, "service " + *it + " stopped");
    INFO("service " << *it);
    REQUIRE(begin != std::string::npos);
    REQUIRE(end != std::string::npos);
    CHECK(begin >= prev);
    CHECK(end > begin);
    prev = end;
  }
  CHECK(at(out, "] INFO stopped\n") > prev);
  // What the services persisted at stop: the memory buffer in the spool, the catalog on disk.
  CHECK(at(out, "buffered events moved to the disk spool") > at(out, "stopping service pipeline"));
  CHECK(std::filesystem::exists(sc.dir().file("state/catalog.json")));

  // Restarted with ingest back: every acknowledged event is delivered once. At most one more batch
  // may come (the one whose answer the SIGTERM cut off); nothing else was posted.
  fake.refuse(false);
  sc.restart();
  const int n = acknowledged;
  INFO(n << " events acknowledged before the exit");
  REQUIRE(wait_until([&] { return static_cast<int>(fake_stat(fake, "accepted")) >= n; }, 30s));
  std::map<std::string, int> received;
  for (const auto& k : received_keys(fake)) ++received[k];
  for (const int r : acked_batches) {
    for (int i = r * 20; i < r * 20 + 20; ++i) {
      INFO("key " << key("g", i));
      CHECK(received[key("g", i)] == 1);
    }
  }
  CHECK(received.size() <= static_cast<std::size_t>(n) + 20);
  sc.proc().signal(SIGTERM);
  CHECK(sc.proc().wait_exit(10s) == 0);
}
