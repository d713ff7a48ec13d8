// For integration tests: a fake Aforo control plane serving GET /v1/entitlements/snapshot with an
// ETag (304 on a matching If-None-Match), counting requests, and able to go down (connections
// refused) and come back on the same port. Runs the daemon's own HTTP server on a private
// io_context thread inside the test process. Header-only; compiled into integration_tests.
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
#include <stdexcept>
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

class fake_control_plane {
 public:
  struct counts {
    int requests = 0;      ///< snapshot requests answered (any status)
    int conditional = 0;   ///< requests that carried If-None-Match
    int not_modified = 0;  ///< 304 answers
    int full = 0;          ///< 200 answers with a body
  };

  fake_control_plane() : work_(ioc_.get_executor()) {
    routes_.add_sync("GET", "/v1/entitlements/snapshot", [this](io::http_request& req) { return answer(req); });
    thread_ = std::thread([this] { ioc_.run(); });
    address_ = on_io([this] {
      server_ = std::make_unique<io::http_server>(ioc_, routes_, io::server_limits{});
      auto bound = server_->listen("127.0.0.1:0", 0600);
      keep_from_children();
      server_->start();
      return bound;
    });
  }

  ~fake_control_plane() {
    on_io([this] {
      stop_server();
      return 0;
    });
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  fake_control_plane(const fake_control_plane&) = delete;
  fake_control_plane& operator=(const fake_control_plane&) = delete;

  /// "http://127.0.0.1:PORT"
  [[nodiscard]] std::string url() const { return "http://" + address_; }

  /// The snapshot JSON served from now on, with its ETag (quoted as sent, e.g. "\"v7\"").
  void set_snapshot(std::string body, std::string etag) {
    std::lock_guard lock(mu_);
    body_ = std::move(body);
    etag_ = std::move(etag);
  }
  /// Answers this status (e.g. 500, 401) to every request; 0 = serve the snapshot again.
  void set_status(int status) {
    std::lock_guard lock(mu_);
    forced_status_ = status;
  }

  /// Closes the listener and every connection: new connections are refused.
  void go_down() {
    on_io([this] {
      stop_server();
      return 0;
    });
  }
  /// Listens again on the same port.
  void come_up() {
    on_io([this] {
      server_ = std::make_unique<io::http_server>(ioc_, routes_, io::server_limits{});
      server_->listen(address_, 0600);
      keep_from_children();
      server_->start();
      return 0;
    });
  }

  [[nodiscard]] counts stats() const {
    std::lock_guard lock(mu_);
    return counts_;
  }
  /// A header of the last request (name as sent by the client, case-insensitive lookup).
  [[nodiscard]] std::string last_header(const std::string& name) const {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : last_headers_)
      if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
          }))
        return v;
    return {};
  }

 private:
  io::http_response answer(io::http_request& req) {
    std::lock_guard lock(mu_);
    ++counts_.requests;
    last_headers_ = req.headers;
    const std::string inm(req.header("If-None-Match"));
    if (!inm.empty()) ++counts_.conditional;
    if (forced_status_ != 0) return io::http_response::error(forced_status_, "forced", "forced by the test");
    io::http_response res;
    res.headers.emplace_back("ETag", etag_);
    if (!inm.empty() && inm == etag_) {
      ++counts_.not_modified;
      res.status = 304;
      return res;
    }
    ++counts_.full;
    res.body = body_;
    return res;
  }

  // Asio opens sockets without close-on-exec, and the sidecars this test spawns would inherit the
  // listener and keep the port open after go_down(). Marks every descriptor above stderr close-on-exec.
  static void keep_from_children() {
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      const int fd = std::atoi(e.path().filename().c_str());
      if (fd > 2) ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
    }
  }

  void stop_server() {
    if (!server_) return;
    // Parked servers stay alive until destruction: a stopped server's sessions may still hold its state.
    server_->stop([] {});
    stopped_.push_back(std::move(server_));
  }

  template <class F>
  auto on_io(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    boost::asio::post(ioc_, [&task] { task(); });
    return fut.get();
  }

  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  io::router routes_;
  std::unique_ptr<io::http_server> server_;
  std::vector<std::unique_ptr<io::http_server>> stopped_;
  std::string address_;

  mutable std::mutex mu_;
  std::string body_ = "{}";
  std::string etag_ = "\"0\"";
  int forced_status_ = 0;
  counts counts_;
  std::vector<std::pair<std::string, std::string>> last_headers_;
};

}  // namespace aforo::fake
