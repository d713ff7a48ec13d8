// For integration tests and the bench: a fake of Aforo's two decision endpoints, speaking their real
// shapes (docs/design/event-fields.md#aforo-decision-endpoints): POST /api/v1/quota/check {customerId, metricName}
// (X-API-Key + X-Tenant-Id) answering 200 {decision, reason, currentUsage, limit, retryAfterMs, tierName, headers{}}
// (optionally wrapped in {success, data}), and GET /internal/v1/margin-guard/quick-check?tenantId=..&scopeType=
// CUSTOMER&scopeId=.. (X-Tenant-Id) answering {allowed, level, throttleRate, retryAfterSeconds,
// message}. A request missing a field or header the real endpoint needs gets 400. Answers can be
// slowed down or forced to a status; calls are counted per customer. Runs the daemon's own HTTP
// server on a private io_context thread. Header-only.
#pragma once

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/url/parse.hpp>
#include <rapidjson/document.h>

#include "io/http/http_server.hpp"
#include "io/http/router.hpp"

namespace aforo::fake {

class fake_aforo_api {
 public:
  /// What one endpoint does: the JSON answer per customer (a default for the others), a delay, a
  /// forced status (0 = answer normally).
  struct endpoint {
    std::string default_answer;
    std::map<std::string, std::string> answers;  // by customer id
    std::chrono::milliseconds delay{0};
    int forced_status = 0;
    std::map<std::string, int> calls;  // by customer id (quota: "customer/metric")
    int total = 0;
    std::vector<std::pair<std::string, std::string>> last_headers;
    std::string last_target, last_body;
  };

  /// listen: "127.0.0.1:0" picks a free port (url() names it).
  explicit fake_aforo_api(bool wrap = true, std::string listen = "127.0.0.1:0")
      : wrap_(wrap), work_(ioc_.get_executor()) {
    quota_.default_answer =
        R"({"decision":"ALLOW","reason":"ok","currentUsage":1,"limit":1000,"retryAfterMs":0,"tierName":"pro","headers":{}})";
    margin_.default_answer = R"({"allowed":true,"level":"NONE","throttleRate":100,"retryAfterSeconds":0,"message":""})";
    routes_.add("POST", "/api/v1/quota/check",
                [this](io::http_request& req, io::respond_fn respond) { handle(req, std::move(respond), true); });
    routes_.add("GET", "/internal/v1/margin-guard/quick-check",
                [this](io::http_request& req, io::respond_fn respond) { handle(req, std::move(respond), false); });
    // {"quota":N,"margin":M}: calls answered so far (for the bench, which runs this as a program).
    routes_.add_sync("GET", "/stats", [this](io::http_request&) {
      std::lock_guard lock(mu_);
      return io::http_response::json(
          200, R"({"quota":)" + std::to_string(quota_.total) + R"(,"margin":)" + std::to_string(margin_.total) + "}");
    });
    thread_ = std::thread([this] { ioc_.run(); });
    std::promise<std::string> bound;
    auto fut = bound.get_future();
    boost::asio::post(ioc_, [this, &bound, &listen] {
      server_ = std::make_unique<io::http_server>(ioc_, routes_, io::server_limits{});
      auto addr = server_->listen(listen, 0600);
      server_->start();
      bound.set_value(addr);
    });
    address_ = fut.get();
  }

  ~fake_aforo_api() {
    std::promise<void> stopped;
    boost::asio::post(ioc_, [this, &stopped] {
      server_->stop([] {});
      stopped.set_value();
    });
    stopped.get_future().wait();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  fake_aforo_api(const fake_aforo_api&) = delete;
  fake_aforo_api& operator=(const fake_aforo_api&) = delete;

  [[nodiscard]] std::string url() const { return "http://" + address_; }

  /// The quota answer (the unwrapped data object) for one customer, or for every other one ("").
  void set_quota(const std::string& customer, std::string answer) { set(quota_, customer, std::move(answer)); }
  void set_margin(const std::string& customer, std::string answer) { set(margin_, customer, std::move(answer)); }
  void set_delay(std::chrono::milliseconds quota, std::chrono::milliseconds margin) {
    std::lock_guard lock(mu_);
    quota_.delay = quota;
    margin_.delay = margin;
  }
  /// Answers this status (e.g. 500) on both endpoints; 0 = answer again.
  void set_status(int status) {
    std::lock_guard lock(mu_);
    quota_.forced_status = margin_.forced_status = status;
  }
  [[nodiscard]] int quota_calls(const std::string& key = "") const { return count(quota_, key); }
  [[nodiscard]] int margin_calls(const std::string& customer = "") const { return count(margin_, customer); }
  [[nodiscard]] int bad_requests() const {
    std::lock_guard lock(mu_);
    return bad_;
  }
  /// A header of the last call to an endpoint (case-insensitive name).
  [[nodiscard]] std::string last_header(bool quota, const std::string& name) const {
    std::lock_guard lock(mu_);
    io::http_request r;
    r.headers = (quota ? quota_ : margin_).last_headers;
    return std::string(r.header(name));
  }
  [[nodiscard]] std::string last_target(bool quota) const {
    std::lock_guard lock(mu_);
    return (quota ? quota_ : margin_).last_target;
  }
  [[nodiscard]] std::string last_body(bool quota) const {
    std::lock_guard lock(mu_);
    return (quota ? quota_ : margin_).last_body;
  }

 private:
  void set(endpoint& e, const std::string& customer, std::string answer) {
    std::lock_guard lock(mu_);
    if (customer.empty())
      e.default_answer = std::move(answer);
    else
      e.answers[customer] = std::move(answer);
  }
  int count(const endpoint& e, const std::string& key) const {
    std::lock_guard lock(mu_);
    if (key.empty()) return e.total;
    const auto it = e.calls.find(key);
    return it == e.calls.end() ? 0 : it->second;
  }

  // The customer the request is about, or empty when it lacks what the real endpoint requires.
  static std::string customer_of(const io::http_request& req, bool quota, std::string& key) {
    if (req.header("X-Tenant-Id").empty()) return {};
    if (quota) {
      if (req.header("X-API-Key").empty() && req.header("Authorization").empty()) return {};
      rapidjson::Document d;
      d.Parse(req.body.c_str());
      if (d.HasParseError() || !d.IsObject() || !d.HasMember("customerId") || !d["customerId"].IsString() ||
          !d.HasMember("metricName") || !d["metricName"].IsString())
        return {};
      std::string c = d["customerId"].GetString();
      key = c + "/" + d["metricName"].GetString();
      return c;
    }
    auto u = boost::urls::parse_origin_form(req.target);
    if (!u) return {};
    std::string tenant, scope_type, scope_id;
    for (const auto& p : u->params()) {
      if (p.key == "tenantId")
        tenant = p.value;
      else if (p.key == "scopeType")
        scope_type = p.value;
      else if (p.key == "scopeId")
        scope_id = p.value;
    }
    if (tenant.empty() || scope_type != "CUSTOMER" || scope_id.empty()) return {};
    key = scope_id;
    return scope_id;
  }

  void handle(io::http_request& req, io::respond_fn respond, bool quota) {
    io::http_response res;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard lock(mu_);
      endpoint& e = quota ? quota_ : margin_;
      e.last_headers = req.headers;
      e.last_target = req.target;
      e.last_body = req.body;
      std::string key;
      const std::string customer = customer_of(req, quota, key);
      delay = e.delay;
      if (customer.empty()) {
        ++bad_;
        res = io::http_response::error(400, "bad_request", "missing field or header");
      } else {
        ++e.total;
        ++e.calls[key];
        if (e.forced_status != 0) {
          res = io::http_response::error(e.forced_status, "forced", "forced by the test");
        } else {
          const auto it = e.answers.find(customer);
          const std::string& data = it == e.answers.end() ? e.default_answer : it->second;
          res.body = wrap_ ? R"({"success":true,"data":)" + data + "}" : data;
        }
      }
    }
    if (delay.count() == 0) return respond(std::move(res));
    auto timer = std::make_shared<boost::asio::steady_timer>(ioc_, delay);
    timer->async_wait([timer, respond = std::move(respond),
                       res = std::move(res)](const boost::system::error_code&) mutable { respond(std::move(res)); });
  }

  bool wrap_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  io::router routes_;
  std::unique_ptr<io::http_server> server_;
  std::string address_;
  mutable std::mutex mu_;
  endpoint quota_, margin_;
  int bad_ = 0;
};

}  // namespace aforo::fake
