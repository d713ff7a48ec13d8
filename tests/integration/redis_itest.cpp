// The Redis edge cache against a real redis-server: the async client (commands, pipelining, Redis
// killed and restarted, a stalled Redis), and two real sidecars sharing quota through one Redis
// (credentials: redis_auth_itest.cpp).
#include <catch2/catch.hpp>

#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <thread>

#include "core/entitlements/redis_quota_sync.hpp"
#include "redis_itest_support.hpp"

using namespace redis_itest;

TEST_CASE("redis url: redis:// and unix: forms are parsed, others refused", "[redis]") {
  std::string err;
  auto a = io::parse_redis_url("redis://cache.local:6380/2", err);
  REQUIRE(a);
  CHECK(a->host == "cache.local");
  CHECK(a->port == 6380);
  CHECK(a->db == 2);
  auto b = io::parse_redis_url("redis://127.0.0.1", err);
  REQUIRE(b);
  CHECK(b->port == 6379);
  CHECK(b->db == 0);
  auto c = io::parse_redis_url("redis://:s3cret@10.0.0.1:6379/0", err);
  REQUIRE(c);
  CHECK(c->password == "s3cret");
  auto u = io::parse_redis_url("unix:/run/redis/redis.sock?db=3", err);
  REQUIRE(u);
  CHECK(u->unix_path == "/run/redis/redis.sock");
  CHECK(u->db == 3);
  CHECK_FALSE(io::parse_redis_url("http://x:1/0", err));
  CHECK_FALSE(io::parse_redis_url("redis://host:1/notanumber", err));
  CHECK_FALSE(io::parse_redis_url("unix:relative.sock", err));
}

TEST_CASE("redis client: connects, answers commands in order and pipelines them", "[redis]") {
  redis_server server(free_port());
  asio::io_context ioc;
  io::redis_client client(ioc, options_for(server));
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));

  auto r = call(ioc, client, {"SET", "k", std::string("bin\0ary", 7)});
  REQUIRE(r.ok_reply());
  CHECK(r.reply.type == io::redis_value::kind::status);
  r = call(ioc, client, {"GET", "k"});
  CHECK(r.reply.str == std::string("bin\0ary", 7));
  r = call(ioc, client, {"GET", "missing"});
  CHECK(r.reply.is_nil());
  r = call(ioc, client, {"INCRBY", "n", "5"});
  CHECK(r.reply.integer == 5);
  r = call(ioc, client, {"HSET", "k", "f", "v"});  // wrong type: an error reply, still a reply
  CHECK(r.ok());
  CHECK(r.reply.is_error());

  std::vector<std::int64_t> seen;
  for (int i = 0; i < 500; ++i) {
    client.command({"INCR", "p"}, [&](io::redis_result x) { seen.push_back(x.reply.integer); });
  }
  REQUIRE(run_until(ioc, [&] { return seen.size() == 500; }));
  for (int i = 0; i < 500; ++i) CHECK(seen[static_cast<std::size_t>(i)] == i + 1);
}

TEST_CASE("redis client: a unix socket with a database number, Redis restarted, it reconnects", "[redis]") {
  temp_dir dir;
  const std::string sock = dir.file("redis.sock");
  const std::vector<std::string> argv{"/usr/bin/redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                                      "--appendonly",          "no"};
  auto server = std::make_unique<process>(argv);
  REQUIRE(server->wait_for_output("ready to accept connections", 10s));  // "at <socket>"
  std::string err;
  auto ep = io::parse_redis_url("unix:" + sock + "?db=3", err);
  REQUIRE(ep);
  io::redis_client_options o;
  o.endpoint = *ep;
  asio::io_context ioc;
  io::redis_client client(ioc, o);
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));
  CHECK(call(ioc, client, {"CLIENT", "INFO"}).reply.str.find(" db=3 ") != std::string::npos);  // SELECT 3 ran
  CHECK(call(ioc, client, {"SET", "k", "v"}).ok_reply());
  CHECK(call(ioc, client, {"GET", "k"}).reply.str == "v");

  server->signal(SIGKILL);
  (void)server->wait_exit(5s);
  REQUIRE(run_until(ioc, [&] { return !client.connected(); }));
  server = std::make_unique<process>(argv);
  REQUIRE(server->wait_for_output("ready to accept connections", 10s));  // "at <socket>"
  REQUIRE(run_until(
      ioc, [&] { return client.connected(); }, 10s));
  CHECK(call(ioc, client, {"CLIENT", "INFO"}).reply.str.find(" db=3 ") != std::string::npos);
}

TEST_CASE("redis client: the quota script adds contributions per sidecar and sums them", "[redis]") {
  redis_server server(free_port());
  asio::io_context ioc;
  io::redis_client client(ioc, options_for(server));
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));
  namespace ce = aforo::core::entitlements;
  const ce::redis_keys keys("t");
  auto push = [&](const std::string& inst, std::int64_t contribution) {
    std::vector<ce::quota_push> b{{"c:f:2026-11", contribution, 4102444800}};
    std::vector<std::string> args{"EVAL", std::string(ce::quota_sync_script())};
    for (auto& a : ce::quota_sync::script_args(b, keys, inst)) args.push_back(a);
    auto r = call(ioc, client, args);
    REQUIRE(r.ok_reply());
    REQUIRE(r.reply.elements.size() == 1);
    return r.reply.elements[0].integer;
  };
  CHECK(push("a", 3) == 3);
  CHECK(push("b", 4) == 7);
  CHECK(push("a", 3) == 7);  // the same contribution again (a retry) counts once
  CHECK(push("a", 2) == 7);  // never lowered
  CHECK(push("a", 5) == 9);
  auto ttl = call(ioc, client, {"TTL", keys.quota("c:f:2026-11")});
  CHECK(ttl.reply.integer > 0);
  CHECK(call(ioc, client, {"SET", keys.quota("x:f:2026-11"), "1"}).ok_reply());
  std::vector<ce::quota_push> bad{{"x:f:2026-11", 1, 4102444800}};
  std::vector<std::string> args{"EVAL", std::string(ce::quota_sync_script())};
  for (auto& a : ce::quota_sync::script_args(bad, keys, "a")) args.push_back(a);
  CHECK(call(ioc, client, args).reply.is_error());
  CHECK(call(ioc, client, {"GET", keys.quota("x:f:2026-11")}).reply.str == "1");  // untouched
}

TEST_CASE("redis client: Redis killed fails commands fast without blocking the loop, restarted reconnects", "[redis]") {
  redis_server server(free_port());
  asio::io_context ioc;
  io::redis_client client(ioc, options_for(server));
  std::vector<bool> changes;
  client.on_state_change([&](bool up) { changes.push_back(up); });
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));

  // A ticker proves the loop keeps turning while Redis is gone.
  asio::steady_timer ticker(ioc);
  auto last_tick = std::chrono::steady_clock::now();
  millis max_gap{0};
  std::function<void()> tick = [&] {
    ticker.expires_after(5ms);
    ticker.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const auto now = std::chrono::steady_clock::now();
      max_gap = std::max(max_gap, std::chrono::duration_cast<millis>(now - last_tick));
      last_tick = now;
      tick();
    });
  };
  tick();

  server.kill();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(ioc, client, {"PING"});
  CHECK_FALSE(r.ok());
  CHECK((r.error == io::redis_error::connection_lost || r.error == io::redis_error::not_connected));
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  REQUIRE(run_until(ioc, [&] { return !client.connected(); }));
  r = call(ioc, client, {"PING"});
  CHECK(r.error == io::redis_error::not_connected);
  CHECK(client.state() == aforo::core::entitlements::redis_link_state::unavailable);
  run_until(
      ioc, [] { return false; }, 600ms);  // several reconnect attempts against a closed port

  server.start();
  REQUIRE(run_until(
      ioc, [&] { return client.connected(); }, 10s));
  r = call(ioc, client, {"PING"});
  CHECK(r.ok_reply());
  CHECK(r.reply.str == "PONG");
  CHECK(max_gap < 200ms);
  run_until(
      ioc, [&] { return changes.size() >= 3; }, 1s);
  CHECK(changes == std::vector<bool>{true, false, true});
  ticker.cancel();
}

TEST_CASE("redis client: a stalled Redis times commands out and the client reconnects when it resumes", "[redis]") {
  redis_server server(free_port());
  asio::io_context ioc;
  io::redis_client client(ioc, options_for(server, 100ms));
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));
  server.proc().signal(SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<io::redis_result> results;
  for (int i = 0; i < 3; ++i) client.command({"PING"}, [&](io::redis_result x) { results.push_back(std::move(x)); });
  REQUIRE(run_until(
      ioc, [&] { return results.size() == 3; }, 5s));
  const auto waited = std::chrono::steady_clock::now() - t0;
  for (const auto& x : results) CHECK(x.error == io::redis_error::timeout);
  CHECK(waited >= 90ms);
  CHECK(waited < 1s);
  CHECK_FALSE(client.connected());
  server.proc().signal(SIGCONT);
  REQUIRE(run_until(
      ioc, [&] { return client.connected(); }, 10s));
  CHECK(call(ioc, client, {"PING"}).ok_reply());
}

namespace {

std::string sidecar_yaml(const temp_dir& dir, const redis_server& r) {
  return "entitlements: { source: \"file:" + dir.write("snapshot.yaml", shared_snapshot) + "\" }\ncache: { redis: \"" +
         r.url() + "\", sync_interval: 50ms, redis_timeout: 200ms, quota_mode: counters }\n";
}

std::int64_t shared_total(const redis_server& server) { return redis_itest::shared_total(options_for(server)); }

}  // namespace

// cache.quota_mode counters (quota_reservations_itest.cpp has the default, reserve).
// Over-admission bound (core/entitlements/quota.hpp): with 2 sidecars syncing every T = 50 ms,
// at most (N - 1) x (what one sidecar admits in T + 1). Requests here are paced at one per 5 ms
// per pair, so one sidecar admits at most ~10 in T: the bound used is 100 + 12.
TEST_CASE("redis edge: two sidecars sharing one Redis hold a customer to the limit across both", "[redis][sidecars]") {
  redis_server server(free_port());
  temp_dir dir;
  sidecar_process a(sidecar_yaml(dir, server));
  sidecar_process b(sidecar_yaml(dir, server));
  REQUIRE(wait_redis_connected(a));
  REQUIRE(wait_redis_connected(b));
  auto ca = a.client();
  auto cb = b.client();
  tally t;
  for (int i = 0; i < 150; ++i) {
    check_once(ca, t);
    check_once(cb, t);
    std::this_thread::sleep_for(5ms);  // pacing: checks spread over several syncs
  }
  INFO("first error: " << t.first_error << "\nsidecar a:\n"
                       << a.proc().output() << "\nsidecar b:\n"
                       << b.proc().output());
  CHECK(a.proc().running());
  CHECK(b.proc().running());
  CHECK(t.errors == 0);
  CHECK(t.allowed >= 100);
  CHECK(t.allowed <= 100 + 12);
  CHECK(t.denied == 300 - t.allowed);
  // Shared once the sidecars have pushed (their syncs run every sync_interval).
  CHECK(wait_until([&] { return shared_total(server) == t.allowed; }, 5s));
  const auto hs = ca.get("/v1/handshake");
  CHECK(hs.body.find(R"("redis":"connected")") != std::string::npos);
}

TEST_CASE("redis edge: Redis killed mid-load keeps checks answering, and restarted the counters are reconciled",
          "[redis][sidecars]") {
  redis_server server(free_port());
  temp_dir dir;
  sidecar_process a(sidecar_yaml(dir, server));
  sidecar_process b(sidecar_yaml(dir, server));
  REQUIRE(wait_redis_connected(a));
  REQUIRE(wait_redis_connected(b));
  auto ca = a.client();
  auto cb = b.client();
  tally t;
  for (int i = 0; i < 20; ++i) {
    check_once(ca, t);
    check_once(cb, t);
    std::this_thread::sleep_for(5ms);
  }
  server.kill();
  for (int i = 0; i < 20; ++i) {
    check_once(ca, t);
    check_once(cb, t);
    std::this_thread::sleep_for(5ms);
  }
  INFO("first error: " << t.first_error);
  CHECK(t.errors == 0);
  CHECK(t.allowed == 80);  // under the limit everything is allowed, Redis or not
  REQUIRE(wait_redis_down(a));
  CHECK(ca.get("/v1/handshake").body.find(R"("redis":"unavailable")") != std::string::npos);

  server.start();  // same port, empty
  REQUIRE(wait_redis_connected(a, 2));
  REQUIRE(wait_redis_connected(b, 2));
  // Shared once the sidecars have pushed (their syncs run every sync_interval).
  CHECK(wait_until([&] { return shared_total(server) == 80; }, 5s));
}
