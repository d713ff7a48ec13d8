// For integration tests: a fake Kong Admin API (GET /services, /routes, /plugins in Kong's JSON
// shapes, split into pages linked by `next`/`offset`) and a fake control-plane catalog receiver
// (POST /v1/catalog). Both run the daemon's own HTTP server on a private io_context thread inside
// the test process. Header-only; compiled into integration_tests.
#pragma once

#include <fcntl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "io/http/http_server.hpp"
#include "io/http/router.hpp"

namespace aforo::fake {

/// A loopback HTTP server on its own thread; subclasses add routes before start().
class in_process_server {
 public:
  in_process_server() : work_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  virtual ~in_process_server() { shutdown(); }
  /// Stops serving and joins the thread; derived classes call it first in their destructor.
  void shutdown() {
    if (!thread_.joinable()) return;
    on_io([this] {
      if (server_) server_->stop([] {});
      return 0;
    });
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  in_process_server(const in_process_server&) = delete;
  in_process_server& operator=(const in_process_server&) = delete;

  /// "http://127.0.0.1:PORT"
  [[nodiscard]] std::string url() const { return "http://" + address_; }

 protected:
  void start() {
    address_ = on_io([this] {
      server_ = std::make_unique<io::http_server>(ioc_, routes_, io::server_limits{});
      auto bound = server_->listen("127.0.0.1:0", 0600);
      // Asio sockets are not close-on-exec; the sidecars the test spawns must not inherit them.
      for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::atoi(e.path().filename().c_str());
        if (fd > 2) ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
      }
      server_->start();
      return bound;
    });
  }

  template <class F>
  auto on_io(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    boost::asio::post(ioc_, [&task] { task(); });
    return fut.get();
  }

  static std::string header_of(const io::http_request& req, const std::string& name) {
    for (const auto& [k, v] : req.headers)
      if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
          }))
        return v;
    return {};
  }

  io::router routes_;

 private:
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<io::http_server> server_;
  std::string address_;
};

/// Serves each resource as pages of JSON objects (raw text, as Kong writes them). Page i > 0 is
/// requested with `?offset=page-i`; every page but the last carries `next` and `offset`.
class fake_kong_admin : public in_process_server {
 public:
  fake_kong_admin() {
    for (const char* r : {"/services", "/routes", "/plugins"}) {
      const std::string resource = r;
      routes_.add_sync("GET", resource, [this, resource](io::http_request& req) { return answer(resource, req); });
    }
    start();
  }
  ~fake_kong_admin() override { shutdown(); }

  /// The pages of one resource ("/services"), each a list of raw JSON objects.
  void set_pages(const std::string& resource, std::vector<std::vector<std::string>> pages) {
    std::lock_guard lock(mu_);
    pages_[resource] = std::move(pages);
  }
  /// Answers this status to every request; 0 = serve the pages.
  void set_status(int status) {
    std::lock_guard lock(mu_);
    status_ = status;
  }
  [[nodiscard]] int requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  [[nodiscard]] std::string last_token() const {
    std::lock_guard lock(mu_);
    return last_token_;
  }

 private:
  io::http_response answer(const std::string& resource, io::http_request& req) {
    std::lock_guard lock(mu_);
    ++requests_;
    last_token_ = header_of(req, "Kong-Admin-Token");
    if (status_ != 0) return io::http_response::error(status_, "forced", "forced by the test");
    std::size_t page = 0;
    if (auto at = req.target.find("offset=page-"); at != std::string::npos)
      page = static_cast<std::size_t>(std::atoi(req.target.c_str() + at + 12));
    const auto& pages = pages_[resource];
    std::string body = "{\"data\":[";
    if (page < pages.size())
      for (std::size_t i = 0; i < pages[page].size(); ++i) body += (i ? "," : "") + pages[page][i];
    body += "],";
    if (page + 1 < pages.size()) {
      const std::string off = "page-" + std::to_string(page + 1);
      body += "\"next\":\"" + resource + "?offset=" + off + "\",\"offset\":\"" + off + "\"}";
    } else {
      body += "\"next\":null}";
    }
    return io::http_response::json(200, body);
  }

  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::vector<std::string>>> pages_;
  int status_ = 0;
  int requests_ = 0;
  std::string last_token_;
};

/// Receives POST /v1/catalog; keeps the bodies it answered 2xx to and the last request's headers.
class fake_catalog_receiver : public in_process_server {
 public:
  fake_catalog_receiver() {
    routes_.add_sync("POST", "/v1/catalog", [this](io::http_request& req) {
      std::lock_guard lock(mu_);
      ++requests_;
      api_key_ = header_of(req, "X-API-Key");
      tenant_ = header_of(req, "X-Tenant-Id");
      if (status_ != 0) return io::http_response::error(status_, "forced", "forced by the test");
      accepted_.push_back(req.body);
      return io::http_response::json(202, "{}");
    });
    start();
  }
  ~fake_catalog_receiver() override { shutdown(); }
  void set_status(int status) {
    std::lock_guard lock(mu_);
    status_ = status;
  }
  [[nodiscard]] std::vector<std::string> accepted() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  [[nodiscard]] int requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  [[nodiscard]] std::string api_key() const {
    std::lock_guard lock(mu_);
    return api_key_;
  }
  [[nodiscard]] std::string tenant() const {
    std::lock_guard lock(mu_);
    return tenant_;
  }

 private:
  mutable std::mutex mu_;
  int status_ = 0;
  int requests_ = 0;
  std::vector<std::string> accepted_;
  std::string api_key_;
  std::string tenant_;
};

}  // namespace aforo::fake
