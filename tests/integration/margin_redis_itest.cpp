// The margin guard across sidecars: two sidecars sharing one real redis-server guard a customer on
// the COGS of both, and a Redis restart loses and doubles no cost; they send each level change's
// webhook once (the notice claim in Redis), and both send it while Redis is down.
#include <catch2/catch.hpp>

#include "core/entitlements/period.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/redis_keys.hpp"
#include "core/margin/level_notice.hpp"
#include "margin_itest_support.hpp"
#include "io/redis/redis_client.hpp"

using namespace margin_itest;

namespace {

// The shared COGS of cust_m this month in Redis (micro-units): the sum of the sidecars' fields.
std::int64_t shared_cogs(const redis_server& redis) {
  namespace ce = aforo::core::entitlements;
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string key;
  ce::quota_counters::make_key(key, "cust_m", "$cogs", ce::period_of(ce::period_kind::month, now).key());
  return redis.hash_sum(ce::redis_keys("").cogs(key));
}

bool margin_is(const rapidjson::Document& d, double percent) {
  return d.HasMember("margin_percent") && d["margin_percent"].IsNumber() &&
         d["margin_percent"].GetDouble() == Approx(percent);
}

// Waits until both sidecars of a pair sharing one Redis have connected to it and each answers a
// check with no margin level yet; returns a client of each (A's first).
std::pair<http_client, http_client> connect_pair(sidecar_process& a, sidecar_process& b) {
  REQUIRE(wait_redis_connected(a));
  REQUIRE(wait_redis_connected(b));
  std::pair<http_client, http_client> clients{a.client(), b.client()};
  auto ok = [](const rapidjson::Document& x) { return str(x, "reason") == "ok"; };
  REQUIRE(str(wait_decision(clients.first, ok), "margin_level") == "NONE");
  REQUIRE(str(wait_decision(clients.second, ok), "margin_level") == "NONE");
  return clients;
}

// The sum of every series of a metric family in a /metrics body whose labels contain `labels`.
double metric_sum(const std::string& body, const std::string& name, const std::string& labels) {
  double sum = 0;
  std::size_t p = 0;
  while ((p = body.find("\n" + name + "{", p)) != std::string::npos) {
    const auto eol = body.find('\n', p + 1);
    const std::string line = body.substr(p + 1, eol - p - 1);
    if (line.find(labels) != std::string::npos) sum += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    p = eol;
  }
  return sum;
}

}  // namespace

// Revenue 100, L3 below 10% margin. 46 of cost on each sidecar (margin 54% on either alone, NONE)
// adds up to 92 (8%, L3) on both within a sync interval (100 ms here). Then Redis dies, 3 more go
// to A only (A 95 = 5%, B still 8%), Redis comes back empty and both converge on 95: B put its 46
// back although it had no new cost, and nothing is counted twice.
TEST_CASE("margin: two sidecars sharing one Redis guard on the combined COGS and a Redis restart loses none",
          "[margin][redis][sidecars]") {
  redis_server redis(free_port());
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", snapshot_yaml);
  const std::string guards = dir.write("guards.yaml",
                                       "guards:\n"
                                       "  - id: default\n"
                                       "    level_1: { threshold: 30% }\n"
                                       "    level_2: { threshold: 20%, throttle_rate: 5/s }\n"
                                       "    level_3: { threshold: 10%, retry_after: 1800s }\n");
  const std::string yaml = "entitlements:\n  source: \"file:" + snap +
                           "\"\n"
                           "margin_guard:\n  config: \"" +
                           guards +
                           "\"\n"
                           "cache: { redis: \"" +
                           redis.url() + "\", sync_interval: 100ms, redis_timeout: 200ms }\n";
  sidecar_process a(yaml);
  sidecar_process b(yaml);
  auto [ca, cb] = connect_pair(a, b);

  // Half the cost on A: B sees it through Redis, neither crosses a level.
  REQUIRE(ca.post("/v1/ingest/batch", usage_batch(1, "45")).status == 202);
  auto d = wait_decision(cb, [](const rapidjson::Document& x) { return margin_is(x, 54.0); });
  CHECK(margin_is(d, 54.0));
  CHECK(str(d, "margin_level") == "NONE");
  d = wait_decision(ca, [](const rapidjson::Document& x) { return margin_is(x, 54.0); });
  CHECK(str(d, "margin_level") == "NONE");

  // The other half on B: both block on the combined 92.
  REQUIRE(cb.post("/v1/ingest/batch", usage_batch(2, "45")).status == 202);
  auto blocked = [](const rapidjson::Document& x) { return str(x, "reason") == "margin_block"; };
  const auto t0 = std::chrono::steady_clock::now();
  d = wait_decision(ca, blocked);
  const auto lag = std::chrono::duration_cast<millis>(std::chrono::steady_clock::now() - t0);
  INFO("A saw B's cost after " << lag.count() << " ms");
  REQUIRE(str(d, "reason") == "margin_block");
  CHECK(str(d, "margin_level") == "L3");
  CHECK(margin_is(d, 8.0));
  CHECK(lag < 2s);  // one 100 ms sync (plus custody and the loaded machine's scheduling)
  d = wait_decision(cb, blocked);
  REQUIRE(str(d, "reason") == "margin_block");
  CHECK(margin_is(d, 8.0));
  CHECK(str(d["headers"], "X-Margin-Guard-Level") == "L3");
  CHECK(shared_cogs(redis) == 92'000'000);

  // Redis dies: A keeps counting its new cost locally, checks keep answering on both.
  redis.kill();
  REQUIRE(wait_redis_down(a));
  REQUIRE(wait_redis_down(b));
  REQUIRE(ca.post("/v1/ingest/batch", usage_batch(3, "2")).status == 202);
  d = wait_decision(ca, [](const rapidjson::Document& x) { return margin_is(x, 5.0); });
  CHECK(margin_is(d, 5.0));
  CHECK(str(d, "reason") == "margin_block");
  d = wait_decision(cb, blocked);
  CHECK(margin_is(d, 8.0));  // B cannot know yet

  // Back on the same port, empty: both converge on 95.
  const auto b_from = b.proc().output().size();
  redis.start();
  REQUIRE(wait_redis_connected(a, 2));
  REQUIRE(wait_redis_connected(b, 2));
  CHECK(b.proc().wait_for_output("sending every known counter contribution again", 5s, b_from));
  auto five = [](const rapidjson::Document& x) { return margin_is(x, 5.0); };
  for (int round = 0; round < 3; ++round) {  // and stay there: nothing is pushed twice
    d = wait_decision(cb, five);
    CHECK(margin_is(d, 5.0));
    CHECK(str(d, "reason") == "margin_block");
    d = wait_decision(ca, five);
    CHECK(margin_is(d, 5.0));
    CHECK(str(d, "reason") == "margin_block");
    std::this_thread::sleep_for(200ms);  // kept: staying there over time is what is tested
  }
  CHECK(shared_cogs(redis) == 95'000'000);

  // Each sidecar reported one level change, NONE to L3: no level flapped while Redis was rebuilt.
  for (auto* sc : {&a, &b}) {
    const std::string log = sc->proc().output();
    INFO(log);
    const std::string line = "margin guard: cust_m";
    std::size_t changes = 0;
    for (auto p = log.find(line); p != std::string::npos; p = log.find(line, p + 1)) ++changes;
    CHECK(changes == 1);
    CHECK(log.find("margin guard: cust_m L3 (margin 8% < 10%) [guard default]") != std::string::npos);
  }
  const auto metrics = ca.get("/metrics").body;
  CHECK(metric_sum(metrics, "aforo_sidecar_redis_sync_pushes_total", "counters=\"cogs\",result=\"ok\"") > 0);
}

// ---- one webhook per level change per cluster ----------------------------------------------------

namespace {

namespace cm = aforo::core::margin;
namespace io = aforo::io;

// A connection to a test Redis driven from the test thread.
struct redis_conn {
  boost::asio::io_context ioc;
  io::redis_client client;

  explicit redis_conn(const redis_server& r) : client(ioc, options(r)) {
    client.start();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!client.connected() && std::chrono::steady_clock::now() < deadline) ioc.run_for(2ms);
    REQUIRE(client.connected());
  }
  static io::redis_client_options options(const redis_server& r) {
    std::string err;
    auto ep = io::parse_redis_url(r.url(), err);
    REQUIRE(ep);
    io::redis_client_options o;
    o.endpoint = *ep;
    return o;
  }
  io::redis_result call(std::vector<std::string> args) {
    std::optional<io::redis_result> out;
    client.command(std::move(args), [&](io::redis_result r) { out = std::move(r); });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!out && std::chrono::steady_clock::now() < deadline) ioc.run_for(2ms);
    REQUIRE(out);
    return *out;
  }
};

// The level named in a /v1/check decision (margin_level, or the guard's header on a deny).
std::string level_of(const rapidjson::Document& d) {
  const std::string l = str(d, "margin_level");
  return l != "<absent>" ? l : str(d["headers"], "X-Margin-Guard-Level");
}

std::string notify_guards(const std::string& hook_url, const std::string& l3_threshold) {
  return "guards:\n"
         "  - id: default\n"
         "    level_1: { threshold: 30%, notify: [\"" +
         hook_url +
         "\"] }\n"
         "    level_2: { threshold: 20%, throttle_rate: 5/s }\n"
         "    level_3: { threshold: " +
         l3_threshold + ", retry_after: 1800s }\n";
}

// The levels of the webhooks received, in order ("L3", "L2", ...).
std::vector<std::string> hook_levels(hook_receiver& r) {
  std::vector<std::string> out;
  for (const auto& h : r.hooks()) out.push_back(str(json_of(h.body), "level"));
  return out;
}

}  // namespace

// The claim script against a real Redis, for every recorded notice (none, unreadable, NONE..L3)
// and every change: it claims exactly when notice_due says so, records "{to}:{instance}" with the
// notice's lifetime, and leaves a notice it refuses untouched.
TEST_CASE("margin: the notice claim script in Redis applies the once-per-cluster rule", "[margin][redis]") {
  redis_server server(free_port());
  redis_conn redis(server);
  const aforo::core::entitlements::redis_keys keys("t");
  cm::level_change c;
  c.customer_id = "cust_n";
  c.guard_id = "default";
  c.period = "2026-11";
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  c.period_end = now + 86400;
  const std::string key = keys.margin_notice(c.customer_id, c.guard_id, c.period);
  const std::vector<std::optional<std::string>> recorded{std::nullopt, "garbage", "0:b", "1:b", "2:b", "3:b"};
  int claimed = 0;
  for (const auto& rec : recorded) {
    for (int from = 0; from <= 3; ++from) {
      for (int to = 0; to <= 3; ++to) {
        INFO("recorded " << rec.value_or("(none)") << ", " << from << " -> " << to);
        REQUIRE(redis.call({"DEL", key}).ok_reply());
        if (rec) REQUIRE(redis.call({"SET", key, *rec}).ok_reply());
        c.from = static_cast<cm::margin_level>(from);
        c.to = static_cast<cm::margin_level>(to);
        std::vector<std::string> args{"EVAL", std::string(cm::notice_claim_script())};
        for (auto& a : cm::notice_claim_args(c, keys, "a", now)) args.push_back(std::move(a));
        const auto r = redis.call(args);
        REQUIRE(r.ok_reply());
        REQUIRE(r.reply.type == io::redis_value::kind::integer);
        std::optional<cm::margin_level> told;
        if (rec && (*rec)[0] >= '0' && (*rec)[0] <= '3') told = static_cast<cm::margin_level>((*rec)[0] - '0');
        const bool due = cm::notice_due(told, c.from, c.to);
        CHECK((r.reply.integer == 1) == due);
        const auto value = redis.call({"GET", key});
        if (due) {
          ++claimed;
          CHECK(value.reply.str == std::to_string(to) + ":a");
          const auto ttl = redis.call({"PTTL", key}).reply.integer;
          CHECK(ttl > 86400 * 1000);
          CHECK(ttl <= (86400 + 3600) * 1000);
        } else if (rec) {
          CHECK(value.reply.str == *rec);
        } else {
          CHECK(value.reply.is_nil());
        }
      }
    }
  }
  CHECK(claimed > 0);
  CHECK(claimed < 6 * 16);
}

// Revenue 100, notify on. 46 of cost on each sidecar takes both from NONE to L3 (8%): one signed
// webhook for the cluster, while each sidecar logs the change. A guard edit (L3 at 5%) lifts both
// to L2: one webhook; restored, both are back at L3: told again, once. With Redis killed, the
// same edit gives one webhook from each sidecar (sent anyway, at least once).
TEST_CASE(
    "margin: two sidecars sharing one Redis send one webhook per level change, and both send while Redis "
    "is down",
    "[margin][redis][sidecars]") {
  hook_receiver receiver;
  redis_server redis(free_port());
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", snapshot_yaml);
  const std::string guards = dir.write("guards.yaml", notify_guards(receiver.url(), "10%"));
  const std::string yaml = "entitlements:\n  source: \"file:" + snap +
                           "\"\n"
                           "margin_guard:\n  config: \"" +
                           guards +
                           "\"\n  reload_interval: 100ms\n"
                           "cache: { redis: \"" +
                           redis.url() + "\", sync_interval: 100ms, redis_timeout: 200ms }\n";
  sidecar_process a(yaml, {"AFORO_WEBHOOK_SECRET=" + secret});
  sidecar_process b(yaml, {"AFORO_WEBHOOK_SECRET=" + secret});
  auto [ca, cb] = connect_pair(a, b);

  // Sums one metric series over both sidecars.
  auto both = [&](const std::string& series) {
    return std::max(a.metric(series), 0.0) + std::max(b.metric(series), 0.0);
  };
  const std::string claimed = "aforo_sidecar_margin_webhook_claims_total{result=\"claimed\"}";
  const std::string elsewhere = "aforo_sidecar_margin_webhook_claims_total{result=\"claimed_elsewhere\"}";
  const std::string unavailable = "aforo_sidecar_margin_webhook_claims_total{result=\"unavailable\"}";
  const std::string sent = "aforo_sidecar_margin_webhooks_total{result=\"sent\"}";
  const std::string skipped = "aforo_sidecar_margin_webhooks_total{result=\"claimed_elsewhere\"}";
  // Waits until both sidecars have settled `n` claims in all (each claim ends one way or another).
  auto claims_settled = [&](double n) {
    wait_until([&] { return both(claimed) + both(elsewhere) + both(unavailable) >= n; }, 5s);
    return both(claimed) + both(elsewhere) + both(unavailable) == n;
  };
  auto at_level = [](const std::string& level) {
    return [level](const rapidjson::Document& x) { return level_of(x) == level; };
  };

  // NONE -> L3 on both: one webhook.
  REQUIRE(ca.post("/v1/ingest/batch", usage_batch(1, "45")).status == 202);
  REQUIRE(wait_decision(cb, [](const rapidjson::Document& x) { return margin_is(x, 54.0); }).HasMember("reason"));
  REQUIRE(cb.post("/v1/ingest/batch", usage_batch(2, "45")).status == 202);
  REQUIRE(level_of(wait_decision(ca, at_level("L3"))) == "L3");
  REQUIRE(level_of(wait_decision(cb, at_level("L3"))) == "L3");
  for (auto* sc : {&a, &b}) {  // each sidecar logs the change it saw
    CHECK(sc->proc().wait_for_output("margin guard: cust_m L3 (margin 8% < 10%) [guard default]", 5s));
  }
  REQUIRE(claims_settled(2));
  CHECK(both(claimed) == 1);
  CHECK(both(elsewhere) == 1);
  CHECK(both(skipped) == 1);
  REQUIRE(receiver.wait_for(1, 5s));
  // Every claim is settled (one claimed, one skipped): the one webhook sent is all there will be.
  REQUIRE(wait_until([&] { return both(sent) == 1; }, 5s));
  auto hooks = receiver.hooks();
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0].signature == "sha256=" + hmac_hex(secret, hooks[0].timestamp + "." + hooks[0].body));
  auto hook = json_of(hooks[0].body);
  CHECK(str(hook, "level") == "L3");
  CHECK(str(hook, "previous_level") == "NONE");
  CHECK(hook["margin_percent"].GetDouble() == Approx(8.0));
  CHECK(both(sent) == 1);

  // L3 lifted to L2 by a guard edit, then restored: each change told once, L3 again since it was left.
  replace_file(guards, notify_guards(receiver.url(), "5%"));
  REQUIRE(level_of(wait_decision(ca, at_level("L2"))) == "L2");
  REQUIRE(level_of(wait_decision(cb, at_level("L2"))) == "L2");
  REQUIRE(claims_settled(4));
  replace_file(guards, notify_guards(receiver.url(), "10%"));
  REQUIRE(level_of(wait_decision(cb, at_level("L3"))) == "L3");
  REQUIRE(level_of(wait_decision(ca, at_level("L3"))) == "L3");
  REQUIRE(claims_settled(6));
  CHECK(both(claimed) == 3);
  CHECK(both(elsewhere) == 3);
  REQUIRE(receiver.wait_for(3, 5s));
  REQUIRE(wait_until([&] { return both(sent) == 3; }, 5s));
  CHECK(hook_levels(receiver) == std::vector<std::string>{"L3", "L2", "L3"});
  CHECK(both(unavailable) == 0);

  // Redis down: the same edit is told by both sidecars (at least once beats never).
  redis.kill();
  REQUIRE(wait_redis_down(a));
  REQUIRE(wait_redis_down(b));
  replace_file(guards, notify_guards(receiver.url(), "5%"));
  REQUIRE(level_of(wait_decision(ca, at_level("L2"))) == "L2");
  REQUIRE(level_of(wait_decision(cb, at_level("L2"))) == "L2");
  REQUIRE(claims_settled(8));
  CHECK(a.metric(unavailable) == 1);
  CHECK(b.metric(unavailable) == 1);
  REQUIRE(receiver.wait_for(5, 5s));
  REQUIRE(wait_until([&] { return both(sent) == 5; }, 5s));
  hooks = receiver.hooks();
  REQUIRE(hooks.size() == 5);
  for (std::size_t i = 3; i < 5; ++i) {
    CHECK(str(json_of(hooks[i].body), "level") == "L2");
    CHECK(hooks[i].signature == "sha256=" + hmac_hex(secret, hooks[i].timestamp + "." + hooks[i].body));
  }
  CHECK(both(sent) == 5);
  for (auto* sc : {&a, &b}) CHECK(sc->proc().output().find("sent without a cluster claim") != std::string::npos);
}
