// Quota reservations (cache.quota_mode reserve, the default with cache.redis) with a real
// redis-server and real sidecar processes: exactly the limit across 2 and 8 sidecars, a sidecar
// killed mid-burst, Redis down and back, a restarted sidecar.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <regex>
#include <thread>

#include "core/entitlements/period.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/quota_reservations.hpp"
#include "core/entitlements/redis_keys.hpp"
#include "io/redis/redis_client.hpp"
#include "support/testkit.hpp"

using namespace aforo::testkit;
namespace asio = boost::asio;
namespace io = aforo::io;
namespace ce = aforo::core::entitlements;

namespace {

std::string snapshot_with_limit(int limit) {
  return "version: \"1\"\ncustomers:\n  cust_a:\n    plan: pro\n    status: active\n    features:\n      api: { limit: " +
         std::to_string(limit) + ", period: month }\n";
}

std::string yaml(const temp_dir& dir, const redis_server& r, int limit, const std::string& extra_cache = "") {
  return "entitlements: { source: \"file:" + dir.write("snapshot.yaml", snapshot_with_limit(limit)) +
         "\", lease_requests: 0 }\ncache:\n  redis: \"" + r.url() +
         "\"\n  sync_interval: 50ms\n  redis_timeout: 200ms\n" + extra_cache;
}

// The fields of cust_a's reservation hash this month (u:, h:, e:, s: per sidecar instance).
std::map<std::string, std::int64_t> reservation_fields(const redis_server& server) {
  asio::io_context ioc;
  std::string err;
  io::redis_client_options o;
  o.endpoint = *io::parse_redis_url(server.url(), err);
  io::redis_client client(ioc, o);
  client.start();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!client.connected() && std::chrono::steady_clock::now() < deadline) ioc.run_for(2ms);
  REQUIRE(client.connected());
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string key;
  ce::quota_counters::make_key(key, "cust_a", "api", ce::period_of(ce::period_kind::month, now).key());
  std::optional<io::redis_result> out;
  client.command({"HGETALL", ce::redis_keys("").counter(ce::redis_keys::reservation_set, key)},
                 [&](io::redis_result r) { out = std::move(r); });
  while (!out && std::chrono::steady_clock::now() < deadline) ioc.run_for(2ms);
  REQUIRE(out);
  std::map<std::string, std::int64_t> f;
  for (std::size_t i = 0; i + 1 < out->reply.elements.size(); i += 2) {
    f[out->reply.elements[i].str] = std::stoll(out->reply.elements[i + 1].str);
  }
  return f;
}

// Consumed by the cluster as Redis knows it: every u: and s: field.
std::int64_t redis_used(const redis_server& server) {
  std::int64_t used = 0;
  for (const auto& [k, v] : reservation_fields(server))
    used += (k.rfind("u:", 0) == 0 || k.rfind("s:", 0) == 0) ? v : 0;
  return used;
}

struct tally {
  std::atomic<int> allowed{0}, denied{0}, errors{0};
};

// One check: counts it, and returns remaining_quota (-1 when absent or an error).
std::int64_t check_once(http_client& c, tally& t) {
  const auto r = c.post("/v1/check", R"({"customer_id":"cust_a","feature":"api","quantity":1})");
  if (r.status != 200) {
    ++t.errors;
    return -1;
  }
  if (r.body.find(R"("allowed":true)") != std::string::npos)
    ++t.allowed;
  else if (r.body.find(R"("status":429)") != std::string::npos)
    ++t.denied;
  else
    ++t.errors;
  static const std::regex rem(R"("remaining_quota":(\d+))");
  std::smatch m;
  return std::regex_search(r.body, m, rem) ? std::stoll(m[1].str()) : -1;
}

// `rounds` rounds of one check on each sidecar in turn, as fast as the client sends them; checks
// that X-RateLimit-Remaining never goes up on one sidecar.
void alternate(std::vector<std::unique_ptr<sidecar_process>>& scs, int rounds, tally& t) {
  std::vector<http_client> clients;
  for (auto& s : scs) clients.push_back(s->client());
  std::vector<std::int64_t> last(scs.size(), -1);
  for (int i = 0; i < rounds; ++i) {
    for (std::size_t k = 0; k < clients.size(); ++k) {
      const auto rem = check_once(clients[k], t);
      if (rem >= 0 && last[k] >= 0) REQUIRE(rem <= last[k]);
      if (rem >= 0) last[k] = rem;
    }
  }
}

// Checks of cust_a's api (quantity 1, counted in t) until one is answered with a lease: its size.
// "lease_unused": a client that reports what its leases leave unadmitted (as the plugin does). With
// id_prefix, check i carries report_id id_prefix + i, and *leased_id is the one answered with the lease.
std::int64_t checks_until_lease(http_client& c, tally& t, const std::string& id_prefix = "",
                                std::string* leased_id = nullptr) {
  static const std::regex lease_re(R"("lease":\{"requests":(\d+))");
  for (int i = 0; i < 600; ++i) {
    const std::string id = id_prefix.empty() ? "" : id_prefix + std::to_string(i);
    const auto r = c.post("/v1/check", R"({"customer_id":"cust_a","feature":"api","quantity":1,"lease_unused":0)" +
                                           (id.empty() ? std::string() : R"(,"report_id":")" + id + "\"") + "}");
    REQUIRE(r.status == 200);
    if (r.body.find(R"("allowed":true)") != std::string::npos) ++t.allowed;
    std::smatch m;
    if (std::regex_search(r.body, m, lease_re)) {
      if (leased_id != nullptr) *leased_id = id;
      return std::stoll(m[1].str());
    }
  }
  return 0;
}

std::vector<std::unique_ptr<sidecar_process>> start_sidecars(int n, const std::string& config) {
  std::vector<std::unique_ptr<sidecar_process>> v;
  for (int i = 0; i < n; ++i) v.push_back(std::make_unique<sidecar_process>(config));
  for (auto& s : v) REQUIRE(wait_redis_connected(*s));
  return v;
}

}  // namespace

TEST_CASE("quota reservations: 2 sidecars, limit 100, 300 checks alternating admit exactly 100",
          "[redis][sidecars][reservations]") {
  redis_server server(free_port());
  temp_dir dir;
  auto scs = start_sidecars(2, yaml(dir, server, 100));
  tally t;
  alternate(scs, 150, t);
  CHECK(t.errors == 0);
  CHECK(t.allowed == 100);
  CHECK(t.denied == 200);
  CHECK(wait_until([&] { return redis_used(server) == 100; }, 5s));  // once the sidecars have reported
  CHECK(scs[0]->metric("aforo_sidecar_quota_reservation_waits_total") > 0);
}

TEST_CASE("quota reservations: concurrent clients on 2 sidecars, limit 1000, admit exactly 1000",
          "[redis][sidecars][reservations]") {
  redis_server server(free_port());
  temp_dir dir;
  auto scs = start_sidecars(2, yaml(dir, server, 1000));
  tally t;
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      auto c = scs[static_cast<std::size_t>(th % 2)]->client();
      for (int i = 0; i < 400; ++i) check_once(c, t);
    });
  }
  for (auto& th : threads) th.join();
  CHECK(t.errors == 0);
  CHECK(t.allowed == 1000);
  CHECK(t.denied == 600);
}

TEST_CASE("quota reservations: 8 sidecars, limit 100, 800 checks round-robin admit exactly 100",
          "[redis][sidecars][reservations]") {
  redis_server server(free_port());
  temp_dir dir;
  auto scs = start_sidecars(8, yaml(dir, server, 100));
  tally t;
  alternate(scs, 100, t);
  CHECK(t.errors == 0);
  CHECK(t.allowed == 100);
  CHECK(t.denied == 700);
}

TEST_CASE(
    "quota reservations: a sidecar killed mid-burst never over-admits, and after the TTL its unused units "
    "return (under by at most quota_unreported)",
    "[redis][sidecars][reservations]") {
  redis_server server(free_port());
  temp_dir dir;
  auto scs = start_sidecars(
      2, yaml(dir, server, 2000, "  quota_max_chunk: 50\n  quota_chunk_ttl: 2s\n  quota_unreported: 10\n"));
  tally t, on_b;
  alternate(scs, 100, t);  // chunks are held on both
  REQUIRE(t.allowed == 200);
  // A burst on both; b is killed in the middle of it.
  std::atomic<bool> stop{false};
  std::thread burst_b([&] {
    auto b = scs[1]->client();
    while (!stop) check_once(b, on_b);
  });
  auto a = scs[0]->client();
  for (int i = 0; i < 300; ++i) check_once(a, t);
  scs[1]->proc().signal(SIGKILL);
  REQUIRE(scs[1]->proc().wait_exit(5s));
  stop = true;
  burst_b.join();
  t.allowed += on_b.allowed;  // b's answers that reached the client (b may have admitted one more)
  t.denied += on_b.denied;
  REQUIRE(on_b.allowed > 0);
  for (int i = 0; i < 2000; ++i) check_once(a, t);
  INFO("allowed " << t.allowed);
  CHECK(t.errors == 0);
  CHECK(t.allowed <= 2000);
  CHECK(t.allowed >= 2000 - 50);  // until the TTL: what the dead sidecar holds, at most one chunk
  // b's fields: its hold's expiry is the older one (a's calls refresh a's).
  auto f = reservation_fields(server);
  std::string dead;
  std::int64_t oldest = INT64_MAX;
  for (const auto& [k, v] : f) {
    if (k.rfind("e:", 0) == 0 && v < oldest) oldest = v, dead = k.substr(2);
  }
  REQUIRE_FALSE(dead.empty());
  const std::int64_t dead_held = f["h:" + dead], bound = f["r:" + dead];
  // After the TTL its hold is settled as what it may have admitted unseen (its bound: R = 10, or
  // 50 ms of its rate if more) and the rest comes back: a admits it, never past the limit.
  std::this_thread::sleep_for(2500ms);  // kept: the dead sidecar's hold TTL passing is what is tested
  for (int i = 0; i < 200; ++i) check_once(a, t);
  INFO("allowed " << t.allowed << ", the dead sidecar held " << dead_held << " with the bound " << bound);
  CHECK(t.allowed <= 2000);
  CHECK(bound >= 10);
  CHECK(t.allowed >= 2000 - std::min(dead_held, bound) - 1);  // and b's last answer the client may not have read
  const auto after = reservation_fields(server);
  CHECK(after.count("h:" + dead) == 0);  // settled: its consumption plus at most its bound
  CHECK(after.at("u:" + dead) == f["u:" + dead] + std::min(dead_held, bound));
  CHECK(redis_used(server) >= t.allowed);
  CHECK(redis_used(server) <= 2000);
}

TEST_CASE(
    "quota reservations: a Redis restarted empty keeps what a sidecar last saw the others use or hold, "
    "even of a sidecar killed meanwhile",
    "[redis][sidecars][reservations]") {
  redis_server server(free_port());
  temp_dir dir;
  auto scs = start_sidecars(2, yaml(dir, server, 100));
  tally t;
  {
    auto a = scs[0]->client();
    for (int i = 0; i < 60; ++i) check_once(a, t);
  }
  REQUIRE(t.allowed == 60);
  std::this_thread::sleep_for(200ms);  // a reports (sync_interval 50ms)
  std::int64_t a_held = 0;
  for (const auto& [k, v] : reservation_fields(server)) a_held += k.rfind("h:", 0) == 0 ? v : 0;
  {
    auto b = scs[1]->client();
    check_once(b, t);  // b sees a's part
  }
  REQUIRE(t.allowed == 61);
  scs[0]->proc().signal(SIGKILL);
  REQUIRE(scs[0]->proc().wait_exit(5s));
  server.kill();
  REQUIRE(scs[1]->proc().wait_for_output("redis unavailable", 5s));
  server.start();  // empty: a's consumption is gone with it, and a cannot report it again
  REQUIRE(scs[1]->proc().wait_for_output("redis connected", 10s, scs[1]->proc().output().find("redis unavailable")));
  std::this_thread::sleep_for(300ms);
  {
    auto b = scs[1]->client();
    for (int i = 0; i < 200; ++i) check_once(b, t);
  }
  INFO("allowed " << t.allowed << ", a held " << a_held);
  CHECK(t.errors == 0);
  CHECK(t.allowed <= 100);           // without the floor b would admit 99 more
  CHECK(t.allowed >= 100 - a_held);  // under by at most what a held when b last saw it
}

TEST_CASE("quota reservations: a lease reported long after 3 x lease_ttl never takes the key past its limit",
          "[redis][sidecars][reservations][lease]") {
  redis_server server(free_port());
  temp_dir dir;
  // a leases (to a client that reports them, as the plugin does); b has leases off (lease_requests 0).
  const std::string config_b = yaml(dir, server, 1000, "  quota_chunk_ttl: 3s\n");
  std::string config = config_b;
  config.replace(config.find("lease_requests: 0"), 17, "lease_requests: 20, lease_ttl: 200ms");
  auto scs = start_sidecars(1, config);
  scs.push_back(std::make_unique<sidecar_process>(config_b));
  REQUIRE(scs[1]->proc().wait_for_output("redis connected", 10s));
  tally t;
  auto a = scs[0]->client();
  auto b = scs[1]->client();
  const std::int64_t lease = checks_until_lease(a, t);
  REQUIRE(lease > 0);
  // The plugin admits the whole lease; its report is late (a slow upstream, no other request of
  // the key on that worker): after 1.5 s = 7.5 x lease_ttl, by which time a went idle (a third of
  // the TTL) and gave its chunk back. Meanwhile the other sidecar admits what it can.
  std::this_thread::sleep_for(1500ms);
  for (int i = 0; i < 1200; ++i) {
    check_once(b, t);
    REQUIRE(t.allowed + lease <= 1000);
  }
  // The report at last (a quantity-0 check: no lease of its own): it was counted as used already.
  const auto late = a.post(
      "/v1/check", R"({"customer_id":"cust_a","feature":"api","quantity":0,"leased":)" + std::to_string(lease) + "}");
  REQUIRE(late.status == 200);
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < 100; ++i) check_once(b, t);
  std::string fields;
  for (const auto& [k, v] : reservation_fields(server)) fields += k.substr(0, 4) + "=" + std::to_string(v) + " ";
  INFO("allowed " << t.allowed << " + leased " << lease << "; redis " << fields << "; denied " << t.denied);
  CHECK(t.errors == 0);
  CHECK(t.allowed + lease == 1000);  // exact: never over, and nothing lost
  std::this_thread::sleep_for(300ms);
  CHECK(redis_used(server) == 1000);
}

TEST_CASE("quota reservations: a lease report sent again after a lost answer (same report_id) counts once",
          "[redis][sidecars][reservations][lease]") {
  redis_server server(free_port());
  temp_dir dir;
  std::string config = yaml(dir, server, 1000);
  config.replace(config.find("lease_requests: 0"), 17, "lease_requests: 20, lease_ttl: 200ms");
  auto scs = start_sidecars(1, config);
  tally t;
  auto a = scs[0]->client();
  const std::int64_t lease = checks_until_lease(a, t);
  REQUIRE(lease > 1);
  // The plugin admitted the whole lease and reports it; the answer is lost (a timeout), so the next
  // check carries the same report again, grown by one more request admitted meanwhile (cumulative).
  const std::string report = R"({"customer_id":"cust_a","feature":"api","quantity":0,"report_id":"w7:1","leased":)";
  REQUIRE(a.post("/v1/check", report + std::to_string(lease - 1) + "}").status == 200);
  REQUIRE(a.post("/v1/check", report + std::to_string(lease) + R"(,"report_resent":true})").status == 200);
  REQUIRE(a.post("/v1/check", report + std::to_string(lease) + R"(,"report_resent":true})").status == 200);
  CHECK(scs[0]->metric(R"(aforo_sidecar_check_lease_reports_resent_total{kind="repeated"})") == 2);
  for (int i = 0; i < 1200; ++i) {
    check_once(a, t);
    REQUIRE(t.allowed + lease <= 1000);
  }
  INFO("allowed " << t.allowed << " + leased " << lease << "; denied " << t.denied);
  CHECK(t.errors == 0);
  CHECK(t.allowed + lease == 1000);  // exact: counted once (twice would leave `lease` units unused)
}

TEST_CASE("quota reservations: the lease in an answer that never arrived comes back when its report_id is sent again",
          "[redis][sidecars][reservations][lease]") {
  redis_server server(free_port());
  temp_dir dir;
  std::string config = yaml(dir, server, 1000);
  config.replace(config.find("lease_requests: 0"), 17, "lease_requests: 20, lease_ttl: 200ms");
  auto scs = start_sidecars(1, config);
  tally t;
  auto a = scs[0]->client();
  std::string lost_id;
  const std::int64_t lease = checks_until_lease(a, t, "w9:", &lost_id);
  REQUIRE(lease > 0);
  // The plugin never saw that answer (a timeout): it admitted nothing under the lease, and its next
  // check carries the same report_id, marked sent before.
  REQUIRE(a.post("/v1/check", R"({"customer_id":"cust_a","feature":"api","quantity":0,"lease_unused":0,)"
                              R"("report_resent":true,"report_id":")" +
                                  lost_id + R"("})")
              .status == 200);
  for (int i = 0; i < 1200; ++i) {
    check_once(a, t);
    REQUIRE(t.allowed <= 1000);
  }
  INFO("allowed " << t.allowed << "; the lost lease " << lease << "; denied " << t.denied);
  CHECK(t.errors == 0);
  CHECK(t.allowed == 1000);  // exact: the lost lease's units went back to the chunk
}

TEST_CASE("quota reservations: Redis down admits held chunks plus the allowance, WARN and metric, reconciled on return",
          "[redis][sidecars][reservations]") {
  redis_server server(free_port());
  temp_dir dir;
  auto scs = start_sidecars(2, yaml(dir, server, 100, "  quota_redis_down_allowance: 5\n"));
  tally t;
  alternate(scs, 10, t);
  REQUIRE(t.allowed == 20);
  server.kill();
  REQUIRE(wait_redis_down(*scs[0]));
  REQUIRE(wait_redis_down(*scs[1]));
  alternate(scs, 100, t);
  INFO("allowed " << t.allowed);
  CHECK(t.errors == 0);
  // Bound: what was reserved (never past the limit) plus 2 sidecars x 5.
  CHECK(t.allowed <= 100 + 2 * 5);
  CHECK(t.allowed > 20);
  CHECK(scs[0]->proc().wait_for_output("quota: redis unavailable; admitting up to 5 units or 1% of the limit", 2s));
  CHECK(scs[0]->metric("aforo_sidecar_quota_redis_down_admitted_total") == 5);
  server.start();  // empty: every sidecar reports its consumption again
  REQUIRE(wait_redis_connected(*scs[0], 2));
  REQUIRE(wait_redis_connected(*scs[1], 2));
  alternate(scs, 1, t);  // a check each: reports go out
  // Shared once the sidecars have pushed (their syncs run every sync_interval).
  CHECK(wait_until([&] { return redis_used(server) == t.allowed; }, 5s));
  const int before = t.allowed;
  alternate(scs, 100, t);
  CHECK(t.allowed == std::max(before, 100));  // nothing past the limit once reconciled
}

TEST_CASE("quota reservations: a restarted sidecar starts from Redis's totals", "[redis][sidecars][reservations]") {
  redis_server server(free_port());
  temp_dir dir;
  auto scs = start_sidecars(1, yaml(dir, server, 100));
  tally t;
  alternate(scs, 60, t);
  REQUIRE(t.allowed == 60);
  std::int64_t held_before = 0;
  for (const auto& [k, v] : reservation_fields(server)) held_before += k.rfind("h:", 0) == 0 ? v : 0;
  scs[0]->proc().signal(SIGTERM);
  REQUIRE(scs[0]->proc().wait_exit(10s));
  // The stop gave its unused units back: no holder left in Redis.
  std::int64_t held_after = 0;
  for (const auto& [k, v] : reservation_fields(server)) held_after += k.rfind("h:", 0) == 0 ? v : 0;
  INFO("held before the stop " << held_before);
  CHECK(held_after == 0);
  CHECK(redis_used(server) == 60);
  scs[0]->restart();
  REQUIRE(wait_redis_connected(*scs[0]));
  alternate(scs, 100, t);
  CHECK(t.errors == 0);
  CHECK(t.allowed == 100);
}

TEST_CASE(
    "quota reservations: the reserve script grants within the limit, takes a retry as the same call, "
    "settles an expired holder as used",
    "[redis][reservations]") {
  redis_server server(free_port());
  asio::io_context ioc;
  std::string err;
  io::redis_client_options o;
  o.endpoint = *io::parse_redis_url(server.url(), err);
  io::redis_client client(ioc, o);
  client.start();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!client.connected() && std::chrono::steady_clock::now() < deadline) ioc.run_for(2ms);
  REQUIRE(client.connected());
  const auto eval = [&](const std::string& key, const std::string& me, int consumed, int held, int want, int ttl_ms,
                        std::vector<std::string> bound_others = {}) -> io::redis_result {
    std::optional<io::redis_result> out;
    std::vector<std::string> args{"EVAL",
                                  std::string(ce::quota_reserve_script()),
                                  "1",
                                  key,
                                  me,
                                  std::to_string(consumed),
                                  std::to_string(held),
                                  std::to_string(want),
                                  "10",
                                  std::to_string(ttl_ms),
                                  "4102444800"};
    for (auto& a : bound_others) args.push_back(std::move(a));
    client.command(std::move(args), [&](io::redis_result r) { out = std::move(r); });
    while (!out) ioc.run_for(2ms);
    return *out;
  };
  const auto ints = [](const io::redis_result& r) {
    std::vector<std::int64_t> v;
    for (const auto& e : r.reply.elements) v.push_back(e.integer);
    return v;
  };
  using v = std::vector<std::int64_t>;
  CHECK(ints(eval("r:k", "A", 0, 0, 7, 60000)) == v{7, 0, 7});    // {granted, used, reserved}
  CHECK(ints(eval("r:k", "B", 0, 0, 7, 100)) == v{3, 0, 10});     // only what is left
  CHECK(ints(eval("r:k", "A", 0, 0, 7, 60000)) == v{7, 0, 10});   // A's reply was lost: the retry replaces, never adds
  CHECK(ints(eval("r:k", "A", 5, 2, 0, 60000)) == v{0, 5, 10});   // A used 5, holds 2
  std::this_thread::sleep_for(150ms);                             // kept: B's 100 ms hold expires (B killed)
  CHECK(ints(eval("r:k", "A", 5, 2, 10, 60000)) == v{0, 8, 10});  // B's hold (no bound given) settled as used
  CHECK(ints(eval("r:k", "A", 7, 0, 0, 60000)) == v{0, 10, 10});  // a return: A used 7 in all, holds none
  // With a bound: an expired hold is settled as u + min(h, bound) used, and the rest returns.
  CHECK(ints(eval("r:b", "A", 0, 0, 4, 60000, {"2"})) == v{4, 0, 4});
  CHECK(ints(eval("r:b", "B", 0, 0, 6, 100, {"1"})) == v{6, 0, 10});
  CHECK(ints(eval("r:b", "B", 2, 3, 0, 100, {"1"})) == v{0, 2, 9});      // B used 2, holds 3, at most 1 unseen
  std::this_thread::sleep_for(150ms);                                    // B killed
  CHECK(ints(eval("r:b", "A", 1, 3, 10, 60000, {"2"})) == v{3, 4, 10});  // B: 2 + 1 used, its other 2 back
  // A store that lost the key: a caller that knew the others' part leaves it as a floor.
  CHECK(ints(eval("r:f", "C", 3, 0, 5, 60000, {"10", "6"})) == v{1, 3, 10});  // floor 6 + C's 3 + 1
  CHECK(ints(eval("r:f", "D", 0, 0, 5, 60000, {"10", "-1"})) == v{0, 3, 10});
  CHECK(ints(eval("r:f", "C", 4, 0, 0, 60000, {"10", "0"})) == v{0, 4, 10});  // no new floor once known
  std::optional<io::redis_result> set;
  client.command({"SET", "r:str", "x"}, [&](io::redis_result r) { set = std::move(r); });
  while (!set) ioc.run_for(2ms);
  const auto wrong = eval("r:str", "A", 0, 0, 1, 1000);
  CHECK(wrong.reply.is_error());
  CHECK(wrong.reply.str.find("WRONGTYPE") != std::string::npos);
}
