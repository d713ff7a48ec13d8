// The integrity of acknowledged events with real processes and real faults: an upgrade
// from release 0.1's spool, fd exhaustion while reading the spool, a full spool, an ingest that
// takes fewer events per request than a batch holds (413), per-event failures inside a 2xx, a
// dead-letter file that cannot be written, fsync modes, and SIGTERM past shutdown_timeout.
#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <map>
#include <set>

#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;
namespace fs = std::filesystem;
using aforo::fake::fake_ingest_options;
using aforo::testkit::temp_dir;

namespace {

/// Sets a resource limit of a running process (prlimit(2)); restores the old one on destruction.
struct limit_of {
  pid_t pid;
  int resource;
  rlimit saved{};
  limit_of(pid_t p, int r, rlim_t soft) : pid(p), resource(r) {
    REQUIRE(::prlimit(pid, static_cast<__rlimit_resource>(resource), nullptr, &saved) == 0);
    rlimit now = saved;
    now.rlim_cur = soft;
    REQUIRE(::prlimit(pid, static_cast<__rlimit_resource>(resource), &now, nullptr) == 0);
  }
  void restore() { ::prlimit(pid, static_cast<__rlimit_resource>(resource), &saved, nullptr); }
  ~limit_of() { restore(); }
  limit_of(const limit_of&) = delete;
  limit_of& operator=(const limit_of&) = delete;
};

/// One /metrics series read over an existing (kept-alive) connection; -1 when absent.
double metric_on(aforo::testkit::http_client& c, const std::string& series) {
  const auto r = c.get("/metrics");
  const std::string needle = "\n" + series + " ";
  const auto p = r.body.find(needle);
  return p == std::string::npos ? -1 : std::strtod(r.body.c_str() + p + needle.size(), nullptr);
}

std::vector<std::string> dead_letter_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("integrity: a spool written by release 0.1 (format 1) is delivered by this release",
          "[pipeline][integrity]") {
  temp_dir spool;
  for (const auto& f : fs::directory_iterator(aforo::testkit::source_dir() + "/tests/fixtures/spool-v1")) {
    if (f.path().extension() != ".md") fs::copy_file(f.path(), fs::path(spool.path()) / f.path().filename());
  }
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { flush_interval: 50ms }\n"
                                  "buffer: { spool_dir: \"" +
                                      spool.path() + "\" }\n"),
                     sidecar_env());
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 5; }, 5s));
  check_exactly(received_keys(fake), "fixture-v1", 0, 5);
  CHECK(sc.proc().output().find("(2 in format 1)") != std::string::npos);
  // New records are written in format 2 (LZ4) beside the old ones, and delivered too.
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("after", 0, 3)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 8; }, 5s));
}

TEST_CASE("integrity: fd exhaustion while the spool is read loses nothing, the read is retried",
          "[pipeline][integrity]") {
  fake_ingest_process fake;
  fake.refuse(true);
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 10, backlog_events: 10, flush_interval: 20ms }\n"
                                  "retry: { backoff: [50ms], jitter: 0% }\n"
                                  "buffer: { spool_dir: \"{dir}/spool\", segment_bytes: 4KiB }\n"),
                     sidecar_env());
  auto c = sc.client();
  const int requests = 60, per = 10;
  for (int r = 0; r < requests; ++r)
    REQUIRE(c.post("/v1/ingest/batch", batch("fd", r * per, r * per + per)).status == 202);
  REQUIRE(sc.proc().wait_for_output("ingest unreachable", 5s));
  // Ingest answers slowly, so the reader moves from segment to segment during the fault.
  fake.set_faults(R"([{"delay_ms":40,"times":1000}])");
  fake.refuse(false);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") >= 20; }, 10s));
  {
    // c's kept-alive connection still answers /metrics while the daemon can open nothing new.
    // Below every descriptor it holds: those stay usable, and any open(), socket() or accept() fails
    // with EMFILE (even one that reuses the number of a descriptor just closed).
    limit_of nofile(sc.proc().pid(), RLIMIT_NOFILE, 3);
    const bool failed_read = wait_until([&] { return metric_on(c, "aforo_sidecar_spool_read_errors_total") > 0; }, 15s);
    INFO(sc.proc().output());
    REQUIRE(failed_read);
    std::this_thread::sleep_for(300ms);  // kept: the spool is still waiting 300 ms later (not consumed) is the subject
    CHECK(metric_on(c, "aforo_sidecar_spool_events") > 0);  // waiting, not consumed
    CHECK(metric_on(c, "aforo_sidecar_spool_skipped_records_total{kind=\"corrupt_on_read\"}") == 0);
  }
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == requests * per; }, 20s));
  check_exactly(received_keys(fake), "fd", 0, requests * per);
  CHECK(metric(sc, "aforo_sidecar_spool_skipped_records_total{kind=\"corrupt_on_read\"}") == 0);
  CHECK(metric(sc, "aforo_sidecar_spool_quarantined_total{kind=\"record\"}") == 0);
  CHECK(sc.proc().output().find("spool read failed") != std::string::npos);
  CHECK(sc.proc().output().find("spool readable again") != std::string::npos);
}

TEST_CASE("integrity: a 256 KiB spool filled during an outage delivers every 202'd event, the excess got 503",
          "[pipeline][integrity]") {
  fake_ingest_process fake;
  fake.refuse(true);
  sidecar_process sc(
      sidecar_yaml(fake.ingest_url(),
                   "batch: { flush_interval: 50ms }\n"
                   "retry: { backoff: [100ms], jitter: 0% }\n"
                   "buffer: { spool_dir: \"{dir}/spool\", segment_bytes: 64KiB, spool_max_bytes: 256KiB }\n"),
      sidecar_env());  // when_full: the default, reject
  auto c = sc.client();
  const int per = 50;
  int taken = 0, refused = 0, r = 0;
  for (; r < 2000 && refused < 20 * per; ++r) {
    const auto res = c.post("/v1/ingest/batch", batch("full", r * per, r * per + per));
    if (res.status == 202) {
      taken += per;
    } else {
      REQUIRE(res.status == 503);
      CHECK(res.header("retry-after") == "1");
      refused += per;
    }
  }
  CHECK(refused > 0);
  CHECK(taken > 1000);
  CHECK(metric(sc, "aforo_sidecar_events_dropped_total{reason=\"spool_full\"}") == 0);
  CHECK(metric(sc, "aforo_sidecar_spool_bytes") <= 256 * 1024);
  fake.refuse(false);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == static_cast<std::uint64_t>(taken); }, 30s));
  // Exactly the events that got a 202: every one, once, and none of the refused ones.
  std::map<std::string, int> seen;
  for (const auto& k : received_keys(fake)) ++seen[k];
  CHECK(seen.size() == static_cast<std::size_t>(taken));
  for (const auto& [k, n] : seen) CHECK(n == 1);
}

TEST_CASE("integrity: an ingest that takes at most 50 events per request gets everything, nothing dead-lettered",
          "[pipeline][integrity]") {
  fake_ingest_options o;
  o.max_events = 50;
  fake_ingest_process fake(o);
  sidecar_process sc(
      sidecar_yaml(fake.ingest_url(), "batch: { max_events: 100, backlog_events: 100, flush_interval: 50ms }\n"),
      sidecar_env());
  auto c = sc.client();
  // 500 events in one request: one spool record sent in slices of 100, then halves of 50.
  REQUIRE(c.post("/v1/ingest/batch", batch("big", 0, 500)).status == 202);
  for (int r = 0; r < 10; ++r) REQUIRE(c.post("/v1/ingest/batch", batch("small", r * 30, r * 30 + 30)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 800; }, 15s));
  auto keys = received_keys(fake);
  std::vector<std::string> big(keys.begin(), keys.begin() + 500), small(keys.begin() + 500, keys.end());
  check_exactly(big, "big", 0, 500);
  check_exactly(small, "small", 0, 300);
  CHECK(metric(sc, "aforo_sidecar_ingest_splits_total") >= 1);
  CHECK(metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"too_large\"}") == 0);
  CHECK(metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"rejected_batch\"}") == 0);
  // No request to ingest ever carried more than batch.max_events.
  auto log = fake.received();
  for (const auto& req : log["requests"].GetArray()) CHECK(req["events"].GetUint64() <= 100);
  CHECK(sc.proc().output().find("requests now carry at most 50") != std::string::npos);
}

TEST_CASE("integrity: 413 down to a single event makes only that event poison", "[pipeline][integrity]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 10, flush_interval: 50ms }\n"),
                     sidecar_env());
  // 4 events: 4 -> 2+2 -> 1+1+1+1, each refused: 7 requests answered 413.
  fake.set_faults(R"([{"status":413,"times":7}])");
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("huge", 0, 4)).status == 202);
  REQUIRE(wait_until([&] { return metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"too_large\"}") == 4; },
                     10s));
  const auto lines = dead_letter_lines(sc.dir().file("spool/dead-letter/dead-letter.jsonl"));
  REQUIRE(lines.size() == 4);
  for (int i = 0; i < 4; ++i) {
    INFO(lines[static_cast<std::size_t>(i)]);
    CHECK(lines[static_cast<std::size_t>(i)].find("\"" + key("huge", i) + "\"") != std::string::npos);
    CHECK(lines[static_cast<std::size_t>(i)].find(R"("reason":"too_large","status":413,"events":1)") !=
          std::string::npos);
  }
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("next", 0, 3)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 3; }, 5s));
  CHECK(metric(sc, "aforo_sidecar_spool_events") == 0);
}

TEST_CASE("integrity: every event ingest fails inside a 202 is in the dead-letter file with its message",
          "[pipeline][integrity]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 100, flush_interval: 50ms }\n"),
                     sidecar_env());
  // Every 10th event fails, named by key: how the sidecar cuts its batches (timer, concurrency, backlog
  // size) does not change which events fail.
  std::string keys;
  for (int i = 9; i < 500; i += 10) keys += (keys.empty() ? "\"" : ",\"") + key("ev", i) + "\"";
  fake.set_faults(R"([{"fail_keys":[)" + keys + R"(],"times":1000}])");
  auto c = sc.client();
  for (int r = 0; r < 5; ++r) REQUIRE(c.post("/v1/ingest/batch", batch("ev", r * 100, r * 100 + 100)).status == 202);
  REQUIRE(wait_until(
      [&] { return metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"event_failed\"}") == 50; }, 10s));
  CHECK(fake_stat(fake, "accepted") == 450);
  const auto lines = dead_letter_lines(sc.dir().file("spool/dead-letter/dead-letter.jsonl"));
  REQUIRE(lines.size() == 50);
  std::set<std::string> failed;
  for (const auto& line : lines) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    REQUIRE(d.IsObject());
    CHECK(std::string(d["reason"].GetString()) == "event_failed");
    CHECK(std::string(d["response"].GetString()) == "rejected by the ingest (injected failure)");
    REQUIRE(d["batch"]["events"].Size() == 1);
    failed.insert(d["batch"]["events"][0]["idempotencyKey"].GetString());
  }
  for (int i = 9; i < 500; i += 10) CHECK(failed.count(key("ev", i)) == 1);
  // Nothing resent: each event reached the ingest once.
  CHECK(fake_stat(fake, "events_received") == 500);
  CHECK(fake_stat(fake, "duplicates") == 0);
}

TEST_CASE("integrity: an envelope with success:false dead-letters every event of the request",
          "[pipeline][integrity]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 100, flush_interval: 50ms }\n"),
                     sidecar_env());
  fake.set_faults(R"([{"success_false":true,"fail_events":[2]}])");
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("sf", 0, 5)).status == 202);
  REQUIRE(wait_until(
      [&] {
        return metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"success_false\"}") == 4 &&
               metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"event_failed\"}") == 1;
      },
      5s));
  const auto lines = dead_letter_lines(sc.dir().file("spool/dead-letter/dead-letter.jsonl"));
  REQUIRE(lines.size() == 5);
  CHECK(lines[2].find("rejected by the ingest (injected failure)") != std::string::npos);
  CHECK(lines[0].find("ingest answered success:false") != std::string::npos);
  CHECK(metric(sc, "aforo_sidecar_events_delivered_total") == 0);
  // Nothing resent: the next batch is the next request.
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("ok", 0, 2)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 2; }, 5s));
  CHECK(fake_stat(fake, "requests") == 2);
}

TEST_CASE("integrity: a dead-letter write that fails leaves the batch in the spool, it is written once it can be",
          "[pipeline][integrity]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 100, flush_interval: 300ms }\n"
                                  "retry: { backoff: [200ms], jitter: 0% }\n"),
                     sidecar_env());
  fake.set_faults(R"([{"status":400,"times":1000}])");
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("dl", 0, 10)).status == 202);
  {
    // No file of the daemon may grow past 100 bytes: the dead-letter line cannot be written (EFBIG).
    limit_of fsize(sc.proc().pid(), RLIMIT_FSIZE, 100);
    REQUIRE(wait_until([&] { return metric(sc, "aforo_sidecar_dead_letter_write_errors_total") >= 2; }, 10s));
    CHECK(metric(sc, "aforo_sidecar_spool_events") == 10);
    CHECK(metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"rejected_batch\"}") == 0);
  }
  REQUIRE(wait_until(
      [&] { return metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"rejected_batch\"}") == 10; }, 10s));
  CHECK(metric(sc, "aforo_sidecar_spool_events") == 0);
  const auto lines = dead_letter_lines(sc.dir().file("spool/dead-letter/dead-letter.jsonl"));
  REQUIRE(lines.size() == 1);  // whole lines only: the failed attempts left nothing behind
  for (int i = 0; i < 10; ++i) CHECK(lines[0].find("\"" + key("dl", i) + "\"") != std::string::npos);
}

TEST_CASE("integrity: fsync always answers 202 after a group commit, off never syncs while running",
          "[pipeline][integrity]") {
  fake_ingest_process fake;
  fake.refuse(true);
  sidecar_process always(sidecar_yaml(fake.ingest_url(), "buffer: { fsync: always, spool_dir: \"{dir}/spool\" }\n"),
                         sidecar_env());
  sidecar_process off(sidecar_yaml(fake.ingest_url(), "buffer: { fsync: off, spool_dir: \"{dir}/spool\" }\n"),
                      sidecar_env());
  // Concurrent posters share group commits: fewer syncs than requests.
  std::vector<std::thread> posters;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&, t] {
      auto c = always.client();
      for (int r = 0; r < 25; ++r) {
        if (c.post("/v1/ingest/batch", batch("gc" + std::to_string(t), r * 2, r * 2 + 2)).status == 202) ++ok;
      }
    });
  }
  for (auto& p : posters) p.join();
  CHECK(ok == 100);
  const double syncs = metric(always, "aforo_sidecar_spool_syncs_total");
  CHECK(syncs >= 1);
  CHECK(syncs <= 100);
  CHECK(metric(always, "aforo_sidecar_spool_sync_errors_total") == 0);
  REQUIRE(off.client().post("/v1/ingest/batch", batch("off", 0, 2)).status == 202);
  CHECK(metric(off, "aforo_sidecar_spool_syncs_total") == 0);
  CHECK(always.proc().output().find("fsync always") != std::string::npos);
}

TEST_CASE("integrity: a write-back error (fdatasync EIO) answers 503 for the requests it covered, then recovers",
          "[pipeline][integrity]") {
  if (std::getenv("ASAN_OPTIONS") != nullptr) {
    // Under scripts/sanitize.sh the sidecar is ASan-instrumented, and ASan refuses to start behind a
    // preloaded library; the plain build runs this test.
    SUCCEED("skipped under the sanitizer build");
    return;
  }
  fake_ingest_process fake;
  fake.refuse(true);
  temp_dir flags;
  const std::string flag = flags.path() + "/fail-fdatasync";
  auto env = sidecar_env();
  env.push_back(std::string("LD_PRELOAD=") + AFORO_FAULT_PRELOAD);
  env.push_back("AFORO_FAULT_FDATASYNC_FILE=" + flag);
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { flush_interval: 50ms }\n"
                                  "buffer: { fsync: always, spool_dir: \"{dir}/spool\" }\n"),
                     env);
  auto c = sc.client();
  REQUIRE(c.post("/v1/ingest/batch", batch("wb", 0, 5)).status == 202);
  aforo::testkit::replace_file(flag, "x");
  const auto failed = c.post("/v1/ingest/batch", batch("wb", 5, 10));
  CHECK(failed.status == 503);
  CHECK(failed.header("retry-after") == "1");
  CHECK(failed.body.find("spool_unavailable") != std::string::npos);
  CHECK(metric(sc, "aforo_sidecar_spool_sync_errors_total") >= 1);
  CHECK(sc.proc().output().find("spool fdatasync failed") != std::string::npos);
  fs::remove(flag);
  // The sender re-posts the refused request; the next sync succeeds.
  REQUIRE(c.post("/v1/ingest/batch", batch("wb", 5, 10)).status == 202);
  REQUIRE(sc.proc().wait_for_output("spool fdatasync succeeds again", 2s));
  fake.refuse(false);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 10; }, 10s));
  check_exactly(received_keys(fake), "wb", 0, 10);  // each once: Aforo deduplicated the re-post
}

TEST_CASE("integrity: SIGTERM with a stalled client past shutdown_timeout still persists the memory buffer",
          "[pipeline][integrity]") {
  fake_ingest_process fake;
  fake.refuse(true);
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "server: { shutdown_timeout: 500ms }\n"
                                  "batch: { max_events: 100, flush_interval: 60s }\n"
                                  "buffer: { durability: memory, spool_dir: \"{dir}/spool\" }\n"),
                     sidecar_env());
  auto c = sc.client();
  for (int r = 0; r < 5; ++r) REQUIRE(c.post("/v1/ingest/batch", batch("term", r * 10, r * 10 + 10)).status == 202);
  REQUIRE(metric(sc, "aforo_sidecar_memory_buffer_events") == 50);
  // A client that sent half a request and stalls: the drain cannot finish before the timeout.
  aforo::testkit::raw_connection stalled(sc.address());
  stalled.send("POST /v1/ingest/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"events\":[");
  // Kept: the daemon having read the partial request is not observable without another connection.
  std::this_thread::sleep_for(100ms);
  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_exit(5s) == 0);
  CHECK(sc.proc().output().find("shutdown_timeout reached") != std::string::npos);
  CHECK(sc.proc().output().find("50 buffered events moved to the disk spool") != std::string::npos);
  fake.refuse(false);
  sc.restart();
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 50; }, 5s));
  check_exactly(received_keys(fake), "term", 0, 50);
}

TEST_CASE("integrity: SIGTERM that cannot persist acknowledged events exits non-zero", "[pipeline][integrity]") {
  fake_ingest_process fake;
  fake.refuse(true);
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "server: { shutdown_timeout: 300ms }\n"
                                  "batch: { max_events: 100, flush_interval: 60s }\n"
                                  "buffer: { durability: memory, max_events: 100000, spool_dir: \"{dir}/spool\","
                                  " segment_bytes: 4KiB, spool_max_bytes: 4KiB }\n"),
                     sidecar_env());
  auto c = sc.client();
  for (int r = 0; r < 20; ++r) REQUIRE(c.post("/v1/ingest/batch", batch("lost", r * 50, r * 50 + 50)).status == 202);
  sc.proc().signal(SIGTERM);
  const auto code = sc.proc().wait_exit(5s);
  INFO(sc.proc().output());
  CHECK(code == 1);
  CHECK(sc.proc().output().find("could not all be persisted") != std::string::npos);
}
