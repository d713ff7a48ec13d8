// The margin guard through the real aforo-sidecar: metered cost crossing 30%, 20% and 10% margin
// gives the L1 upstream header and one signed webhook, then throttling at the configured rate, then
// 429 margin_block; a guard file edited while running switches to alert_only without a restart.
// Two sidecars sharing one real redis-server guard a customer on the COGS of both, and a Redis
// restart loses and doubles no cost; they send each level change's webhook once (the notice claim
// in Redis), and both send it while Redis is down.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <rapidjson/document.h>

#include "core/entitlements/period.hpp"
#include "core/entitlements/quota.hpp"
#include "core/entitlements/redis_keys.hpp"
#include "core/margin/level_notice.hpp"
#include "net/redis_client.hpp"
#include "support/testkit.hpp"

using namespace aforo::testkit;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

const std::string secret = "whsec_test_margin";

struct received_hook {
  std::string body;
  std::string timestamp;
  std::string signature;
};

// A webhook receiver on 127.0.0.1: records every POST and answers 200. Each connection is served
// on its own thread (keep-alive until the client closes), so several sidecars can post at once.
class hook_receiver {
 public:
  hook_receiver() : acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { run(); });
  }
  ~hook_receiver() {
    stop_ = true;
    try {  // wake the blocking accept
      boost::asio::io_context ioc;
      tcp::socket s(ioc);
      s.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
    } catch (...) {
    }
    thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& s : conns_) ::shutdown(s->native_handle(), SHUT_RDWR);  // ends the blocking reads
    }
    for (auto& t : workers_) t.join();
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/aforo"; }
  std::vector<received_hook> hooks() {
    std::lock_guard<std::mutex> lock(mu_);
    return hooks_;
  }
  bool wait_for(std::size_t n, millis timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (hooks().size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return hooks().size() >= n;
  }

 private:
  void run() {
    while (!stop_) {
      boost::system::error_code ec;
      auto sock = std::make_shared<tcp::socket>(ioc_);
      acceptor_.accept(*sock, ec);
      if (ec || stop_) continue;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(sock);
      workers_.emplace_back([this, sock] { serve(*sock); });
    }
  }

  void serve(tcp::socket& sock) {
    boost::system::error_code ec;
    beast::flat_buffer buf;
    for (;;) {  // keep-alive: serve until the client closes
      http::request<http::string_body> req;
      http::read(sock, buf, req, ec);
      if (ec) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        hooks_.push_back({req.body(), std::string(req["X-Aforo-Timestamp"]), std::string(req["X-Aforo-Signature"])});
      }
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.keep_alive(req.keep_alive());
      res.body() = "ok";
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec || !req.keep_alive()) break;
    }
  }

  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<received_hook> hooks_;
  std::vector<std::shared_ptr<tcp::socket>> conns_;
  std::vector<std::thread> workers_;  // one per connection, joined on destruction
  std::thread thread_;
};

std::string hmac_hex(const std::string& key, const std::string& text) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), mac, &len);
  std::string out;
  char hex[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", mac[i]);
    out += hex;
  }
  return out;
}

rapidjson::Document json_of(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::string str(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : std::string("<absent>");
}

void replace_file(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
  std::filesystem::rename(tmp, path);
}

const char* const snapshot_yaml = R"(
version: "m1"
customers:
  cust_m:
    plan: pro
    status: active
    features:
      search: {}
    revenue: { amount: 100.00, period: month }
features:
  - feature: search
    match: { service: search }
    metric: search_calls
    unit_cost: 0.5
)";

std::string guards_yaml(const std::string& hook_url, const std::string& mode) {
  return "guards:\n"
         "  - id: default\n"
         "    mode: " + mode + "\n"
         "    min_margin: 25%\n"
         "    level_1: { threshold: 30%, notify: [\"" + hook_url + "\"] }\n"
         "    level_2: { threshold: 20%, throttle_rate: 5/s }\n"
         "    level_3: { threshold: 10%, retry_after: 1800s }\n";
}

std::string check_body() { return R"({"customer_id":"cust_m","service":"search","method":"GET","path":"/v1/search"})"; }

// One event: quantity x 0.5 unit cost plus metadata.cost.
std::string usage_batch(int seq, const std::string& cost) {
  return R"({"events":[{"customerId":"cust_m","metricName":"search_calls","quantity":2,)"
         R"("occurredAt":"2026-11-26T06:00:00Z","idempotencyKey":"m-)" + std::to_string(seq) +
         R"(","metadata":{"gateway":"kong","cost":)" + cost + "}}]}";
}

// Posts /v1/check until pred(decision JSON) holds or timeout; returns the last reply's JSON.
template <class Pred>
rapidjson::Document wait_decision(http_client& c, Pred pred, millis timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto r = c.post("/v1/check", check_body());
    REQUIRE(r.status == 200);
    auto d = json_of(r.body);
    if (pred(d) || std::chrono::steady_clock::now() > deadline) return d;
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace

TEST_CASE("margin: cost crossing 30%, 20% and 10% alerts, throttles and blocks, and a guard edit applies live",
          "[margin]") {
  hook_receiver receiver;
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", snapshot_yaml);
  const std::string guards = dir.write("guards.yaml", guards_yaml(receiver.url(), "enforce"));
  sidecar_process sc("entitlements:\n  source: \"file:" + snap + "\"\n"
                     "margin_guard:\n  config: \"" + guards + "\"\n  reload_interval: 200ms\n",
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
    std::this_thread::sleep_for(2ms);
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
  d = wait_decision(c, [](const rapidjson::Document& x) { return str(x, "reason") == "margin_alert"; }, 5s);
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
  REQUIRE(a.proc().wait_for_output("redis connected", 10s));
  REQUIRE(b.proc().wait_for_output("redis connected", 10s));
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
  const std::string yaml = "entitlements:\n  source: \"file:" + snap + "\"\n"
                           "margin_guard:\n  config: \"" + guards + "\"\n"
                           "cache: { redis: \"" + redis.url() + "\", sync_interval: 100ms, redis_timeout: 200ms }\n";
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
  REQUIRE(a.proc().wait_for_output("redis unavailable", 5s));
  REQUIRE(b.proc().wait_for_output("redis unavailable", 5s));
  REQUIRE(ca.post("/v1/ingest/batch", usage_batch(3, "2")).status == 202);
  d = wait_decision(ca, [](const rapidjson::Document& x) { return margin_is(x, 5.0); });
  CHECK(margin_is(d, 5.0));
  CHECK(str(d, "reason") == "margin_block");
  d = wait_decision(cb, blocked);
  CHECK(margin_is(d, 8.0));  // B cannot know yet

  // Back on the same port, empty: both converge on 95.
  const auto a_from = a.proc().output().find("redis unavailable");
  const auto b_from = b.proc().output().find("redis unavailable");
  redis.start();
  REQUIRE(a.proc().wait_for_output("redis connected", 10s, a_from));
  REQUIRE(b.proc().wait_for_output("redis connected", 10s, b_from));
  CHECK(b.proc().wait_for_output("sending every known counter contribution again", 5s, b_from));
  auto five = [](const rapidjson::Document& x) { return margin_is(x, 5.0); };
  for (int round = 0; round < 3; ++round) {  // and stay there: nothing is pushed twice
    d = wait_decision(cb, five);
    CHECK(margin_is(d, 5.0));
    CHECK(str(d, "reason") == "margin_block");
    d = wait_decision(ca, five);
    CHECK(margin_is(d, 5.0));
    CHECK(str(d, "reason") == "margin_block");
    std::this_thread::sleep_for(200ms);
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
namespace net = aforo::net;

// A connection to a test Redis driven from the test thread.
struct redis_conn {
  boost::asio::io_context ioc;
  net::redis_client client;

  explicit redis_conn(const redis_server& r) : client(ioc, options(r)) {
    client.start();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!client.connected() && std::chrono::steady_clock::now() < deadline) ioc.run_for(2ms);
    REQUIRE(client.connected());
  }
  static net::redis_client_options options(const redis_server& r) {
    std::string err;
    auto ep = net::parse_redis_url(r.url(), err);
    REQUIRE(ep);
    net::redis_client_options o;
    o.endpoint = *ep;
    return o;
  }
  net::redis_result call(std::vector<std::string> args) {
    std::optional<net::redis_result> out;
    client.command(std::move(args), [&](net::redis_result r) { out = std::move(r); });
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
         "    level_1: { threshold: 30%, notify: [\"" + hook_url + "\"] }\n"
         "    level_2: { threshold: 20%, throttle_rate: 5/s }\n"
         "    level_3: { threshold: " + l3_threshold + ", retry_after: 1800s }\n";
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
        REQUIRE(r.reply.type == net::redis_value::kind::integer);
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
TEST_CASE("margin: two sidecars sharing one Redis send one webhook per level change, and both send while Redis "
          "is down",
          "[margin][redis][sidecars]") {
  hook_receiver receiver;
  redis_server redis(free_port());
  temp_dir dir;
  const std::string snap = dir.write("snapshot.yaml", snapshot_yaml);
  const std::string guards = dir.write("guards.yaml", notify_guards(receiver.url(), "10%"));
  const std::string yaml = "entitlements:\n  source: \"file:" + snap + "\"\n"
                           "margin_guard:\n  config: \"" + guards + "\"\n  reload_interval: 100ms\n"
                           "cache: { redis: \"" + redis.url() + "\", sync_interval: 100ms, redis_timeout: 200ms }\n";
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
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (both(claimed) + both(elsewhere) + both(unavailable) < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
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
  std::this_thread::sleep_for(300ms);  // a second webhook would be here by now
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
  std::this_thread::sleep_for(300ms);
  CHECK(hook_levels(receiver) == std::vector<std::string>{"L3", "L2", "L3"});
  CHECK(both(unavailable) == 0);

  // Redis down: the same edit is told by both sidecars (at least once beats never).
  redis.kill();
  REQUIRE(a.proc().wait_for_output("redis unavailable", 5s));
  REQUIRE(b.proc().wait_for_output("redis unavailable", 5s));
  replace_file(guards, notify_guards(receiver.url(), "5%"));
  REQUIRE(level_of(wait_decision(ca, at_level("L2"))) == "L2");
  REQUIRE(level_of(wait_decision(cb, at_level("L2"))) == "L2");
  REQUIRE(claims_settled(8));
  CHECK(a.metric(unavailable) == 1);
  CHECK(b.metric(unavailable) == 1);
  REQUIRE(receiver.wait_for(5, 5s));
  std::this_thread::sleep_for(300ms);
  hooks = receiver.hooks();
  REQUIRE(hooks.size() == 5);
  for (std::size_t i = 3; i < 5; ++i) {
    CHECK(str(json_of(hooks[i].body), "level") == "L2");
    CHECK(hooks[i].signature == "sha256=" + hmac_hex(secret, hooks[i].timestamp + "." + hooks[i].body));
  }
  CHECK(both(sent) == 5);
  for (auto* sc : {&a, &b}) CHECK(sc->proc().output().find("sent without a cluster claim") != std::string::npos);
}
