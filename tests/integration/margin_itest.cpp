// The margin guard through the real aforo-sidecar: metered cost crossing 30%, 20% and 10% margin
// gives the L1 upstream header and one signed webhook, then throttling at the configured rate, then
// 429 margin_block; a guard file edited while running switches to alert_only without a restart, and a
// file renamed over it with the same size and modification time is a change too.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "margin_itest_support.hpp"

using namespace margin_itest;

TEST_CASE("margin: cost crossing 30%, 20% and 10% alerts, throttles and blocks, and a guard edit applies live",
          "[margin]") {
  hook_receiver receiver;
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", snapshot_yaml);
  const std::string guards = dir.write("guards.yaml", guards_yaml(receiver.url(), "enforce"));
  sidecar_process sc("entitlements:\n  source: \"file:" + snap +
                         "\"\n"
                         "margin_guard:\n  config: \"" +
                         guards + "\"\n  reload_interval: 200ms\n",
                     {"AFORO_WEBHOOK_SECRET=" + secret});
  auto c = sc.client();

  // Healthy: revenue 100, no cost yet.
  auto d = wait_decision(c, [](const rapidjson::Document& x) { return str(x, "reason") == "ok"; });
  CHECK(str(d, "margin_level") == "NONE");
  REQUIRE(d.HasMember("margin_percent"));
  CHECK(d["margin_percent"].GetDouble() == Approx(100.0));

  // COGS 75 (2 x 0.5 + 74): margin 25% < 30% -> L1.
  REQUIRE(c.post("/v1/ingest/batch", usage_batch(1, "74")).status == 202);
  d = wait_decision(c, [](const rapidjson::Document& x) { return str(x, "reason") == "margin_alert"; });
  REQUIRE(str(d, "reason") == "margin_alert");
  CHECK(d["allowed"].GetBool());
  CHECK(str(d, "margin_level") == "L1");
  CHECK(d["margin_percent"].GetDouble() == Approx(25.0));
  CHECK(str(d["upstream_headers"], "X-Margin-Guard-Warning") == "margin-low");

  REQUIRE(receiver.wait_for(1, 5s));
  // Kept: no second webhook over the next checks and 800 ms is the subject (one per level change).
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 5; ++i) c.post("/v1/check", check_body());
  std::this_thread::sleep_for(300ms);
  auto hooks = receiver.hooks();
  REQUIRE(hooks.size() == 1);  // one per level change, not per request
  CHECK(hooks[0].signature == "sha256=" + hmac_hex(secret, hooks[0].timestamp + "." + hooks[0].body));
  CHECK(hooks[0].signature != "sha256=" + hmac_hex("wrong", hooks[0].timestamp + "." + hooks[0].body));
  auto hook = json_of(hooks[0].body);
  CHECK(str(hook, "customer_id") == "cust_m");
  CHECK(str(hook, "level") == "L1");
  CHECK(hook["margin_percent"].GetDouble() == Approx(25.0));
  CHECK(hook["revenue"].GetDouble() == Approx(100.0));
  CHECK(hook["cogs"].GetDouble() == Approx(75.0));
  CHECK(std::to_string(hook["timestamp"].GetInt64()) == hooks[0].timestamp);

  // COGS 85: margin 15% < 20% -> L2, held to 5/s.
  REQUIRE(c.post("/v1/ingest/batch", usage_batch(2, "9")).status == 202);
  d = wait_decision(c, [](const rapidjson::Document& x) { return str(x, "reason") == "margin_throttle"; });
  REQUIRE(str(d, "reason") == "margin_throttle");
  CHECK(str(d, "decision") == "throttle");
  CHECK(d["status"].GetInt() == 429);
  CHECK(str(d["headers"], "X-Margin-Guard-Level") == "L2");
  CHECK(str(d["headers"], "X-Aforo-Throttle") == "true");
  CHECK(std::stoi(str(d["headers"], "Retry-After")) >= 1);
  // The bucket is empty now: over ~2 s about 10 requests may pass (5/s).
  int allowed = 0;
  int sent = 0;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 2s && sent < 4000) {
    auto x = json_of(c.post("/v1/check", check_body()).body);
    ++sent;
    if (x["allowed"].GetBool()) ++allowed;
    std::this_thread::sleep_for(2ms);  // pacing: a rate over 2 s is measured
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("allowed " << allowed << " of " << sent << " in " << secs << " s");
  CHECK(sent > 100);  // the test really pushed harder than the rate
  CHECK(allowed >= 6);
  CHECK(allowed <= 16);

  // COGS 95: margin 5% < 10% -> L3 blocks with Retry-After.
  REQUIRE(c.post("/v1/ingest/batch", usage_batch(3, "9")).status == 202);
  d = wait_decision(c, [](const rapidjson::Document& x) { return str(x, "reason") == "margin_block"; });
  REQUIRE(str(d, "reason") == "margin_block");
  CHECK(str(d, "decision") == "block");
  CHECK(d["status"].GetInt() == 429);
  CHECK(str(d["headers"], "X-Margin-Guard") == "blocked");
  CHECK(str(d["headers"], "X-Margin-Guard-Level") == "L3");
  const int retry = std::stoi(str(d["headers"], "Retry-After"));
  CHECK(retry >= 1);
  CHECK(retry <= 1800);
  REQUIRE(receiver.wait_for(3, 5s));  // L2 and L3 changes were reported too
  CHECK(str(json_of(receiver.hooks()[2].body), "level") == "L3");

  auto metrics = c.get("/metrics").body;
  CHECK(metrics.find("aforo_sidecar_margin_level{level=\"L3\"} 1") != std::string::npos);

  // Edit the guard file: alert_only never blocks, applied within the reload interval, no restart.
  const auto pid = sc.proc().pid();
  replace_file(guards, guards_yaml(receiver.url(), "alert_only"));
  d = wait_decision(
      c, [](const rapidjson::Document& x) { return str(x, "reason") == "margin_alert"; }, 5s);
  REQUIRE(str(d, "reason") == "margin_alert");
  CHECK(str(d, "margin_level") == "L3");
  for (int i = 0; i < 50; ++i) {
    auto x = json_of(c.post("/v1/check", check_body()).body);
    CHECK(x["allowed"].GetBool());
  }
  CHECK(sc.proc().pid() == pid);
  CHECK(sc.proc().running());

  // A broken edit keeps the guards in force and says why.
  const auto log_from = sc.proc().output().size();
  replace_file(guards, "guards:\n  - id: default\n    level_1: { threshold: 300% }\n");
  CHECK(sc.proc().wait_for_output("guards[0].level_1.threshold", 5s, log_from));
  d = json_of(c.post("/v1/check", check_body()).body);
  CHECK(str(d, "reason") == "margin_alert");
  CHECK(sc.proc().output().find("margin guard: cust_m L1 (margin 25% < 30%) [guard default]") != std::string::npos);
}

// The guard file is watched by inode, size and modification time (io/file_watch): a new file renamed
// over it with the same bytes and the same modification time (a config tool's atomic replace within
// the filesystem's time granularity) is a new version and is loaded, not missed.
TEST_CASE("margin: a guard file renamed over the old one with the same size and mtime is reloaded", "[margin]") {
  hook_receiver receiver;
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", snapshot_yaml);
  const std::string text = guards_yaml(receiver.url(), "enforce");
  const std::string guards = dir.write("guards.yaml", text);
  const timespec fixed[2] = {{1'700'000'000, 0}, {1'700'000'000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, guards.c_str(), fixed, 0) == 0);
  sidecar_process sc("entitlements:\n  source: \"file:" + snap +
                         "\"\n"
                         "margin_guard:\n  config: \"" +
                         guards + "\"\n  reload_interval: 100ms\n",
                     {"AFORO_WEBHOOK_SECRET=" + secret});
  const std::string loads = R"(aforo_sidecar_margin_guard_reloads_total{result="ok"})";
  REQUIRE(sc.metric(loads) == 1);  // the load at start

  const std::string next = dir.write("guards.yaml.new", text);
  REQUIRE(::utimensat(AT_FDCWD, next.c_str(), fixed, 0) == 0);
  struct stat before {
  }, after{};
  REQUIRE(::stat(guards.c_str(), &before) == 0);
  REQUIRE(::rename(next.c_str(), guards.c_str()) == 0);
  REQUIRE(::stat(guards.c_str(), &after) == 0);
  REQUIRE(after.st_size == before.st_size);
  REQUIRE(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  REQUIRE(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  REQUIRE(after.st_ino != before.st_ino);

  CHECK(wait_metric(
            sc, loads, [](double v) { return v >= 2; }, 5s) == 2);
  CHECK(sc.metric(R"(aforo_sidecar_margin_guard_reloads_total{result="error"})") == 0);
}
