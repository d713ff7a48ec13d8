// Operations: systemd notifications (READY/RELOADING/STOPPING/WATCHDOG over $NOTIFY_SOCKET) and the
// /metrics exposition checked by promtool, with the real aforo-sidecar binary.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {

/// The service manager's end of the sd_notify protocol: a bound unix datagram socket.
class notify_listener {
 public:
  /// `abstract`: bind in the abstract namespace ("@name" in $NOTIFY_SOCKET) instead of a path.
  notify_listener(const temp_dir& dir, bool abstract = false) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    name_ = abstract ? "@aforo-notify-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++)
                     : dir.file("notify.sock");
    std::memcpy(addr.sun_path, name_.data(), name_.size());
    if (abstract) addr.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) throw std::runtime_error("bind failed");
  }
  ~notify_listener() { ::close(fd_); }
  notify_listener(const notify_listener&) = delete;
  notify_listener& operator=(const notify_listener&) = delete;

  [[nodiscard]] std::string env() const { return "NOTIFY_SOCKET=" + name_; }

  /// The next datagram, or nullopt after `timeout`.
  std::optional<std::string> next(millis timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

  /// Datagrams until one holds `needle` as a line; returns it (nullopt on timeout). Skipped ones go to `seen`.
  std::optional<std::string> wait_for(std::string_view needle, millis timeout,
                                      std::vector<std::string>* seen = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<millis>(deadline - std::chrono::steady_clock::now());
      auto msg = next(left);
      if (!msg) return std::nullopt;
      if (has_line(*msg, needle)) return msg;
      if (seen) seen->push_back(*msg);
    }
    return std::nullopt;
  }

  static bool has_line(const std::string& msg, std::string_view line) {
    std::size_t pos = 0;
    while (pos <= msg.size()) {
      const auto end = std::min(msg.find('\n', pos), msg.size());
      if (std::string_view(msg).substr(pos, end - pos) == line) return true;
      pos = end + 1;
    }
    return false;
  }

 private:
  int fd_ = -1;
  std::string name_;
  static inline int counter_ = 0;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs `promtool check metrics` on a file; returns its exit code and output.
std::pair<int, std::string> promtool_check(const std::string& file) {
  process p({"/bin/sh", "-c",
             "command -v promtool >/dev/null || { echo 'promtool not found (Debian package "
             "prometheus; scripts/install-deps.sh)'; exit 127; }; promtool check metrics < " +
                 shell_quote(file)});
  const auto code = p.wait_exit(30s);
  return {code.value_or(-1), p.output()};
}

}  // namespace

TEST_CASE("ops: READY=1 is sent once the listeners accept, STOPPING=1 when SIGTERM arrives", "[ops][systemd]") {
  temp_dir dir;
  notify_listener nl(dir);
  sidecar_process sc("", {nl.env()});

  std::vector<std::string> before;
  const auto ready = nl.wait_for("READY=1", 10s, &before);
  REQUIRE(ready);
  // Nothing claimed readiness or stopping earlier, and the listener named in STATUS already answers.
  for (const auto& m : before) CHECK_FALSE(notify_listener::has_line(m, "STOPPING=1"));
  CHECK(notify_listener::has_line(*ready, "STATUS=serving on " + sc.address()));
  CHECK(sc.client().get("/healthz").status == 200);
  CHECK_FALSE(nl.next(300ms));  // no watchdog pings without WATCHDOG_USEC, no second READY

  sc.proc().signal(SIGTERM);
  REQUIRE(nl.wait_for("STOPPING=1", 10s));
  CHECK(sc.proc().wait_exit(15s) == 0);
}

TEST_CASE("ops: SIGHUP is bracketed by RELOADING=1 and READY=1", "[ops][systemd]") {
  temp_dir dir;
  notify_listener nl(dir);
  sidecar_process sc("log: { level: info }\n", {nl.env()});
  REQUIRE(nl.wait_for("READY=1", 10s));

  sc.proc().signal(SIGHUP);
  const auto reloading = nl.wait_for("RELOADING=1", 10s);
  REQUIRE(reloading);
  CHECK(reloading->find("MONOTONIC_USEC=") != std::string::npos);
  REQUIRE(nl.wait_for("READY=1", 10s));
  CHECK(sc.client().get("/healthz").status == 200);
}

TEST_CASE("ops: WATCHDOG_USEC makes the daemon ping twice per interval, unless WATCHDOG_PID names another process",
          "[ops][systemd]") {
  temp_dir dir;
  SECTION("pings arrive from the event loop") {
    notify_listener nl(dir, /*abstract=*/true);
    sidecar_process sc("", {nl.env(), "WATCHDOG_USEC=200000"});
    REQUIRE(nl.wait_for("READY=1", 10s));
    int pings = 0;
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < 1s) {
      if (auto m = nl.next(500ms); m && notify_listener::has_line(*m, "WATCHDOG=1")) ++pings;
    }
    CHECK(pings >= 4);  // every 100 ms over one second (10); a stalled timer would send one or none
  }
  SECTION("WATCHDOG_PID naming another process disables the pings") {
    notify_listener nl(dir);
    sidecar_process sc("", {nl.env(), "WATCHDOG_USEC=200000", "WATCHDOG_PID=1"});
    REQUIRE(nl.wait_for("READY=1", 10s));
    CHECK_FALSE(nl.wait_for("WATCHDOG=1", 700ms));
  }
}

TEST_CASE("ops: /metrics passes promtool check metrics after traffic, with every capability configured",
          "[ops][metrics]") {
  // Redis, the margin guard and discovery are on (their peers are down, which registers their
  // degraded-mode series too); ingest is unreachable, so delivery retries and spills.
  const std::string all_on =
      "cache: { redis: \"redis://127.0.0.1:9/0\" }\n"
      "margin_guard: { config: \"{source}/config/guards.example.yaml\" }\n"
      "discovery: { enabled: true, kong_admin_url: \"http://127.0.0.1:9\", state_dir: \"{dir}/state\" }\n";
  const bool every_capability = GENERATE(false, true);
  sidecar_process sc(every_capability ? all_on : "",
                     {"AFORO_API_KEY=test-key-0001", "AFORO_WEBHOOK_SECRET=whsec-test"});
  auto c = sc.client();
  const std::vector<std::pair<std::string, std::string>> json{{"Content-Type", "application/json"}};
  c.get("/healthz");
  c.get("/readyz");
  c.get("/v1/handshake");
  c.get("/v1/catalog");
  c.get("/no/such/path");
  c.post("/healthz", "{}");
  c.post("/v1/check", R"({"customer_id":"cust_acme","method":"GET","path":"/v1/search"})", json);
  c.post("/v1/check", R"({"customer_id":"cust_nobody","method":"GET","path":"/v1/search"})", json);
  c.post("/v1/check", "not json", json);
  c.post("/v1/ingest/batch",
         R"({"events":[{"customerId":"cust_acme","metricName":"api_calls","quantity":1,)"
         R"("occurredAt":"2026-11-26T06:00:00Z","idempotencyKey":"ops-itest-1"},{"customerId":""}]})",
         json);
  raw_exchange(sc.address(), "garbage\r\n\r\n");

  const auto r = c.get("/metrics");
  REQUIRE(r.status == 200);
  REQUIRE(r.body.find("# TYPE aforo_sidecar_") != std::string::npos);
  const auto path = sc.dir().write("metrics.txt", r.body);
  const auto [code, out] = promtool_check(path);
  INFO("promtool check metrics:\n" << out << "\nexposition:\n" << r.body);
  CHECK(code == 0);

  // The check can fail: the same exposition with an unescaped quote in a label value is refused.
  const auto broken = sc.dir().write("broken.txt", r.body + "aforo_sidecar_broken_total{x=\"a\"b\"} 1\n");
  CHECK(promtool_check(broken).first != 0);
}
