// The usage pipeline against the real aforo-fake-ingest: normal flow (exactly once, flush by count and
// by time, LZ4 frames), retry timing, Retry-After, 401 and poison 400.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "io/lz4_frame.hpp"
#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;
using aforo::testkit::temp_dir;

namespace {

// Arrival times of ingest requests, seen by polling the fake's request counter every few ms.
std::vector<std::chrono::steady_clock::time_point> arrivals(fake_ingest_process& fake, std::size_t n,
                                                            std::chrono::milliseconds timeout) {
  std::vector<std::chrono::steady_clock::time_point> at;
  std::uint64_t seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (at.size() < n && std::chrono::steady_clock::now() < deadline) {
    const auto now_seen = fake_stat(fake, "requests");
    const auto t = std::chrono::steady_clock::now();
    for (; seen < now_seen; ++seen) at.push_back(t);
    std::this_thread::sleep_for(3ms);  // sampling: when each request arrived is measured
  }
  return at;
}

long ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count());
}

// A one-shot HTTP server that keeps the first request body it gets and answers Aforo's 202.
class capture_server {
 public:
  capture_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 4);
    thread_ = std::thread([this] { serve(); });
  }
  ~capture_server() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/ingest/batch"; }
  bool done() const { return done_; }
  std::string head, body;

 private:
  void serve() {
    for (;;) {
      if (serve_one()) return;
    }
  }
  // One connection; true when done (a batch was captured, or the listener was closed).
  bool serve_one() {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return true;
    std::string in;
    char buf[65536];
    std::size_t need = std::string::npos;
    while (need == std::string::npos || in.size() < need) {
      const auto n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      const auto end = in.find("\r\n\r\n");
      if (need == std::string::npos && end != std::string::npos) {
        head = in.substr(0, end);
        std::string lower;
        for (char ch : head) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto cl = lower.find("content-length:");
        need = end + 4 + (cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 15)));
      }
    }
    if (need != std::string::npos && in.size() >= need) body = in.substr(head.size() + 4);
    std::string plain;  // the handshake's encoding check: the same empty batch as an LZ4 frame
    const bool lz4_check = head.find("Content-Encoding: lz4") != std::string::npos && body.size() < 256 &&
                           aforo::io::lz4_decompress_frame(body, plain, 256).ok && plain == R"({"events":[]})";
    if (body == R"({"events":[]})" || lz4_check) {  // the startup handshake's checks: not the batch we want
      const std::string no = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::write(c, no.data(), no.size());
      ::close(c);
      head.clear();
      body.clear();
      return false;
    }
    const std::string answer =
        R"({"success":true,"data":{"accepted":1,"duplicates":0,"failed":0,"errors":[]},"meta":{}})";
    const std::string res =
        "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(answer.size()) +
        "\r\nConnection: close\r\n\r\n" + answer;
    (void)!::write(c, res.data(), res.size());
    ::close(c);
    done_ = true;
    return true;
  }
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_{false};
};

}  // namespace

/// The nice values of a process's threads (/proc/PID/task/TID/stat, field 19).
std::vector<int> thread_nices(pid_t pid) {
  std::vector<int> out;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    const auto stat = aforo::testkit::read_file(t.path().string() + "/stat");
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {
      if (i == 19) out.push_back(std::stoi(field));
    }
  }
  return out;
}

TEST_CASE("pipeline: every accepted event reaches ingest exactly once, in LZ4 batches cut by count and by time",
          "[pipeline]") {
  // Parsing and compression on the ingest thread (the default), or on the io thread.
  const bool threaded = GENERATE(true, false);
  INFO("server.ingest_thread " << threaded);
  fake_ingest_process fake;
  sidecar_process sc(
      sidecar_yaml(fake.ingest_url(),
                   std::string("batch: { max_events: 50, backlog_events: 50, flush_interval: 400ms }\n") +
                       (threaded ? "" : "server: { ingest_thread: false }\n")),
      sidecar_env());
  // The ingest thread runs at server.ingest_thread_nice (15); without it every thread is at the daemon's 0.
  const auto niced = [&] {
    const auto nices = thread_nices(sc.proc().pid());
    return std::count(nices.begin(), nices.end(), 15);
  };
  CHECK(wait_until([&] { return niced() == (threaded ? 1 : 0); }, 2s));
  auto c = sc.client();
  for (int r = 0; r < 10; ++r) {
    const auto res = c.post("/v1/ingest/batch", batch("n", r * 25, r * 25 + 25));
    REQUIRE(res.status == 202);
    CHECK(res.body == R"({"accepted":25,"failed":0,"errors":[]})");
  }
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 250; }, 10s));
  check_exactly(received_keys(fake), "n", 0, 250);
  auto recv = fake.received();
  std::size_t full_batches = 0;
  for (const auto& r : recv["requests"].GetArray()) {
    CHECK(r["status"].GetUint() == 202);
    CHECK(std::string(r["content_encoding"].GetString()) == "lz4");
    CHECK(std::string(r["content_type"].GetString()) == "application/json");
    CHECK(std::string(r["api_key"].GetString()) == "match");
    CHECK(std::string(r["tenant"].GetString()) == tenant);
    CHECK(std::string(r["user_agent"].GetString()).rfind("aforo-sidecar/", 0) == 0);
    CHECK(r["raw_bytes"].GetUint64() < r["decoded_bytes"].GetUint64());
    if (r["events"].GetUint() == 50) ++full_batches;
    CHECK(r["events"].GetUint() <= 50);
  }
  CHECK(full_batches >= 4);  // flushed by count: batches of max_events
  // Kept-alive connections carried the batches (concurrent delivery opens one per request in flight).
  CHECK(fake_stat(fake, "connections") < fake_stat(fake, "requests"));

  // Flush by time: 3 events wait for flush_interval, then go alone.
  const auto before = fake_stat(fake, "requests");
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c.post("/v1/ingest/batch", batch("t", 0, 3)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 253; }, 5s));
  const auto waited = ms_between(t0, std::chrono::steady_clock::now());
  CHECK(waited >= 350);
  CHECK(fake_stat(fake, "requests") == before + 1);
  // The fake counts a batch before it answers: the sidecar's count follows once it has the answer.
  CHECK(wait_until([&] { return metric(sc, "aforo_sidecar_events_delivered_total") == 253; }, 5s));
  CHECK(metric(sc, "aforo_sidecar_events_accepted_total") == 253);
  CHECK(metric(sc, "aforo_sidecar_spool_events") == 0);
  CHECK(metric(sc, "aforo_sidecar_batch_bytes_compressed_total") < metric(sc, "aforo_sidecar_batch_bytes_raw_total"));
  CHECK(metric(sc, "aforo_sidecar_ingest_requests_total{status=\"202\"}") >= 6);
  CHECK(sc.client().get("/v1/handshake").body.find(R"("ingest":"ok")") != std::string::npos);
}

TEST_CASE("pipeline: while behind, batches grow to backlog_events, keeping up, they stay at max_events", "[pipeline]") {
  fake_ingest_process fake;
  fake.refuse(true);
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 100, backlog_events: 400, flush_interval: 50ms }\n"
                                  "retry: { backoff: [100ms], jitter: 0% }\n"),
                     sidecar_env());
  auto c = sc.client();
  for (int r = 0; r < 50; ++r) REQUIRE(c.post("/v1/ingest/batch", batch("bl", r * 20, r * 20 + 20)).status == 202);
  REQUIRE(sc.proc().wait_for_output("ingest unreachable", 5s));
  fake.refuse(false);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 1000; }, 10s));
  check_exactly(received_keys(fake), "bl", 0, 1000);
  auto recv = fake.received();
  std::uint64_t largest = 0;
  for (const auto& r : recv["requests"].GetArray()) largest = std::max<std::uint64_t>(largest, r["events"].GetUint64());
  CHECK(largest == 400);                    // the backlog went out 400 at a time
  CHECK(fake_stat(fake, "requests") <= 4);  // 1000 events: 400 + 400 + 200
  // Caught up: a new request waits for max_events (or the flush interval) and goes alone.
  const auto before = fake_stat(fake, "requests");
  for (int r = 0; r < 3; ++r) REQUIRE(c.post("/v1/ingest/batch", batch("st", r * 20, r * 20 + 20)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 1060; }, 5s));
  CHECK(fake_stat(fake, "requests") == before + 1);
}

TEST_CASE("pipeline: a batch body is a valid LZ4 frame for the lz4 command-line tool", "[pipeline]") {
  capture_server cap;
  sidecar_process sc(sidecar_yaml(cap.url(), "batch: { max_events: 5, flush_interval: 100ms }\n"), sidecar_env());
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("z", 0, 5)).status == 202);
  REQUIRE(wait_until([&] { return cap.done(); }, 5s));
  CHECK(cap.head.find("Content-Encoding: lz4") != std::string::npos);
  temp_dir tmp;
  const auto in = tmp.write("body.lz4", cap.body);
  const auto out = tmp.file("body.json");
  REQUIRE(std::system(("lz4 -d -q -f " + in + " " + out).c_str()) == 0);
  CHECK(aforo::testkit::read_file(out) == batch("z", 0, 5));
}

TEST_CASE("pipeline: compression none sends plain JSON", "[pipeline]") {
  fake_ingest_process fake;
  sidecar_process sc(
      sidecar_yaml(fake.ingest_url(), "batch: { max_events: 10, flush_interval: 100ms, compression: none }\n"),
      sidecar_env());
  REQUIRE(sc.client().post("/v1/ingest", event("single-1")).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 1; }, 5s));
  auto recv = fake.received();
  CHECK(std::string(recv["requests"][0]["content_encoding"].GetString()).empty());
}

TEST_CASE("pipeline: retries follow the configured backoff and Retry-After is honoured", "[pipeline]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 10, flush_interval: 50ms }\n"
                                  "retry: { backoff: [200ms, 400ms, 800ms], jitter: 0% }\n"),
                     sidecar_env());
  SECTION("5xx: 200 ms, 400 ms, 800 ms, then delivered") {
    fake.set_faults(R"([{"status":503,"times":3}])");
    REQUIRE(sc.client().post("/v1/ingest/batch", batch("r", 0, 10)).status == 202);
    const auto at = arrivals(fake, 4, 10s);
    REQUIRE(at.size() == 4);
    const long expected[] = {200, 400, 800};
    for (int i = 0; i < 3; ++i) {
      INFO("gap " << i);
      CHECK(ms_between(at[i], at[i + 1]) >= expected[i] - 30);
      CHECK(ms_between(at[i], at[i + 1]) <= expected[i] + 300);
    }
    REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 10; }, 5s));
    CHECK(metric(sc, "aforo_sidecar_delivery_retries_total") == 3);
    CHECK(metric(sc, "aforo_sidecar_ingest_requests_total{status=\"503\"}") == 3);
  }
  SECTION("429 with Retry-After: 1 waits a second, not the 200 ms backoff") {
    fake.set_faults(R"([{"status":429,"retry_after":1}])");
    REQUIRE(sc.client().post("/v1/ingest/batch", batch("ra", 0, 10)).status == 202);
    const auto at = arrivals(fake, 2, 10s);
    REQUIRE(at.size() == 2);
    CHECK(ms_between(at[0], at[1]) >= 970);
    CHECK(ms_between(at[0], at[1]) <= 1500);
    REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 10; }, 5s));
  }
}

TEST_CASE("pipeline: 401 keeps the events, logs the key error and re-probes", "[pipeline]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 10, flush_interval: 50ms }\n"
                                  "retry: { backoff: [100ms], unauthorized_probe: 1s }\n"
                                  "buffer: { durability: memory, spool_dir: \"{dir}/spool\" }\n"),
                     sidecar_env());
  fake.set_faults(R"([{"status":401,"times":2}])");
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("k", 0, 10)).status == 202);
  REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] ERROR invalid API key (401)", 5s));
  CHECK(sc.client().get("/v1/handshake").body.find(R"("ingest":"unauthorized")") != std::string::npos);
  // The events wait in the spool, not on the floor.
  CHECK(metric(sc, "aforo_sidecar_spool_events") == 10);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 10; }, 6s));
  check_exactly(received_keys(fake), "k", 0, 10);
  CHECK(metric(sc, "aforo_sidecar_ingest_requests_total{status=\"401\"}") == 2);
  CHECK(sc.client().get("/v1/handshake").body.find(R"("ingest":"ok")") != std::string::npos);
  CHECK(metric(sc, "aforo_sidecar_spool_events") == 0);
}

TEST_CASE("pipeline: a batch refused with 400 is dead-lettered once and the next batch flows", "[pipeline]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 10, flush_interval: 50ms }\n"),
                     sidecar_env());
  fake.set_faults(R"([{"status":400}])");
  auto c = sc.client();
  REQUIRE(c.post("/v1/ingest/batch", batch("p", 0, 10)).status == 202);
  REQUIRE(sc.proc().wait_for_output("ERROR ingest refused a batch of 10 events with 400", 5s));
  REQUIRE(c.post("/v1/ingest/batch", batch("q", 0, 10)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 10; }, 5s));
  check_exactly(received_keys(fake), "q", 0, 10);
  CHECK(metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"rejected_batch\"}") == 10);
  const auto dl = aforo::testkit::read_file(sc.dir().file("spool/dead-letter/dead-letter.jsonl"));
  CHECK(dl.find(R"("status":400)") != std::string::npos);
  for (int i = 0; i < 10; ++i) CHECK(dl.find("\"" + key("p", i) + "\"") != std::string::npos);
  CHECK(fake_stat(fake, "requests") == 2);  // never resent
}

TEST_CASE("pipeline: per-event failures in the 202 envelope are counted, not retried", "[pipeline]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch: { max_events: 10, flush_interval: 50ms }\n"),
                     sidecar_env());
  fake.set_faults(R"([{"fail_events":[1,3]}])");
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("f", 0, 10)).status == 202);
  REQUIRE(wait_until([&] { return metric(sc, "aforo_sidecar_events_ingest_failed_total") == 2; }, 5s));
  CHECK(metric(sc, "aforo_sidecar_events_delivered_total") == 8);
  REQUIRE(sc.proc().wait_for_output("ingest refused 2 event(s) one by one", 2s));
  std::this_thread::sleep_for(300ms);  // kept: no resend during 300 ms (six flush intervals) is the subject
  CHECK(fake_stat(fake, "requests") == 1);
}

namespace {
// CPU time (user + system) of a process in clock ticks, from /proc.
long cpu_ticks(pid_t pid) {
  const auto stat = aforo::testkit::read_file("/proc/" + std::to_string(pid) + "/stat");
  std::size_t p = stat.rfind(')');
  std::istringstream in(stat.substr(p + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) in >> skip;  // fields 3..13
  long utime = 0, stime = 0;
  in >> utime >> stime;
  return utime + stime;
}
}  // namespace

TEST_CASE("pipeline: after the retries are exhausted the batch waits in the spool and is sent again later",
          "[pipeline]") {
  const bool memory = GENERATE(false, true);
  INFO("durability " << (memory ? "memory" : "disk"));
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 10, flush_interval: 50ms }\n"
                                  "retry: { max_retries: 3, backoff: [100ms], jitter: 0% }\n"
                                  "buffer: { spool_dir: \"{dir}/spool\", durability: " +
                                      std::string(memory ? "memory" : "disk") + " }\n"),
                     sidecar_env());
  fake.set_faults(R"([{"status":503,"times":6}])");
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("e", 0, 10)).status == 202);
  // 1 send + 3 retries, a wait in the spool, then the next round: 2 more failures and a success.
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 10; }, 5s));
  CHECK(fake_stat(fake, "requests") == 7);
  CHECK(metric(sc, "aforo_sidecar_spool_events") == 0);
  // Idle afterwards: no timer spins.
  const long before = cpu_ticks(sc.proc().pid());
  std::this_thread::sleep_for(1s);
  CHECK(cpu_ticks(sc.proc().pid()) - before < 10);
}

TEST_CASE("pipeline: a slow ingest times out, logs the timeout once, and the resend carries the same keys",
          "[pipeline]") {
  fake_ingest_process fake;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch: { max_events: 10, flush_interval: 50ms }\n"
                                  "retry: { timeout: 300ms, backoff: [100ms], jitter: 0% }\n"),
                     sidecar_env());
  fake.set_faults(R"([{"delay_ms":1500,"times":2}])");
  REQUIRE(sc.client().post("/v1/ingest/batch", batch("to", 0, 10)).status == 202);
  REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] ERROR network timeout to 127.0.0.1", 5s));
  CHECK(sc.client().get("/v1/handshake").body.find(R"("ingest":"unreachable")") != std::string::npos);
  REQUIRE(wait_until([&] { return metric(sc, "aforo_sidecar_events_delivered_total") == 10; }, 5s));
  // The fake took the first (timed-out) request on arrival: the resends were duplicates by key.
  CHECK(fake_stat(fake, "accepted") == 10);
  CHECK(fake_stat(fake, "duplicates") == 20);
  check_exactly(received_keys(fake), "to", 0, 10);
  CHECK(metric(sc, "aforo_sidecar_ingest_requests_total{status=\"timeout\"}") == 2);
  const auto out = sc.proc().output();
  const std::string line = "ERROR network timeout to 127.0.0.1";
  CHECK(out.find(line) == out.rfind(line));  // once per state change, not once per attempt
  REQUIRE(sc.proc().wait_for_output("ingest recovered", 1s));
}
