// Soak load generator (scripts/soak.sh): a bounded, paced request loop over keep-alive connections that
// counts every response by status exactly, so the soak can compare them with what the ingest received.
//
// Usage: aforo-soak-loadgen --target HOST:PORT [--path /v1/search/items] [--tenant cust_acme]
//                           [--connections 4] [--rate 200] [--stop-file PATH] [--duration SECONDS] [--churn]
// --churn: every request on a new connection, closed after its answer, to --path exactly (connection
// churn, e.g. the sidecar's /healthz); without it the connections are kept alive and the path gets a
// /N suffix.
// Runs until --duration passes or --stop-file exists (whichever first; at least one must be given),
// lets every in-flight request finish, then prints one JSON line:
//   {"requests":N,"by_status":{"200":N,...},"errors":N,"max_latency_ms":N}
// "errors" are exchanges without a status (connect refused, reset, timeout): whether nginx logged them
// is unknown, so the soak reports them separately.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/testkit.hpp"

namespace {

using namespace aforo::testkit;
using steady = std::chrono::steady_clock;

struct options {
  std::string target;
  std::string path = "/v1/search/items";
  std::string tenant = "cust_acme";
  int connections = 4;
  double rate = 200;  ///< requests per second over all connections
  std::string stop_file;
  double duration_s = 0;
  bool churn = false;  ///< a new connection per request
};

struct totals {
  std::mutex mu;
  std::map<int, std::uint64_t> by_status;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::int64_t max_latency_ms = 0;
  std::string last_error;
};

bool file_exists(const std::string& p) {
  struct stat st {};
  return !p.empty() && ::stat(p.c_str(), &st) == 0;
}

void worker(const options& o, int id, std::atomic<bool>& stop, totals& t) {
  std::optional<http_client> client;
  client.emplace(o.target, 10s);
  const auto interval = std::chrono::duration<double>(o.connections / o.rate);
  auto next = steady::now();
  std::uint64_t n = 0;
  std::map<int, std::uint64_t> mine;
  std::uint64_t errors = 0;
  std::int64_t max_ms = 0;
  std::string last_error;
  while (!stop.load(std::memory_order_relaxed)) {
    const std::string rid = "soak-" + std::to_string(id) + "-" + std::to_string(n++);
    const auto t0 = steady::now();
    if (o.churn) client.emplace(o.target, 10s);  // the previous connection closes here
    const auto r = client->request("GET", o.churn ? o.path : o.path + "/" + std::to_string(n % 1000), {},
                                   {{"X-Tenant-Id", o.tenant}, {"X-Request-Id", rid}});
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
    if (ms > max_ms) max_ms = ms;
    if (r.status == 0) {
      ++errors;
      last_error = r.error;
      client.emplace(o.target, 10s);  // start over on a fresh connection
    } else {
      ++mine[r.status];
    }
    next += std::chrono::duration_cast<steady::duration>(interval);
    const auto now = steady::now();
    if (next < now - 1s) next = now;  // fell behind (an outage): do not burst to catch up
    std::this_thread::sleep_until(next);
  }
  std::lock_guard lock(t.mu);
  for (const auto& [s, c] : mine) {
    t.by_status[s] += c;
    t.requests += c;
  }
  t.errors += errors;
  t.requests += errors;
  if (max_ms > t.max_latency_ms) t.max_latency_ms = max_ms;
  if (!last_error.empty()) t.last_error = last_error;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "missing value for " << a << "\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--target")
      o.target = value();
    else if (a == "--path")
      o.path = value();
    else if (a == "--tenant")
      o.tenant = value();
    else if (a == "--connections")
      o.connections = std::atoi(value().c_str());
    else if (a == "--rate")
      o.rate = std::atof(value().c_str());
    else if (a == "--stop-file")
      o.stop_file = value();
    else if (a == "--duration")
      o.duration_s = std::atof(value().c_str());
    else if (a == "--churn")
      o.churn = true;
    else {
      std::cerr << "usage: aforo-soak-loadgen --target HOST:PORT [--path P] [--tenant T] [--connections N]\n"
                   "                          [--rate R] [--stop-file PATH] [--duration SECONDS] [--churn]\n";
      return 2;
    }
  }
  if (o.target.empty() || o.connections < 1 || o.rate <= 0 || (o.stop_file.empty() && o.duration_s <= 0)) {
    std::cerr << "aforo-soak-loadgen: --target, a positive --connections and --rate, and --stop-file or "
                 "--duration are required\n";
    return 2;
  }

  std::atomic<bool> stop{false};
  totals t;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.connections; ++i) threads.emplace_back(worker, std::cref(o), i, std::ref(stop), std::ref(t));
  const auto start = steady::now();
  while (true) {
    std::this_thread::sleep_for(100ms);
    if (file_exists(o.stop_file)) break;
    if (o.duration_s > 0 && steady::now() - start >= std::chrono::duration<double>(o.duration_s)) break;
  }
  stop = true;
  for (auto& th : threads) th.join();

  std::cout << R"({"requests":)" << t.requests << R"(,"by_status":{)";
  bool first = true;
  for (const auto& [s, c] : t.by_status) {
    std::cout << (first ? "" : ",") << '"' << s << R"(":)" << c;
    first = false;
  }
  std::cout << R"(},"errors":)" << t.errors << R"(,"max_latency_ms":)" << t.max_latency_ms << "}\n";
  if (!t.last_error.empty()) std::cerr << "aforo-soak-loadgen: last error: " << t.last_error << "\n";
  return 0;
}
