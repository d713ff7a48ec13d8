// Concurrent delivery against an ingest a network round trip away (issue 19): several batches in flight,
// the acknowledgement window under SIGKILL, and the adaptive limit against an ingest that refuses past N
// requests at once. Real daemon, real fake ingest with --rtt-ms / --max-in-flight, real spool files.
#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;
using aforo::fake::fake_ingest_options;
using namespace std::chrono_literals;

namespace {

/// Posts `n` events (20 per request, keys prefix-0 ...) and requires a 202 for each request.
void post_events(sidecar_process& sc, const std::string& prefix, int n) {
  auto c = sc.client();
  for (int r = 0; r * 20 < n; ++r)
    REQUIRE(c.post("/v1/ingest/batch", batch(prefix, r * 20, std::min(n, r * 20 + 20))).status == 202);
}

}  // namespace

TEST_CASE("concurrency: at a 50 ms round trip several batches are in flight at once, each event arrives once",
          "[pipeline][concurrency]") {
  const std::uint32_t max_concurrency = GENERATE(1u, 8u);
  INFO("batch.max_concurrency " << max_concurrency);
  fake_ingest_options o;
  o.rtt_ms = 50;
  fake_ingest_process fake(o);
  fake.refuse(true);  // a backlog first, so that there is more to send than one request carries
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 100, backlog_events: 100, flush_interval: 50ms, "
                                  "max_concurrency: " +
                                      std::to_string(max_concurrency) +
                                      " }\n"
                                      "retry: { backoff: [100ms], jitter: 0% }\n"),
                     sidecar_env());
  post_events(sc, "c", 4000);
  REQUIRE(sc.proc().wait_for_output("ingest unreachable", 5s));
  fake.refuse(false);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 4000; }, 30s));
  check_exactly(received_keys(fake), "c", 0, 4000);
  CHECK(fake_stat(fake, "duplicates") == 0);
  // The fake counts events when they arrive and answers a round trip later: then the spool is empty.
  CHECK(wait_until([&] { return metric(sc, "aforo_sidecar_spool_events") == 0; }, 2s));
  CHECK(metric(sc, "aforo_sidecar_ingest_in_flight") == 0);
  if (max_concurrency == 1) {
    CHECK(fake_stat(fake, "peak_in_flight") == 1);
  } else {
    // The adaptive limit grew past one as round trips stayed at 50 ms.
    CHECK(fake_stat(fake, "peak_in_flight") >= 4);
    CHECK(fake_stat(fake, "peak_in_flight") <= max_concurrency);
    CHECK(metric(sc, "aforo_sidecar_ingest_concurrency_limit") >= 4);
  }
  CHECK(metric(sc, "aforo_sidecar_ingest_request_duration_seconds_count") >= 40);
  const auto hs = sc.client().get("/v1/handshake").body;
  CHECK(hs.find(R"("delivery":{"concurrency_limit":)") != std::string::npos);
  CHECK(hs.find(R"("max_concurrency":)" + std::to_string(max_concurrency)) != std::string::npos);
}

TEST_CASE("concurrency: SIGKILL with batches in flight re-sends at most the window, loses nothing",
          "[pipeline][concurrency]") {
  fake_ingest_options o;
  o.rtt_ms = 50;
  o.jitter_ms = 40;  // answers come back out of order
  fake_ingest_process fake(o);
  fake.refuse(true);
  // Window: max_concurrency x backlog_events = 4 x 200 = 800 events cut and not yet acked at most.
  const std::string extra =
      "batch: { max_events: 100, backlog_events: 200, flush_interval: 50ms, max_concurrency: 4, "
      "adaptive_concurrency: false }\n"
      "retry: { backoff: [100ms], jitter: 0% }\n";
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), extra), sidecar_env());
  post_events(sc, "k", 6000);
  REQUIRE(sc.proc().wait_for_output("ingest unreachable", 5s));
  fake.refuse(false);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") >= 1500; }, 20s));
  sc.proc().signal(SIGKILL);
  const auto before = fake_stat(fake, "accepted");
  CHECK(before < 6000);  // killed mid-way
  sc.restart();
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") >= 6000; }, 30s));
  check_exactly(received_keys(fake), "k", 0, 6000);
  // Everything sent twice was in the window at the kill (plus requests answered after it).
  const auto dups = fake_stat(fake, "duplicates");
  INFO("accepted before the kill " << before << ", sent again after it " << dups);
  CHECK(dups <= 800 + 200);  // the window, and the batch cut while it was just under its bound
}

TEST_CASE(
    "concurrency: an ingest that answers 429 past 3 requests at once brings the limit to 3 or below, nothing "
    "lost or doubled",
    "[pipeline][concurrency]") {
  fake_ingest_options o;
  o.rtt_ms = 50;
  o.max_in_flight = 3;
  fake_ingest_process fake(o);
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 20, backlog_events: 20, flush_interval: 20ms, "
                                  "max_concurrency: 16 }\n"
                                  "retry: { backoff: [200ms], jitter: 0% }\n"),
                     sidecar_env());
  // Steady traffic for 10 s, 2,000 events/s: more than 3 requests of 20 carry per round trip (1,200/s),
  // so the limit is pushed.
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::thread load([&] {
    auto c = sc.client();
    for (int r = 0; !stop; ++r) {
      if (c.post("/v1/ingest/batch", batch("s", r * 20, r * 20 + 20)).status != 202) break;
      sent = (r + 1) * 20;
      std::this_thread::sleep_for(10ms);  // pacing: 2,000 events/s
    }
  });
  std::this_thread::sleep_for(8s);  // kept: settling under steady load within 10 s is the subject
  // Settled within 10 s: sampled over the next 2 s, the limit is at or below the ingest's capacity (a probe of one
  // more now and then is refused and undone).
  std::vector<double> limits;
  for (int i = 0; i < 20; ++i) {
    limits.push_back(metric(sc, "aforo_sidecar_ingest_concurrency_limit"));
    std::this_thread::sleep_for(100ms);  // sampling over 2 s
  }
  stop = true;
  load.join();
  fake.control("POST", "/_control/network", R"({"rtt_ms":1,"jitter_ms":0,"max_in_flight":0})");  // drain fast
  std::sort(limits.begin(), limits.end());
  INFO("median limit " << limits[limits.size() / 2] << ", max " << limits.back());
  CHECK(limits[limits.size() / 2] <= 3);
  CHECK(limits.back() <= 5);
  CHECK(fake_stat(fake, "over_limit") > 0);  // the storm happened
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == static_cast<std::uint64_t>(sent.load()); }, 60s));
  check_exactly(received_keys(fake), "s", 0, sent.load());
  CHECK(fake_stat(fake, "duplicates") == 0);  // refused requests were not taken, so never doubled
}

TEST_CASE(
    "concurrency: batches refused while later ones are delivered keep their records in the spool through a "
    "SIGKILL",
    "[pipeline][concurrency]") {
  fake_ingest_options o;
  o.rtt_ms = 20;
  fake_ingest_process fake(o);
  // Every 4th request is answered 503 (taken by nobody) at first; the rest are taken.
  fake.set_faults(R"([{"times":3},{"status":503},{"times":3},{"status":503},{"times":3},{"status":503},)"
                  R"({"times":3},{"status":503}])");
  // Fixed concurrency 4; a refused batch waits 5 s for its retry while the others go on.
  const std::string extra =
      "batch: { max_events: 100, backlog_events: 100, flush_interval: 50ms, max_concurrency: 4, "
      "adaptive_concurrency: false }\n"
      "retry: { backoff: [5s], jitter: 0% }\n";
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), extra), sidecar_env());
  post_events(sc, "h", 2000);
  const auto refused = [&] {
    const auto st = fake.stats();
    return st["by_status"].HasMember("503") ? st["by_status"]["503"].GetUint64() : std::uint64_t{0};
  };
  REQUIRE(wait_until([&] { return refused() >= 2 && fake_stat(fake, "accepted") >= 300; }, 10s));
  // Later batches are delivered while the refused ones wait for their retry (up to the window:
  // 4 x 100 events cut and not acked).
  std::this_thread::sleep_for(1s);  // kept: what arrives in the second while the refused ones wait is measured
  INFO("answered 503: " << refused() << ", accepted before the kill: " << fake_stat(fake, "accepted"));
  REQUIRE(fake_stat(fake, "accepted") < 2000);
  sc.proc().signal(SIGKILL);
  sc.restart();
  // Their records were never acked past (the window acks in order): the restart sends them.
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") >= 2000; }, 15s));
  check_exactly(received_keys(fake), "h", 0, 2000);
}
