// Security review checks against the real sidecar: the API key never leaks, request limits,
// no reflected header injection, the non-loopback warning, and TLS verification of the ingest in the
// running daemon. Covered elsewhere and not repeated here: headers over server.max_header -> 431 and
// unix socket permissions (server_itest.cpp), client-level TLS refusal (http_client_itest.cpp), an
// authenticated consumer winning over X-Tenant-Id (plugin_nginx_itest.cpp).
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "pipeline_itest_support.hpp"

using namespace aforo::testkit;
using namespace pipeline_itest;
using aforo::fake::fake_ingest_options;

namespace {

// Distinctive, so that any copy of it (or of its first 8 characters) in an output is a leak.
const std::string secret_key = "zq9XKEY7-redact-me-5f1e2d3c4b5a69788796a5b4";
const std::string secret_prefix = secret_key.substr(0, 8);

/// Every regular file under `root`, with its content.
std::vector<std::pair<std::string, std::string>> files_under(const std::string& root) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) out.emplace_back(it->path().string(), read_file(it->path().string()));
  }
  return out;
}

void check_no_secret(const std::string& where, const std::string& text) {
  INFO("in " << where);
  CHECK(text.find(secret_key) == std::string::npos);
  CHECK(text.find(secret_prefix) == std::string::npos);
}

struct self_signed {
  explicit self_signed(const temp_dir& dir) : cert(dir.file("cert.pem")), key(dir.file("key.pem")) {
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=aforo-test -addext "
        "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
        key + " -out " + cert + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  std::string cert;
  std::string key;
};

}  // namespace

TEST_CASE("security: the API key is in no log line, metric, error body, spool or dead-letter file, or handshake",
          "[security]") {
  fake_ingest_options fo;
  fo.api_key = secret_key;
  fake_ingest_process fake(fo);
  sidecar_process sc(sidecar_yaml(fake.ingest_url(),
                                  "batch:\n  flush_interval: 50ms\n"
                                  "retry:\n  max_retries: 1\n  backoff: [50ms]\n  unauthorized_probe: 100ms\n"
                                  "buffer:\n  spool_dir: \"{dir}/spool\"\n  dead_letter_dir: \"{dir}/dead-letter\"\n"
                                  "log:\n  level: debug\n"),
                     {"AFORO_API_KEY=" + secret_key, "AFORO_TENANT_ID=" + tenant});
  auto c = sc.client();
  std::vector<std::pair<std::string, std::string>> bodies;
  auto post = [&](const std::string& what, const std::string& path, const std::string& body) {
    const auto r = c.post(path, body);
    bodies.emplace_back(what + " (" + std::to_string(r.status) + ")", r.body);
    for (const auto& [k, v] : r.headers) bodies.emplace_back(what + " header " + k, k + ": " + v);
    return r;
  };

  // 401s from the ingest: events are kept and ingest is re-probed.
  fake.set_faults(R"([{"status":401,"times":3}])");
  REQUIRE(post("batch under 401", "/v1/ingest/batch", batch("sec-a", 0, 5)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "faults_pending") == 0; }, 10s));
  REQUIRE(wait_until([&] { return fake_stat(fake, "stored") == 5; }, 10s));
  // A poison batch (ingest 400) goes to the dead-letter directory.
  fake.set_faults(R"([{"status":400,"times":1}])");
  REQUIRE(post("batch under 400", "/v1/ingest/batch", batch("sec-b", 0, 3)).status == 202);
  REQUIRE(wait_until(
      [&] { return metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"rejected_batch\"}") >= 3; }, 10s));
  // A dead ingest: events wait in the spool on disk, where the scan below finds them.
  fake.refuse(true);
  REQUIRE(post("batch while ingest is down", "/v1/ingest/batch", batch("sec-c", 0, 4)).status == 202);
  REQUIRE(sc.proc().wait_for_output("ingest unreachable", 10s));
  // Bad requests of every kind.
  post("malformed batch", "/v1/ingest/batch", "{not json");
  post("invalid event", "/v1/ingest/batch", R"({"events":[{"customerId":""}]})");
  post("malformed check", "/v1/check", "{\"customer_id\":");
  post("unknown path", "/v1/nothing", "{}");
  bodies.emplace_back("GET /v1/handshake", c.get("/v1/handshake").body);
  bodies.emplace_back("GET /metrics", c.get("/metrics").body);
  bodies.emplace_back("GET /readyz", c.get("/readyz").body);

  const auto files = files_under(sc.dir().path());
  bool spool_seen = false, dead_letter_seen = false;
  for (const auto& [path, content] : files) {
    check_no_secret(path, content);
    spool_seen = spool_seen || (path.find("/spool/") != std::string::npos && !content.empty());
    dead_letter_seen = dead_letter_seen || (path.find("/dead-letter/") != std::string::npos && !content.empty());
  }
  CHECK(spool_seen);        // the scan covered real spool data
  CHECK(dead_letter_seen);  // and a real dead-letter file
  for (const auto& [what, body] : bodies) check_no_secret(what, body);

  fake.refuse(false);
  REQUIRE(wait_until([&] { return fake_stat(fake, "stored") == 9; }, 15s));
  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_exit(15s) == 0);
  const auto log = sc.proc().output();
  CHECK(log.find("invalid API key") != std::string::npos);  // the 401s were logged, without the key
  CHECK(log.find("written to") != std::string::npos);       // and the dead-lettered batch
  check_no_secret("the sidecar's log", log);
  for (const auto& [path, content] : files_under(sc.dir().path())) check_no_secret(path, content);
}

TEST_CASE("security: a batch over server.max_batch_events is 413 and an over-long customerId is rejected per event",
          "[security]") {
  fake_ingest_process fake;
  sidecar_process sc(
      sidecar_yaml(fake.ingest_url(), "server:\n  max_batch_events: 10\nbatch:\n  flush_interval: 50ms\n"),
      sidecar_env());
  auto c = sc.client();
  auto r = c.post("/v1/ingest/batch", batch("big", 0, 11));
  CHECK(r.status == 413);
  CHECK(r.body.find("at most 10") != std::string::npos);
  CHECK(c.post("/v1/ingest/batch", batch("ok", 0, 10)).status == 202);

  std::string long_customer = event("long-0");
  const std::string id(65, 'c');
  long_customer.replace(long_customer.find("cust_acme"), 9, id);
  r = c.post("/v1/ingest/batch", "{\"events\":[" + long_customer + "," + event("long-1") + "]}");
  CHECK(r.status == 202);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["accepted"].GetInt() == 1);
  CHECK(d["failed"].GetInt() == 1);
  CHECK(d["errors"][0]["index"].GetInt() == 0);
  CHECK(std::string(d["errors"][0]["message"].GetString()).find("customerId") != std::string::npos);

  // The 64-character id is the limit, and /v1/check applies the same bound.
  CHECK(c.post("/v1/check", R"({"customer_id":")" + id + R"("})").status == 400);
  REQUIRE(wait_until([&] { return fake_stat(fake, "stored") == 11; }, 10s));
  for (const auto& k : received_keys(fake)) CHECK(k != "long-0");
}

TEST_CASE("security: CR LF in a customer_id is never reflected as a response header", "[security]") {
  sidecar_process sc("entitlements:\n  source: \"file:{source}/config/snapshot.example.yaml\"\n");
  const std::string body = R"({"customer_id":"cust_acme\r\nX-Injected: 1","service":"search","method":"GET",)"
                           R"("path":"/v1/search/items/1"})";
  auto c = sc.client();
  const auto r = c.post("/v1/check", body);
  REQUIRE(r.status != 0);
  CHECK(r.header("x-injected").empty());
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  for (const char* member : {"headers", "upstream_headers"}) {
    if (!d.HasMember(member)) continue;
    for (const auto& h : d[member].GetObject()) {
      const std::string name = h.name.GetString();
      const std::string value = h.value.IsString() ? h.value.GetString() : "";
      INFO(member << ": " << name << ": " << value);
      CHECK(name.find_first_of("\r\n") == std::string::npos);
      CHECK(value.find_first_of("\r\n") == std::string::npos);
      CHECK(value.find("X-Injected") == std::string::npos);
    }
  }
  // On the wire: no header line starts with X-Injected (in the JSON body CR LF stay escaped).
  const std::string raw = raw_exchange(sc.address(),
                                       "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                       "Content-Length: " +
                                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  REQUIRE(raw.rfind("HTTP/1.1 ", 0) == 0);
  CHECK(raw.find("\r\nX-Injected") == std::string::npos);
  CHECK(raw.find("\nX-Injected") == std::string::npos);
}

TEST_CASE("security: listening on a non-loopback address logs a loud warning and loopback does not", "[security]") {
  sidecar_process open_sc("listen: [\"0.0.0.0:0\"]\n");
  CHECK(open_sc.proc().wait_for_output("not a loopback address", 5s));
  const auto log = open_sc.proc().output();
  const auto at = log.find("not a loopback address");
  REQUIRE(at != std::string::npos);
  const auto line_start = log.rfind('\n', at);
  CHECK(log.substr(line_start == std::string::npos ? 0 : line_start, at - line_start).find("WARN") !=
        std::string::npos);

  sidecar_process default_sc("");
  CHECK(default_sc.client().get("/healthz").status == 200);
  CHECK(default_sc.proc().output().find("not a loopback address") == std::string::npos);
}

TEST_CASE("security: the daemon never delivers to an HTTPS ingest whose self-signed certificate it cannot verify",
          "[security][tls]") {
  temp_dir certs;
  const self_signed cert(certs);
  fake_ingest_options fo;
  fo.tls_cert = cert.cert;
  fo.tls_key = cert.key;
  fake_ingest_process fake(fo);
  REQUIRE(fake.base_url().rfind("https://", 0) == 0);

  SECTION("without ca_file: refused, logged as a TLS failure, the events kept") {
    sidecar_process sc(sidecar_yaml(fake.ingest_url(), "batch:\n  flush_interval: 50ms\nretry:\n  backoff: [100ms]\n"),
                       sidecar_env());
    auto c = sc.client();
    REQUIRE(c.post("/v1/ingest/batch", batch("tls", 0, 3)).status == 202);
    REQUIRE(sc.proc().wait_for_output("ingest unreachable", 10s));
    CHECK(wait_metric(sc, "aforo_sidecar_delivery_retries_total", [](double v) { return v >= 3; }) >= 3);
    CHECK(fake_stat(fake, "requests") == 0);
    CHECK(fake.received()["events"].Size() == 0);
    const auto log = sc.proc().output();
    const auto at = log.find("ingest unreachable");
    const auto line = log.substr(at, log.find('\n', at) - at);
    INFO(line);
    const bool tls_named = line.find("TLS") != std::string::npos || line.find("tls") != std::string::npos ||
                           line.find("certificate") != std::string::npos;
    CHECK(tls_named);
    CHECK(metric(sc, "aforo_sidecar_events_delivered_total") == 0);
  }
  SECTION("with ca_file naming the certificate: delivered (the control case)") {
    sidecar_process sc("aforo:\n  ingest_url: \"" + fake.ingest_url() + "\"\n  ca_file: \"" + cert.cert +
                           "\"\nbatch:\n  flush_interval: 50ms\n",
                       sidecar_env());
    auto c = sc.client();
    REQUIRE(c.post("/v1/ingest/batch", batch("tls", 0, 3)).status == 202);
    CHECK(wait_until([&] { return fake_stat(fake, "stored") == 3; }, 10s));
  }
}
