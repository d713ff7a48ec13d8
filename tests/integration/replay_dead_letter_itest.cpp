// `aforo-sidecar replay-dead-letter`: a real sidecar dead-letters a batch ingest refused (400) and two
// events ingest failed one by one; once the faults are gone the real binary re-sends the file to the
// sidecar, and the fake ingest ends with every event exactly once. Also: no sidecar, --dry-run.
#include <algorithm>
#include <map>
#include <tuple>

#include "io/dead_letter.hpp"
#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;
using aforo::testkit::process;
using aforo::testkit::temp_dir;

namespace {

/// Runs `aforo-sidecar replay-dead-letter ARGS...` to its end; returns the exit code and the output.
std::pair<int, std::string> run_replay(const std::vector<std::string>& args) {
  std::vector<std::string> argv{aforo::testkit::sidecar_bin(), "replay-dead-letter"};
  argv.insert(argv.end(), args.begin(), args.end());
  process p(argv);
  const auto code = p.wait_exit(120s);
  INFO(p.output());
  REQUIRE(code);
  return {*code, p.output()};
}

std::string dl_line(const std::string& body, std::uint32_t events, const std::string& reason) {
  return aforo::io::dead_letter_file::format(
      {aforo::io::dead_letter_entry{body, events, 400, reason, "2026-12-06T10:00:00Z", "refused"}});
}

}  // namespace

TEST_CASE("replay-dead-letter: a refused batch and failed events are re-sent and reach ingest exactly once",
          "[replay]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 10, flush_interval: 50ms }\n"),
                     sidecar_env());
  // The first batch is refused as a whole, the second has events 1 and 3 failed.
  fake.set_faults(R"([{"status":400},{"fail_events":[1,3]}])");
  auto c = sc.client();
  REQUIRE(c.post("/v1/ingest/batch", batch("p", 0, 10)).status == 202);
  REQUIRE(sc.proc().wait_for_output("ERROR ingest refused a batch of 10 events with 400", 5s));
  REQUIRE(c.post("/v1/ingest/batch", batch("q", 0, 10)).status == 202);
  REQUIRE(sc.proc().wait_for_output("ingest refused 2 event(s) one by one", 5s));
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 8; }, 5s));

  const std::string dl = sc.dir().file("spool/dead-letter/dead-letter.jsonl");
  const auto text = aforo::testkit::read_file(dl);
  CHECK(text.find(R"("reason":"rejected_batch")") != std::string::npos);
  CHECK(text.find(R"("reason":"event_failed")") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);  // the batch, and each failed event

  // The cause is fixed: ingest takes everything now.
  fake.set_faults("[]");
  const auto [code, out] = run_replay({dl, "--sidecar-url", "http://" + sc.address()});
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("replay done: 3 lines read, 12 events posted, 12 accepted, 0 failed, 0 lines skipped") !=
        std::string::npos);

  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 20; }, 10s));
  // The sidecar has delivered the 8 and the 12 replayed: nothing of it is still on the way.
  REQUIRE(wait_until([&] { return metric(sc, "aforo_sidecar_events_delivered_total") == 20; }, 5s));
  std::map<std::string, int> seen;
  for (const auto& k : received_keys(fake)) ++seen[k];
  CHECK(seen.size() == 20);
  for (const char* prefix : {"p", "q"}) {
    for (int i = 0; i < 10; ++i) {
      INFO("key " << key(prefix, i));
      CHECK(seen[key(prefix, i)] == 1);
    }
  }
  CHECK(fake_stat(fake, "accepted") == 20);
  CHECK(fake_stat(fake, "duplicates") == 0);  // only the dead-lettered events were re-sent
}

TEST_CASE("replay-dead-letter: events the sidecar refuses are listed with their line and key, exit 1", "[replay]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 10, flush_interval: 50ms }\n"),
                     sidecar_env());
  temp_dir dir;
  std::string bad_event = event("bad-0");
  bad_event.replace(bad_event.find(R"("quantity":1)"), 12, R"("quantity":"one")");
  const auto file = dir.write("dl.jsonl", dl_line(batch("g", 0, 2), 2, "rejected_batch") + "not a dead-letter line\n" +
                                              dl_line(R"({"events":[)" + bad_event + "]}", 1, "event_failed"));
  const auto [code, out] = run_replay({file, "--sidecar-url", "http://" + sc.address() + "/"});
  INFO(out);
  CHECK(code == 1);
  CHECK(out.find("WARN line 2: skipped: not valid JSON") != std::string::npos);
  CHECK(out.find(R"(FAILED line 3 event 0 (idempotencyKey "bad-0"): )") != std::string::npos);
  CHECK(out.find("replay done: 3 lines read, 3 events posted, 2 accepted, 1 failed, 1 lines skipped") !=
        std::string::npos);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 2; }, 10s));
}

TEST_CASE("replay-dead-letter: no sidecar at the URL is a clear error, nothing is read further", "[replay]") {
  temp_dir dir;
  const auto file = dir.write("dl.jsonl", dl_line(batch("n", 0, 3), 3, "rejected_batch"));
  const std::string url = "http://127.0.0.1:" + std::to_string(aforo::testkit::free_port());
  const auto [code, out] = run_replay({file, "--sidecar-url", url});
  INFO(out);
  CHECK(code == 1);
  CHECK(out.find("no sidecar at " + url) != std::string::npos);
  CHECK(out.find("resume with --from-line 1") != std::string::npos);
  CHECK(out.find("replay stopped: 1 lines read, 0 events posted") != std::string::npos);
}

TEST_CASE("replay-dead-letter: --dry-run only reads the file and prints the counts", "[replay]") {
  temp_dir dir;
  const std::string good = dl_line(batch("d", 0, 1500), 1500, "too_large") + "\n" +  // a blank line is no problem
                           dl_line(batch("e", 0, 2), 2, "event_failed");
  const auto file = dir.write("dl.jsonl", good);
  // No sidecar at this URL: a dry run never connects.
  const std::string url = "http://127.0.0.1:" + std::to_string(aforo::testkit::free_port());
  auto [code, out] = run_replay({file, "--dry-run", "--sidecar-url", url});
  CHECK(code == 0);
  CHECK(out.find("dry run: 3 lines read, 1502 events to post in 2 request(s), 0 lines skipped") != std::string::npos);
  CHECK(out.find("no sidecar") == std::string::npos);

  const auto mixed = dir.write("mixed.jsonl", good + dl_line("\x04\x22raw", 5, "undecodable") + "{\"broken\":\n");
  std::tie(code, out) = run_replay({mixed, "--dry-run"});
  CHECK(code == 1);
  CHECK(out.find("WARN line 4: skipped: an undecodable spool record") != std::string::npos);
  CHECK(out.find("WARN line 5: skipped: not valid JSON") != std::string::npos);
  CHECK(out.find("dry run: 5 lines read, 1502 events to post in 2 request(s), 2 lines skipped") != std::string::npos);

  // --from-line starts later; a bad command line is 64.
  std::tie(code, out) = run_replay({file, "--dry-run", "--from-line", "3"});
  CHECK(code == 0);
  CHECK(out.find("dry run: 1 lines read, 2 events to post in 1 request(s)") != std::string::npos);
  std::tie(code, out) = run_replay({"--dry-run"});
  CHECK(code == 64);
  CHECK(out.find("FILE is missing") != std::string::npos);
}
