// The Redis edge cache against a real redis-server: the async client (commands, pipelining, Redis
// killed and restarted, a stalled Redis), and two real sidecars sharing quota through one Redis.
#include <catch2/catch.hpp>

#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <thread>

#include "core/entitlements/redis_quota_sync.hpp"
#include "io/redis/redis_client.hpp"
#include "support/testkit.hpp"

using namespace aforo::testkit;
namespace asio = boost::asio;
namespace io = aforo::io;

namespace {

/// Runs the loop until pred holds or the timeout passes.
bool run_until(asio::io_context& ioc, const std::function<bool()>& pred, millis timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    ioc.run_for(2ms);
  }
  return true;
}

io::redis_client_options options_for(const redis_server& r, millis timeout = 250ms) {
  std::string err;
  auto ep = io::parse_redis_url(r.url(), err);
  REQUIRE(ep);
  io::redis_client_options o;
  o.endpoint = *ep;
  o.command_timeout = timeout;
  return o;
}

// Sends one command and runs the loop until its reply.
io::redis_result call(asio::io_context& ioc, io::redis_client& c, std::vector<std::string> args) {
  std::optional<io::redis_result> out;
  c.command(std::move(args), [&](io::redis_result r) { out = std::move(r); });
  REQUIRE(run_until(
      ioc, [&] { return out.has_value(); }, 10s));
  return *out;
}

}  // namespace

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

const char* shared_snapshot = R"(version: "7"
customers:
  cust_a:
    plan: pro
    status: active
    features:
      api: { limit: 100, period: month }
)";

std::string sidecar_yaml(const temp_dir& dir, const redis_server& r) {
  return "entitlements: { source: \"file:" + dir.write("snapshot.yaml", shared_snapshot) + "\" }\ncache: { redis: \"" +
         r.url() + "\", sync_interval: 50ms, redis_timeout: 200ms, quota_mode: counters }\n";
}

// The shared total of cust_a's `api` counter this month, read with the client.
std::int64_t shared_total(const redis_server& server) {
  namespace ce = aforo::core::entitlements;
  asio::io_context ioc;
  io::redis_client client(ioc, options_for(server));
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto w = ce::period_of(ce::period_kind::month, now);
  std::string key;
  ce::quota_counters::make_key(key, "cust_a", "api", w.key());
  auto r = call(ioc, client, {"HVALS", ce::redis_keys("").quota(key)});
  std::int64_t sum = 0;
  for (const auto& v : r.reply.elements) sum += std::stoll(v.str);
  return sum;
}

struct tally {
  int allowed = 0, denied = 0, errors = 0;
  std::string first_error;  ///< status and body of the first answer counted as an error
};

// One check; counts allowed / 429 with Retry-After / anything else (an error to the caller).
void check_once(http_client& c, tally& t) {
  const auto r = c.post("/v1/check", R"({"customer_id":"cust_a","feature":"api","quantity":1})");
  const auto error = [&] {
    if (t.errors++ == 0) t.first_error = std::to_string(r.status) + " " + r.body + r.error;
  };
  if (r.status != 200) {
    error();
  } else if (r.body.find(R"("allowed":true)") != std::string::npos) {
    ++t.allowed;
  } else if (r.body.find(R"("status":429)") != std::string::npos &&
             r.body.find(R"("retry_after":0)") == std::string::npos) {
    ++t.denied;
  } else {
    error();
  }
}

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

// ---- Redis credentials: requirepass and Redis 6 ACL users ------------------------------------

namespace {

// A redis-server on `port` with extra arguments (e.g. --requirepass); no persistence.
std::unique_ptr<process> start_redis(int port, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{
      "/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
      "--appendonly",          "no"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = std::make_unique<process>(argv);
  REQUIRE(p->wait_for_output("Ready to accept connections", 10s));
  return p;
}

// redis-cli against `port`; returns its output.
std::string redis_cli(int port, std::vector<std::string> args) {
  std::vector<std::string> argv{"/usr/bin/redis-cli", "--no-auth-warning", "-p", std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  process p(argv);
  REQUIRE(p.wait_exit(10s) == 0);
  return p.output();
}

std::string url_of(int port) { return "redis://127.0.0.1:" + std::to_string(port) + "/0"; }

std::string auth_yaml(const temp_dir& dir, const std::string& url, const std::string& extra_cache = "") {
  return "entitlements: { source: \"file:" + dir.write("snapshot.yaml", shared_snapshot) + "\" }\n" +
         "cache:\n  redis: \"" + url + "\"\n  sync_interval: 50ms\n  redis_timeout: 200ms\n  quota_mode: counters\n" +
         extra_cache;
}

// cust_a's shared total, over a connection with the given credentials.
std::int64_t shared_total_as(int port, const std::string& user, const std::string& password) {
  namespace ce = aforo::core::entitlements;
  std::string err;
  auto ep = io::parse_redis_url(url_of(port), err);
  REQUIRE(ep);
  ep->user = user;
  ep->password = password;
  io::redis_client_options o;
  o.endpoint = *ep;
  asio::io_context ioc;
  io::redis_client client(ioc, o);
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string key;
  ce::quota_counters::make_key(key, "cust_a", "api", ce::period_of(ce::period_kind::month, now).key());
  auto r = call(ioc, client, {"HVALS", ce::redis_keys("").quota(key)});
  std::int64_t sum = 0;
  for (const auto& v : r.reply.elements) sum += std::stoll(v.str);
  return sum;
}

// Nothing a client or an operator sees carries the secret.
void check_never_shown(sidecar_process& sc, const std::string& secret) {
  auto c = sc.client();
  CHECK(sc.proc().output().find(secret) == std::string::npos);
  CHECK(c.get("/metrics").body.find(secret) == std::string::npos);
  CHECK(c.get("/v1/handshake").body.find(secret) == std::string::npos);
  CHECK(c.get("/readyz").body.find(secret) == std::string::npos);
}

}  // namespace

TEST_CASE("redis edge: requirepass: the password from the file or the env shares quota, a wrong one is unavailable",
          "[redis][sidecars][auth]") {
  const int port = free_port();
  const std::string password = "s3cret-redis-pw-0815";
  auto server = start_redis(port, {"--requirepass", password});
  temp_dir dir;
  const std::string pw_file = dir.write("redis_password", password + "\n");
  sidecar_process a(auth_yaml(dir, url_of(port), "  redis_password_file: \"" + pw_file + "\"\n"));
  sidecar_process b(auth_yaml(dir, url_of(port)), {"AFORO_REDIS_PASSWORD=" + password});
  REQUIRE(wait_redis_connected(a));
  REQUIRE(wait_redis_connected(b));
  auto ca = a.client();
  auto cb = b.client();
  tally t;
  for (int i = 0; i < 150; ++i) {
    check_once(ca, t);
    check_once(cb, t);
    std::this_thread::sleep_for(5ms);
  }
  INFO("first error: " << t.first_error << "\nsidecar a:\n"
                       << a.proc().output() << "\nsidecar b:\n"
                       << b.proc().output());
  CHECK(t.errors == 0);
  CHECK(t.allowed >= 100);
  CHECK(t.allowed <= 100 + 12);  // one shared limit: Redis is used by both
  // Shared once the sidecars have pushed (their syncs run every sync_interval).
  CHECK(wait_until([&] { return shared_total_as(port, "", password) == t.allowed; }, 5s));
  CHECK(ca.get("/v1/handshake").body.find(R"("redis":"connected")") != std::string::npos);
  check_never_shown(a, password);
  check_never_shown(b, password);

  // A wrong password: Redis unavailable, said once, and the sidecar keeps deciding locally.
  const std::string wrong = "not-the-pw-4711";
  sidecar_process c(auth_yaml(dir, url_of(port)), {"AFORO_REDIS_PASSWORD=" + wrong});
  REQUIRE(c.proc().wait_for_output("redis unavailable", 10s));
  CHECK(c.proc().output().find("AUTH failed") != std::string::npos);
  auto cc = c.client();
  CHECK(cc.get("/v1/handshake").body.find(R"("redis":"unavailable")") != std::string::npos);
  const auto r = cc.post("/v1/check", R"({"customer_id":"cust_a","feature":"api","quantity":1})");
  CHECK(r.status == 200);
  CHECK(r.body.find(R"("allowed":true)") != std::string::npos);
  CHECK(cc.get("/readyz").status == 200);
  check_never_shown(c, wrong);
}

TEST_CASE("redis edge: a Redis 6 ACL user authenticates with cache.redis_username and the password",
          "[redis][sidecars][auth]") {
  const int port = free_port();
  auto server = start_redis(port);
  const std::string password = "acl-user-pw-2931";
  redis_cli(port, {"ACL", "SETUSER", "aforo", "on", ">" + password, "~*", "&*", "+@all"});
  redis_cli(port, {"ACL", "SETUSER", "default", "off"});  // only the ACL user gets in now
  temp_dir dir;
  sidecar_process a(auth_yaml(dir, url_of(port), "  redis_username: aforo\n"), {"AFORO_REDIS_PASSWORD=" + password});
  REQUIRE(wait_redis_connected(a));
  auto ca = a.client();
  tally t;
  for (int i = 0; i < 20; ++i) check_once(ca, t);
  CHECK(t.allowed == 20);
  // Shared once the sidecars have pushed (their syncs run every sync_interval).
  CHECK(wait_until([&] { return shared_total_as(port, "aforo", password) == 20; }, 5s));
  const auto clients = redis_cli(port, {"--user", "aforo", "--pass", password, "CLIENT", "LIST"});
  CHECK(clients.find("user=aforo") != std::string::npos);
  check_never_shown(a, password);

  // The same password without the user is the default user's AUTH: refused.
  sidecar_process b(auth_yaml(dir, url_of(port)), {"AFORO_REDIS_PASSWORD=" + password});
  REQUIRE(b.proc().wait_for_output("redis unavailable", 10s));
  CHECK(b.proc().output().find("AUTH failed") != std::string::npos);

  // The user and password inline in the URL still work, with a warning from --check-config that
  // shows the URL redacted.
  const std::string inline_url = "redis://aforo:" + password + "@127.0.0.1:" + std::to_string(port) + "/0";
  sidecar_process c(auth_yaml(dir, inline_url));
  REQUIRE(wait_redis_connected(c));
  CHECK(c.proc().output().find("carries a password inline") != std::string::npos);
  check_never_shown(c, password);
  process check({sidecar_bin(), "--config", c.config_path(), "--check-config"});
  REQUIRE(check.wait_exit(10s) == 0);
  CHECK(check.output().find("warning: cache.redis: 'redis://aforo:****@127.0.0.1:") != std::string::npos);
  CHECK(check.output().find("AFORO_REDIS_PASSWORD") != std::string::npos);
  CHECK(check.output().find(password) == std::string::npos);
}
