// Shared helpers of the margin guard integration tests: a webhook receiver that verifies the
// HMAC signature, the test snapshot and guard files, usage batches and waiting for a decision.
#pragma once

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
#include "io/redis/redis_client.hpp"
#include "support/testkit.hpp"

namespace margin_itest {

using namespace aforo::testkit;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

inline const std::string secret = "whsec_test_margin";

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
    return wait_until([&] { return hooks().size() >= n; }, timeout);
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

inline std::string hmac_hex(const std::string& key, const std::string& text) {
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

inline rapidjson::Document json_of(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

inline std::string str(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : std::string("<absent>");
}

inline const char* const snapshot_yaml = R"(
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

inline std::string guards_yaml(const std::string& hook_url, const std::string& mode) {
  return "guards:\n"
         "  - id: default\n"
         "    mode: " +
         mode +
         "\n"
         "    min_margin: 25%\n"
         "    level_1: { threshold: 30%, notify: [\"" +
         hook_url +
         "\"] }\n"
         "    level_2: { threshold: 20%, throttle_rate: 5/s }\n"
         "    level_3: { threshold: 10%, retry_after: 1800s }\n";
}

inline std::string check_body() {
  return R"({"customer_id":"cust_m","service":"search","method":"GET","path":"/v1/search"})";
}

// One event: quantity x 0.5 unit cost plus metadata.cost.
inline std::string usage_batch(int seq, const std::string& cost) {
  return R"({"events":[{"customerId":"cust_m","metricName":"search_calls","quantity":2,)"
         R"("occurredAt":"2026-11-26T06:00:00Z","idempotencyKey":"m-)" +
         std::to_string(seq) + R"(","metadata":{"gateway":"kong","cost":)" + cost + "}}]}";
}

// Posts /v1/check until pred(decision JSON) holds or timeout; returns the last reply's JSON.
template <class Pred>
rapidjson::Document wait_decision(http_client& c, Pred pred, millis timeout = 5s) {
  rapidjson::Document d;
  wait_until(
      [&] {
        const auto r = c.post("/v1/check", check_body());
        REQUIRE(r.status == 200);
        d = json_of(r.body);
        return pred(static_cast<const rapidjson::Document&>(d));
      },
      timeout);
  return d;
}

}  // namespace margin_itest
