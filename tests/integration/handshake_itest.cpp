// The startup handshake and the test event against the real aforo-fake-ingest: handshake ok,
// a wrong key, a dead ingest, TLS with and without ca_file, `aforo-sidecar test-event` and
// POST /v1/test-event, and the API key in no output.
#include <regex>

#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;
using aforo::fake::fake_ingest_options;
using aforo::testkit::process;
using aforo::testkit::temp_dir;

namespace {

// A sidecar whose only setting is the ingest (plus `extra` under aforo:), with this key.
std::string yaml_for(const std::string& ingest_url, const std::string& aforo_extra = "") {
  return "aforo:\n  ingest_url: \"" + ingest_url + "\"\n  connect_timeout: 1s\n" + aforo_extra +
         "retry: { timeout: 2s }\n";
}

std::vector<std::string> env_with_key(const std::string& key) {
  return {"AFORO_API_KEY=" + key, "AFORO_TENANT_ID=" + tenant};
}

// The ingest URL of a port nothing listens on.
std::string dead_ingest_url() {
  return "http://127.0.0.1:" + std::to_string(aforo::testkit::free_port()) + "/v1/ingest/batch";
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

// Runs `aforo-sidecar test-event --config <file>` to its end; returns the exit code and the output.
struct cli_run {
  int code = -1;
  std::string output;
};
cli_run run_test_event(const temp_dir& dir, const std::string& yaml, const std::vector<std::string>& env) {
  const auto cfg = dir.write("cli.yaml", yaml);
  process p({aforo::testkit::sidecar_bin(), "test-event", "--config", cfg}, env);
  const auto code = p.wait_exit(15s);
  REQUIRE(code.has_value());
  return {*code, p.output()};
}

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("handshake: a valid key logs handshake ok and /v1/handshake and /readyz report ingest ok", "[handshake]") {
  fake_ingest_process fake;
  sidecar_process sc(yaml_for(fake.ingest_url()), sidecar_env());
  REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] INFO handshake ok (ingest 127.0.0.1, tenant tenant-1)\n", 5s));
  auto c = sc.client();
  CHECK(has(c.get("/v1/handshake").body, R"("ingest":"ok")"));
  const auto ready = c.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(has(ready.body, R"("ingest":"ok")"));
  // The key check is a probe, not a delivery: no event reached the fake. With batch.compression lz4
  // (the default) the same empty batch follows as an LZ4 frame: the encoding check.
  REQUIRE(wait_until([&] { return fake_stat(fake, "lz4_probes") == 1; }, 5s));
  CHECK(fake_stat(fake, "probes") == 2);
  CHECK(fake_stat(fake, "requests") == 0);
  CHECK(fake_stat(fake, "stored") == 0);
  CHECK(!has(sc.proc().output(), "ERROR"));
}

TEST_CASE("handshake: a wrong key logs invalid API key (401), reports unauthorized and stays ready", "[handshake]") {
  fake_ingest_process fake;
  sidecar_process sc(yaml_for(fake.ingest_url()), env_with_key("wrong-key-9999"));
  REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] ERROR invalid API key (401)\n", 5s));
  auto c = sc.client();
  CHECK(has(c.get("/v1/handshake").body, R"("ingest":"unauthorized")"));
  const auto ready = c.get("/readyz");
  CHECK(ready.status == 200);  // decisions still work and events are kept: see handshake_service.hpp
  CHECK(has(ready.body, R"("ingest":"unauthorized")"));
  CHECK(!has(sc.proc().output(), "handshake ok"));
}

TEST_CASE("handshake: a dead ingest logs ingest unreachable with the cause and reports unreachable", "[handshake]") {
  const auto url = dead_ingest_url();
  sidecar_process sc(yaml_for(url), sidecar_env());
  REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] ERROR ingest unreachable at 127.0.0.1: connection refused", 5s));
  CHECK(has(sc.client().get("/v1/handshake").body, R"("ingest":"unreachable")"));
  CHECK(sc.client().get("/readyz").status == 200);
  // Retried with backoff (1 s, 2 s, ...), logged once while the problem stays the same.
  std::this_thread::sleep_for(1500ms);  // kept: the retries over 1.5 s are the subject
  const auto out = sc.proc().output();
  CHECK(out.find("ingest unreachable at") == out.rfind("ingest unreachable at"));
}

TEST_CASE("handshake: once a dead ingest comes up the retried handshake succeeds", "[handshake]") {
  fake_ingest_process fake;
  fake.refuse(true);
  sidecar_process sc(yaml_for(fake.ingest_url()), sidecar_env());
  REQUIRE(sc.proc().wait_for_output("ERROR ingest unreachable at 127.0.0.1", 5s));
  fake.refuse(false);
  REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] INFO handshake ok (ingest 127.0.0.1, tenant tenant-1)", 5s));
  CHECK(has(sc.client().get("/v1/handshake").body, R"("ingest":"ok")"));
}

TEST_CASE("handshake: TLS without the CA logs a TLS failure and with aforo.ca_file succeeds", "[handshake][tls]") {
  temp_dir certs;
  self_signed cert(certs);
  fake_ingest_options fo;
  fo.tls_cert = cert.cert;
  fo.tls_key = cert.key;
  fake_ingest_process fake(fo);
  REQUIRE(fake.ingest_url().rfind("https://", 0) == 0);
  {
    sidecar_process sc(yaml_for(fake.ingest_url()), sidecar_env());
    REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] ERROR TLS failure to 127.0.0.1: ", 5s));
    CHECK(std::regex_search(sc.proc().output(), std::regex("TLS failure to 127.0.0.1: self.signed certificate")));
    CHECK(has(sc.client().get("/v1/handshake").body, R"("ingest":"unreachable")"));
  }
  sidecar_process sc(yaml_for(fake.ingest_url(), "  ca_file: \"" + cert.cert + "\"\n"), sidecar_env());
  REQUIRE(sc.proc().wait_for_output("[aforo-sidecar] INFO handshake ok (ingest 127.0.0.1, tenant tenant-1)", 5s));
  CHECK(has(sc.client().get("/v1/handshake").body, R"("ingest":"ok")"));
}

TEST_CASE("test-event CLI: the event reaches the fake ingest and the command prints its 202",
          "[handshake][test_event]") {
  fake_ingest_process fake;
  temp_dir dir;
  const auto r = run_test_event(dir, yaml_for(fake.ingest_url()), sidecar_env());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(has(r.output, "POST " + fake.base_url() + "/v1/ingest/test"));
  CHECK(has(r.output, "ingest answered 202"));
  CHECK(has(r.output, R"("success":true)"));
  auto got = fake.received();
  REQUIRE(got["events"].Size() == 1);
  const auto& ev = got["events"][0]["event"];
  CHECK(std::string(ev["customerId"].GetString()) == "aforo-test");
  CHECK(std::string(ev["metricName"].GetString()) == "api_calls");
  CHECK(std::string(ev["idempotencyKey"].GetString()).rfind("test:", 0) == 0);
  CHECK(ev["metadata"]["test"].GetBool());
  CHECK(std::string(got["requests"][0]["path"].GetString()) == "/v1/ingest/test");
  CHECK(std::string(got["requests"][0]["api_key"].GetString()) == "match");
}

TEST_CASE("test-event CLI: a wrong key exits non-zero with invalid API key (401) and ingest's answer",
          "[handshake][test_event]") {
  fake_ingest_process fake;
  temp_dir dir;
  const auto r = run_test_event(dir, yaml_for(fake.ingest_url()), env_with_key("wrong-key-9999"));
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(has(r.output, "ingest answered 401"));
  CHECK(has(r.output, "ERROR invalid API key (401)"));
  CHECK(has(r.output, "UNAUTHORIZED"));  // ingest's own body, shown as is
  CHECK(fake_stat(fake, "stored") == 0);
}

TEST_CASE("test-event CLI: a dead ingest exits non-zero with the unreachable cause", "[handshake][test_event]") {
  temp_dir dir;
  const auto r = run_test_event(dir, yaml_for(dead_ingest_url()), sidecar_env());
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(has(r.output, "ERROR ingest unreachable at 127.0.0.1: connection refused"));
  CHECK(!has(r.output, "ingest answered"));
}

TEST_CASE("test-event CLI: a slow ingest exits non-zero with network timeout", "[handshake][test_event]") {
  fake_ingest_process fake;
  fake.set_faults(R"([{"delay_ms":4000}])");
  temp_dir dir;
  const auto r = run_test_event(dir, yaml_for(fake.ingest_url()), sidecar_env());
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(has(r.output, "ERROR network timeout to 127.0.0.1"));
}

TEST_CASE("POST /v1/test-event returns what ingest answered, 502 with the cause otherwise", "[handshake][test_event]") {
  fake_ingest_process fake;
  SECTION("accepted") {
    sidecar_process sc(yaml_for(fake.ingest_url()), sidecar_env());
    const auto r = sc.client().post("/v1/test-event", "");
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(has(r.body, R"("ingest_status":202)"));
    CHECK(has(r.body, R"("ingest_body":{"success":true,"data":{"accepted":1)"));
    CHECK(has(r.body, R"("url":")" + fake.base_url() + "/v1/ingest/test\""));
    CHECK(!has(r.body, R"("error")"));
    CHECK(fake_stat(fake, "stored") == 1);
  }
  SECTION("wrong key") {
    sidecar_process sc(yaml_for(fake.ingest_url()), env_with_key("wrong-key-9999"));
    const auto r = sc.client().post("/v1/test-event", "");
    INFO(r.body);
    CHECK(r.status == 502);
    CHECK(has(r.body, R"("ingest_status":401)"));
    CHECK(has(r.body, R"x("error":{"code":"unauthorized","message":"invalid API key (401)"})x"));
  }
  SECTION("dead ingest") {
    sidecar_process sc(yaml_for(dead_ingest_url()), sidecar_env());
    const auto r = sc.client().post("/v1/test-event", "");
    INFO(r.body);
    CHECK(r.status == 502);
    CHECK(has(r.body, R"("ingest_status":null)"));
    CHECK(
        has(r.body,
            R"("error":{"code":"ingest_unreachable","message":"ingest unreachable at 127.0.0.1: connection refused)"));
  }
}

TEST_CASE("handshake: the API key appears in no log line and no response body", "[handshake][security]") {
  const std::string key = "sk_live_Q7hJ2mZpL0v9xR4t";
  const std::string key_head = key.substr(0, key.size() - 4);
  fake_ingest_options fo;
  fo.api_key = key;
  fake_ingest_process fake(fo);
  std::vector<std::pair<std::string, std::string>> bodies;
  std::string logs;
  {
    sidecar_process sc(yaml_for(fake.ingest_url()), env_with_key(key));
    REQUIRE(sc.proc().wait_for_output("handshake ok", 5s));
    auto c = sc.client();
    for (const char* path : {"/v1/handshake", "/readyz", "/metrics", "/healthz"})
      bodies.emplace_back(path, c.get(path).body);
    bodies.emplace_back("POST /v1/test-event", c.post("/v1/test-event", "").body);
    logs += sc.proc().output();
  }
  {
    // A wrong key and a dead ingest: the error paths.
    sidecar_process sc(yaml_for(fake.ingest_url()), env_with_key(key + "x"));
    REQUIRE(sc.proc().wait_for_output("invalid API key (401)", 5s));
    bodies.emplace_back("POST /v1/test-event (401)", sc.client().post("/v1/test-event", "").body);
    logs += sc.proc().output();
  }
  {
    sidecar_process sc(yaml_for(dead_ingest_url()), env_with_key(key));
    REQUIRE(sc.proc().wait_for_output("ingest unreachable", 5s));
    bodies.emplace_back("POST /v1/test-event (dead)", sc.client().post("/v1/test-event", "").body);
    logs += sc.proc().output();
  }
  temp_dir dir;
  logs += run_test_event(dir, yaml_for(fake.ingest_url()), env_with_key(key)).output;
  logs += run_test_event(dir, yaml_for(fake.ingest_url()), env_with_key(key + "x")).output;
  logs += run_test_event(dir, yaml_for(dead_ingest_url()), env_with_key(key)).output;
  CHECK(has(logs, "handshake ok"));
  CHECK(has(logs, "ingest answered 202"));
  CHECK(!has(logs, key_head));
  for (const auto& [where, body] : bodies) {
    INFO(where << ": " << body);
    CHECK(!body.empty());
    CHECK(!has(body, key_head));
  }
}
