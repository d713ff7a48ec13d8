// Redis credentials against a real redis-server: requirepass (password from a file or the env) and
// Redis 6 ACL users, shared quota through them, and the secret never shown.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "redis_itest_support.hpp"

using namespace redis_itest;

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
  auto o = options_for(url_of(port));
  o.endpoint.user = user;
  o.endpoint.password = password;
  return shared_total(o);
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
