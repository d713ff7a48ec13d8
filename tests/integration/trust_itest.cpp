// Trust boundaries of the real aforo-sidecar: state directories another user
// could plant files in are refused at startup and by --check-config; with a local API token
// (server.auth_token_file) every endpoint but /healthz, /readyz and /metrics needs the bearer token.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline_itest_support.hpp"

using namespace aforo::testkit;
using namespace pipeline_itest;

namespace {

// Distinctive, so that any copy of it (or of a part of it) in an output is a leak.
const std::string token = "tok7Q2-trust-boundary-9f8e7d6c5b4a3210zyx";
const std::string token_part = token.substr(4, 12);

std::vector<std::pair<std::string, std::string>> bearer(const std::string& t) {
  return {{"Authorization", "Bearer " + t}};
}

std::string check_body(const std::string& customer) {
  return R"({"customer_id":")" + customer + R"(","service":"search","method":"GET","path":"/v1/search/items/42"})";
}

std::string with_token_file(const temp_dir& secrets, const std::string& extra = {}) {
  const auto path = secrets.write("sidecar_token", token + "\n");
  ::chmod(path.c_str(), 0600);
  return "server:\n  auth_token_file: \"" + path + "\"\n" + extra;
}

void check_no_token(const std::string& where, const std::string& text) {
  INFO("in " << where);
  CHECK(text.find(token_part) == std::string::npos);
}

}  // namespace

TEST_CASE("trust: a spool_dir owned by another uid stops the start and fails --check-config with 78", "[trust]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot chown to another uid; skipped");
    return;
  }
  temp_dir dir;
  const auto spool = dir.file("spool");
  REQUIRE(::mkdir(spool.c_str(), 0700) == 0);
  REQUIRE(::chown(spool.c_str(), 65534, 65534) == 0);
  const auto config = dir.write("sidecar.yaml",
                                "listen: [\"127.0.0.1:0\"]\n"
                                "buffer:\n  spool_dir: \"" +
                                    spool +
                                    "\"\n"
                                    "discovery:\n  enabled: false\n  state_dir: \"" +
                                    dir.file("state") +
                                    "\"\n"
                                    "entitlements:\n  source: \"file:" +
                                    source_dir() +
                                    "/config/snapshot.example.yaml\"\n"
                                    "aforo:\n  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n");
  const std::string expected = "buffer.spool_dir: " + spool + " is owned by uid 65534 (mode 0700), not by uid 0";

  process check({sidecar_bin(), "--config", config, "--check-config"}, sidecar_env());
  REQUIRE(check.wait_exit(20s) == 78);
  CHECK(check.output().find(expected) != std::string::npos);
  CHECK(check.output().find("chown 0 " + spool) != std::string::npos);

  process start({sidecar_bin(), "--config", config}, sidecar_env());
  REQUIRE(start.wait_exit(20s) == 1);
  const auto log = start.output();
  CHECK(log.find("cannot start: " + expected) != std::string::npos);
  CHECK(log.find("listening on") == std::string::npos);
  CHECK(std::filesystem::is_empty(spool));  // nothing was written into it

  // Once it is ours again the sidecar starts, and what it creates is 0700.
  REQUIRE(::chown(spool.c_str(), 0, 0) == 0);
  process ok({sidecar_bin(), "--config", config}, sidecar_env());
  CHECK_FALSE(ok.wait_for_listen(20s).empty());
  struct stat st {};
  REQUIRE(::stat((spool + "/dead-letter").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  ok.signal(SIGTERM);
  CHECK(ok.wait_exit(15s) == 0);
}

TEST_CASE("trust: a world-writable or symlinked state directory is refused by --check-config", "[trust]") {
  temp_dir dir;
  const auto state = dir.file("state");
  REQUIRE(::mkdir(state.c_str(), 0700) == 0);
  REQUIRE(::chmod(state.c_str(), 0777) == 0);
  REQUIRE(::symlink(dir.path().c_str(), dir.file("spool-link").c_str()) == 0);
  const auto config = dir.write("sidecar.yaml", "buffer:\n  spool_dir: \"" + dir.file("spool-link") +
                                                    "\"\ndiscovery:\n  state_dir: \"" + state + "\"\n");
  process check({sidecar_bin(), "--config", config, "--check-config"}, sidecar_env());
  REQUIRE(check.wait_exit(20s) == 78);
  const auto out = check.output();
  CHECK(out.find("buffer.spool_dir: " + dir.file("spool-link") + " is a symlink") != std::string::npos);
  CHECK(out.find("discovery.state_dir: " + state + " is writable by others (owner uid") != std::string::npos);
  CHECK(out.find("mode 0777") != std::string::npos);
}

TEST_CASE("trust: with a local API token, endpoints need the bearer token, probes and metrics stay open", "[trust]") {
  aforo::fake::fake_ingest_options fo;
  fo.api_key = api_key;
  fake_ingest_process fake(fo);
  temp_dir secrets;
  sidecar_process sc(sidecar_yaml(fake.ingest_url(), with_token_file(secrets,
                                                                     "batch:\n  flush_interval: 50ms\n"
                                                                     "log:\n  level: debug\n")),
                     sidecar_env());
  auto c = sc.client();

  // No header, a wrong token, another scheme: 401, WWW-Authenticate, nothing taken.
  const std::vector<std::vector<std::pair<std::string, std::string>>> refused = {
      {},
      bearer("tok7Q2-trust-boundary-9f8e7d6c5b4a3210zyX"),
      bearer(token + "x"),
      bearer(token.substr(1)),
      {{"Authorization", "Basic " + token}},
      {{"Authorization", token}}};
  for (const auto& h : refused) {
    INFO("headers: " << (h.empty() ? std::string("none") : h.front().second.substr(0, 10)));
    auto r = c.post("/v1/check", check_body("cust_acme"), h);
    CHECK(r.status == 401);
    CHECK(r.header("www-authenticate") == "Bearer");
    CHECK(r.body == R"({"error":{"code":"unauthorized","message":"missing or wrong bearer token"}})");
    r = c.post("/v1/ingest/batch", batch("unauth", 0, 3), h);
    CHECK(r.status == 401);
    CHECK(c.request("GET", "/v1/handshake", {}, h).status == 401);
    CHECK(c.request("GET", "/v1/catalog", {}, h).status == 401);
    CHECK(c.request("POST", "/v1/test-event", {}, h).status == 401);
    CHECK(c.post("/v1/ingest", event("unauth-one"), h).status == 401);
  }
  CHECK(c.get("/v1/nothing").status == 401);  // unknown paths too: nothing is learnt without the token
  CHECK(sc.metric("aforo_sidecar_http_unauthorized_total") == 6 * 6 + 1);

  // The open endpoints.
  CHECK(c.get("/healthz").status == 200);
  CHECK(wait_until([&] { return c.get("/readyz").status == 200; }, 10s));
  const auto metrics = c.get("/metrics");
  CHECK(metrics.status == 200);

  // The right token: the normal answers (the scheme is case-insensitive). No quota was used before.
  auto r = c.post("/v1/check", check_body("cust_acme"), bearer(token));
  REQUIRE(r.status == 200);
  CHECK(r.body.find(R"("remaining_quota":9999)") != std::string::npos);
  r = c.post("/v1/check", check_body("cust_acme"), {{"Authorization", "bearer  " + token}});
  CHECK(r.status == 200);
  r = c.post("/v1/ingest/batch", batch("auth", 0, 3), bearer(token));
  CHECK(r.status == 202);
  CHECK(r.body.find(R"("accepted":3)") != std::string::npos);
  CHECK(c.request("GET", "/v1/handshake", {}, bearer(token)).status == 200);
  REQUIRE(wait_until([&] { return fake_stat(fake, "stored") == 3; }, 10s));
  check_exactly(received_keys(fake), "auth", 0, 3);  // none of the refused ones

  check_no_token("GET /metrics", c.get("/metrics").body);
  check_no_token("GET /v1/handshake", c.request("GET", "/v1/handshake", {}, bearer(token)).body);
  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_exit(15s) == 0);
  const auto log = sc.proc().output();
  CHECK(log.find("local API token required") != std::string::npos);
  check_no_token("the sidecar's log", log);
}

TEST_CASE("trust: a local API token too short or with a space is a config error", "[trust]") {
  temp_dir dir;
  const auto file = dir.write("token", "short\n");
  const auto config = dir.write("sidecar.yaml", "server:\n  auth_token_file: \"" + file + "\"\n");
  process check({sidecar_bin(), "--config", config, "--check-config"}, sidecar_env());
  REQUIRE(check.wait_exit(20s) == 78);
  CHECK(check.output().find("server.auth_token_file: the local API token is shorter than 16 characters") !=
        std::string::npos);
  process env_check({sidecar_bin(), "--config", config, "--check-config"},
                    {"AFORO_SIDECAR_TOKEN=0123456789abcdef 0123456789"});
  REQUIRE(env_check.wait_exit(20s) == 78);
  const auto out = env_check.output();
  CHECK(out.find("holds a character other than") != std::string::npos);
  CHECK(out.find("0123456789abcdef") == std::string::npos);  // never shown
}
