// POST /v1/check through the real aforo-sidecar over real sockets: every reason of the
// decision table (docs/design/decision-contract.md#reasons) with the example snapshot, malformed requests, no snapshot
// yet, and a snapshot file edited (well and badly) while the sidecar runs.
#include <catch2/catch.hpp>

#include <signal.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

#include <rapidjson/document.h>

#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {

rapidjson::Document json_of(const http_reply& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::string str(const rapidjson::Value& v, const char* key) {
  return v.HasMember(key) && v[key].IsString() ? v[key].GetString() : std::string("<absent>");
}

std::string check_body(const std::string& customer,
                       const std::string& extra = R"("service":"search","method":"GET","path":"/v1/search/items/42")") {
  return R"({"customer_id":")" + customer + R"(",)" + extra + "}";
}

std::string example_snapshot() { return read_file(source_dir() + "/config/snapshot.example.yaml"); }

// Polls until pred(reply) holds or the timeout passes; returns the last reply.
template <class Pred>
http_reply wait_check(http_client& c, const std::string& body, Pred pred, millis timeout = 5s) {
  http_reply r;
  wait_until([&] { return pred(r = c.post("/v1/check", body)); }, timeout, 50ms);
  return r;
}

}  // namespace

TEST_CASE("check: an entitled customer within quota is allowed with X-RateLimit headers", "[check]") {
  sidecar_process sc("");
  auto c = sc.client();
  auto r = c.post("/v1/check", check_body("cust_acme"));
  REQUIRE(r.status == 200);
  auto d = json_of(r);
  CHECK(str(d, "decision") == "allow");
  CHECK(d["allowed"].GetBool());
  CHECK(str(d, "reason") == "ok");
  CHECK(str(d, "plan") == "enterprise");
  CHECK(str(d, "feature") == "advanced_search");
  CHECK(d["remaining_quota"].GetInt64() == 9999);
  CHECK(str(d, "cache") == "hit");
  CHECK(str(d["headers"], "X-RateLimit-Limit") == "10000");
  CHECK(str(d["headers"], "X-RateLimit-Remaining") == "9999");
  CHECK(std::stoll(str(d["headers"], "X-RateLimit-Reset")) > 0);
  CHECK_FALSE(d.HasMember("shadow"));

  // The plugin's explicit feature wins over the mapping; an unlimited feature has no quota headers.
  d = json_of(c.post("/v1/check",
                     check_body("cust_acme", R"("feature":"basic_search","service":"search","path":"/v1/search")")));
  CHECK(str(d, "feature") == "basic_search");
  CHECK(str(d, "reason") == "ok");
  CHECK_FALSE(d["headers"].HasMember("X-RateLimit-Limit"));

  // A request no rule maps is allowed without quota.
  d = json_of(c.post("/v1/check", check_body("cust_acme", R"("service":"other","path":"/x")")));
  CHECK(str(d, "decision") == "allow");
  CHECK_FALSE(d.HasMember("feature"));
}

TEST_CASE("check: quota warns past the threshold, then answers quota_exceeded 429 with Retry-After", "[check]") {
  sidecar_process sc("");
  auto c = sc.client();
  const std::string basic = R"("service":"search","method":"GET","path":"/v1/basic/q","quantity":)";
  // cust_small: basic_search 100 per hour.
  auto d = json_of(c.post("/v1/check", check_body("cust_small", basic + "79")));
  CHECK(str(d, "reason") == "ok");
  CHECK(d["remaining_quota"].GetInt64() == 21);
  d = json_of(c.post("/v1/check", check_body("cust_small", basic + "1")));
  CHECK(str(d, "reason") == "quota_warning");
  CHECK(d["allowed"].GetBool());
  CHECK(str(d["headers"], "X-RateLimit-Warning") == "80% of quota used");
  d = json_of(c.post("/v1/check", check_body("cust_small", basic + "20")));
  CHECK(d["allowed"].GetBool());
  CHECK(d["remaining_quota"].GetInt64() == 0);

  auto r = c.post("/v1/check", check_body("cust_small", basic + "1"));
  REQUIRE(r.status == 200);  // a deny is a decision
  d = json_of(r);
  CHECK(str(d, "decision") == "block");
  CHECK_FALSE(d["allowed"].GetBool());
  CHECK(d["status"].GetInt() == 429);
  CHECK(str(d, "reason") == "quota_exceeded");
  CHECK(d["retry_after"].GetInt64() > 0);
  CHECK(d["retry_after"].GetInt64() <= 3600);
  CHECK(str(d["headers"], "Retry-After") == std::to_string(d["retry_after"].GetInt64()));
  CHECK(str(d["headers"], "X-RateLimit-Remaining") == "0");

  // Counted by decision and reason.
  const auto m = c.get("/metrics").body;
  CHECK(m.find(R"(aforo_sidecar_checks_total{decision="block",reason="quota_exceeded"} 1)") != std::string::npos);
  CHECK(m.find(R"(aforo_sidecar_checks_total{decision="allow",reason="quota_warning"} 2)") != std::string::npos);
  CHECK(m.find(R"(aforo_sidecar_entitlements_cache_lookups_total{result="hit"} 4)") != std::string::npos);
  CHECK(m.find("aforo_sidecar_check_duration_seconds_count 4") != std::string::npos);
}

TEST_CASE("check: feature_not_entitled is 403, subscription_inactive 402, unknown_customer 403 by default", "[check]") {
  sidecar_process sc("");
  auto c = sc.client();
  // cust_trial's plan has basic_search only.
  auto d = json_of(c.post("/v1/check", check_body("cust_trial")));
  CHECK(str(d, "reason") == "feature_not_entitled");
  CHECK(str(d, "decision") == "block");
  CHECK(d["status"].GetInt() == 403);

  for (const char* who : {"cust_paused", "cust_gone"}) {
    d = json_of(c.post("/v1/check", check_body(who, R"("service":"search","path":"/v1/basic")")));
    CHECK(str(d, "reason") == "subscription_inactive");
    CHECK(d["status"].GetInt() == 402);
    CHECK_FALSE(d["allowed"].GetBool());
  }
  // past_due within grace is served. The example's grace_until is a fixed date: move it 30 days past
  // today so that the test does not expire with the calendar.
  {
    std::string text = example_snapshot();
    const std::string fixed = "2026-12-15T00:00:00Z";
    const auto at = text.find(fixed);
    REQUIRE(at != std::string::npos);
    const std::time_t later = std::time(nullptr) + 30 * 86400;
    std::tm tm{};
    gmtime_r(&later, &tm);
    char iso[32];
    std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    text.replace(at, fixed.size(), iso);
    temp_dir dir;
    const auto snap = dir.write("snapshot.yaml", text);
    sidecar_process graced("entitlements:\n  source: \"file:" + snap + "\"\n");
    auto g = graced.client();
    d = json_of(g.post("/v1/check", check_body("cust_late", R"("service":"search","path":"/v1/basic")")));
    CHECK(d["allowed"].GetBool());
  }

  d = json_of(c.post("/v1/check", check_body("cust_nobody")));
  CHECK(str(d, "reason") == "unknown_customer");
  CHECK(d["status"].GetInt() == 403);
  CHECK_FALSE(d["allowed"].GetBool());
  CHECK(str(d, "cache") == "miss");
  CHECK_FALSE(d.HasMember("plan"));
}

TEST_CASE("check: unknown_customer allow lets an unknown customer through without quota", "[check]") {
  sidecar_process sc(
      "entitlements:\n  source: \"file:{source}/config/snapshot.example.yaml\"\n  unknown_customer: allow\n");
  auto d = json_of(sc.client().post("/v1/check", check_body("cust_nobody")));
  CHECK(str(d, "decision") == "allow");
  CHECK(d["allowed"].GetBool());
  CHECK(str(d, "reason") == "unknown_customer");
  CHECK_FALSE(d.HasMember("remaining_quota"));
}

TEST_CASE("check: shadow mode reports the would-deny reason but allows, and mode changes live on SIGHUP",
          "[check][signals]") {
  sidecar_process sc("mode: shadow\n");
  auto c = sc.client();
  auto d = json_of(c.post("/v1/check", check_body("cust_paused", R"("service":"search","path":"/v1/basic")")));
  CHECK(str(d, "decision") == "allow");
  CHECK(d["allowed"].GetBool());
  CHECK(d["shadow"].GetBool());
  CHECK(str(d, "reason") == "subscription_inactive");
  CHECK(d["status"].GetInt() == 200);

  auto text = read_file(sc.config_path());
  text.replace(text.find("mode: shadow"), 12, "mode: enforce");
  sc.dir().write("sidecar.yaml", text);
  const auto mark = sc.proc().output().size();
  sc.proc().signal(SIGHUP);
  REQUIRE(sc.proc().wait_for_output("SIGHUP: applied", 5s, mark));
  d = json_of(c.post("/v1/check", check_body("cust_paused", R"("service":"search","path":"/v1/basic")")));
  CHECK_FALSE(d["allowed"].GetBool());
  CHECK(d["status"].GetInt() == 402);
  CHECK_FALSE(d.HasMember("shadow"));
}

TEST_CASE("check: malformed bodies get 400 with the contract's error body", "[check]") {
  sidecar_process sc("");
  auto c = sc.client();
  auto r = c.post("/v1/check", "{not json");
  CHECK(r.status == 400);
  CHECK(r.body.find(R"({"error":{"code":"bad_request","message":"malformed JSON)") == 0);
  r = c.post("/v1/check", R"({"feature":"x"})");
  CHECK(r.status == 400);
  CHECK(r.body.find("customer_id is required") != std::string::npos);
  r = c.post("/v1/check", R"({"customer_id":"cust_acme","quantity":-1})");
  CHECK(r.status == 400);
  r = c.post("/v1/check", "");
  CHECK(r.status == 400);
  CHECK(c.get("/v1/check").status == 405);
  // The connection stayed usable.
  CHECK(c.post("/v1/check", check_body("cust_acme")).status == 200);
  CHECK(c.connections_opened() == 1);
}

TEST_CASE("check: 503 no_snapshot until the snapshot file appears, then ready", "[check]") {
  temp_dir snaps;
  const std::string path = snaps.file("snapshot.yaml");
  sidecar_process sc("entitlements:\n  source: \"file:" + path + "\"\n");
  auto c = sc.client();
  auto r = c.post("/v1/check", check_body("cust_acme"));
  CHECK(r.status == 503);
  CHECK(r.body.find(R"({"error":{"code":"no_snapshot")") == 0);
  r = c.get("/readyz");
  CHECK(r.status == 503);
  CHECK(r.body.find("no entitlement snapshot loaded yet") != std::string::npos);
  CHECK(c.get("/v1/handshake").body.find(R"("entitlements":null)") != std::string::npos);
  CHECK(sc.proc().output().find("cannot read snapshot file " + path) != std::string::npos);
  CHECK(sc.proc().running());

  replace_file(path, example_snapshot());
  r = wait_check(c, check_body("cust_acme"), [](const http_reply& x) { return x.status == 200; });
  CHECK(r.status == 200);
  CHECK(c.get("/readyz").status == 200);
  CHECK(c.get("/v1/handshake").body.find(R"("entitlements":{"version":"42","age_s":)") != std::string::npos);
}

TEST_CASE("check: a snapshot file edited while running changes decisions, and a broken edit keeps the last good one",
          "[check]") {
  temp_dir snaps;
  const std::string path = snaps.file("snapshot.yaml");
  auto text = example_snapshot();
  replace_file(path, text);
  sidecar_process sc("entitlements:\n  source: \"file:" + path + "\"\n");
  auto c = sc.client();
  const auto body = check_body("cust_trial");
  REQUIRE(json_of(c.post("/v1/check", body))["allowed"].GetBool() == false);  // feature_not_entitled

  // Grant cust_trial advanced_search and bump the version.
  auto edited = text;
  edited.replace(edited.find("version: \"42\""), 13, "version: \"43\"");
  const std::string trial_features = "      basic_search: { limit: 1000, period: day }\n";
  edited.insert(edited.find(trial_features) + trial_features.size(), "      advanced_search: { limit: 5 }\n");
  replace_file(path, edited);
  auto r =
      wait_check(c, body, [](const http_reply& x) { return x.body.find(R"("allowed":true)") != std::string::npos; });
  auto d = json_of(r);
  CHECK(d["allowed"].GetBool());
  CHECK(d["remaining_quota"].GetInt64() == 4);
  CHECK(c.get("/v1/handshake").body.find(R"("version":"43")") != std::string::npos);

  // A broken edit: errors logged with their path, the last good snapshot (43) keeps deciding.
  const auto mark = sc.proc().output().size();
  auto broken = edited;
  broken.replace(broken.find("status: trialing"), 16, "status: sleeping");
  replace_file(path, broken);
  REQUIRE(sc.proc().wait_for_output("customers.cust_trial.status", 5s, mark));
  CHECK(sc.proc().output().find("keeping the snapshot in force", mark) != std::string::npos);
  d = json_of(c.post("/v1/check", body));
  CHECK(d["allowed"].GetBool());
  CHECK(c.get("/v1/handshake").body.find(R"("version":"43")") != std::string::npos);
  CHECK(c.get("/readyz").status == 200);
  CHECK(c.get("/metrics").body.find("aforo_sidecar_entitlements_snapshot_load_failures_total 0") == std::string::npos);

  // Fixed again: picked up.
  replace_file(path, text);
  r = wait_check(c, body, [](const http_reply& x) { return x.body.find("feature_not_entitled") != std::string::npos; });
  CHECK(json_of(r)["allowed"].GetBool() == false);
  CHECK(c.get("/v1/handshake").body.find(R"("version":"42")") != std::string::npos);
}

TEST_CASE("check: a broken snapshot file ages the snapshot in force past max_stale into 503", "[check]") {
  temp_dir snaps;
  const std::string path = snaps.file("snapshot.json");
  replace_file(path, example_snapshot());
  sidecar_process sc("entitlements:\n  source: \"file:" + path + "\"\n  max_stale: 2s\n");
  auto c = sc.client();
  REQUIRE(c.post("/v1/check", check_body("cust_acme")).status == 200);
  replace_file(path, "version: [");
  auto r = wait_check(
      c, check_body("cust_acme"), [](const http_reply& x) { return x.status == 503; }, 6s);
  CHECK(r.status == 503);
  CHECK(r.body.find("older than entitlements.max_stale") != std::string::npos);
  // Still ready: the pod also carries Kong and the ingest path; the plugin's fallback covers the 503.
  auto ready = c.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body.find(R"("state":"expired")") != std::string::npos);
  // SIGHUP re-reads the file at once; a good file makes it fresh again.
  replace_file(path, example_snapshot());
  sc.proc().signal(SIGHUP);
  r = wait_check(c, check_body("cust_acme"), [](const http_reply& x) { return x.status == 200; });
  CHECK(r.status == 200);
  CHECK(c.get("/readyz").status == 200);
}

TEST_CASE("check: a file source missing at restart serves its last known good snapshot", "[check]") {
  temp_dir snaps;
  const std::string path = snaps.file("snapshot.yaml");
  replace_file(path, example_snapshot());
  sidecar_process sc("entitlements:\n  source: \"file:" + path + "\"\n");
  auto c = sc.client();
  REQUIRE(c.post("/v1/check", check_body("cust_acme")).status == 200);
  const std::string kept = sc.dir().file("state/entitlements.snapshot");
  REQUIRE(std::filesystem::exists(kept));
  CHECK((std::filesystem::status(kept).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));

  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_exit(10s) == 0);
  std::filesystem::remove(path);
  sc.restart();
  auto c2 = sc.client();
  auto r = wait_check(c2, check_body("cust_acme"), [](const http_reply& x) { return x.status == 200; });
  REQUIRE(r.status == 200);
  CHECK(json_of(r)["allowed"].GetBool());
  CHECK(c2.get("/readyz").status == 200);
  CHECK(c2.get("/v1/handshake").body.find(R"("last_known_good":true)") != std::string::npos);
  CHECK(sc.proc().output().find("serving the last known good snapshot 42") != std::string::npos);

  // The file back: loaded from the source again.
  replace_file(path, example_snapshot());
  REQUIRE(
      wait_until([&] { return c2.get("/v1/handshake").body.find(R"("last_known_good":false)") != std::string::npos; }));
}
