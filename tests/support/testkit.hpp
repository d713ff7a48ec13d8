// Integration-test support: temp dirs, child processes with captured output, a small blocking HTTP
// client (keep-alive, TCP or unix socket) and raw socket exchanges for malformed input.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace aforo::testkit {

using namespace std::chrono_literals;
using millis = std::chrono::milliseconds;

/// Polls `done` every `every` until it returns true or `timeout` passes; returns its last answer. Tests
/// wait on state this way (a metric, an endpoint, a file, the fake ingest's /_control), never on a fixed sleep.
template <class F>
bool wait_until(F&& done, millis timeout = 10s, millis every = 20ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(every);
  }
  return true;
}

/// A fresh directory under /tmp, removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }
  /// Writes a file (creating parent dirs) and returns its path.
  std::string write(std::string_view name, std::string_view content) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
/// Writes a file through a temporary and a rename, so a sidecar watching it never reads it half written.
/// Throws std::runtime_error when the temporary cannot be written.
void replace_file(const std::string& path, const std::string& content);

/// A child process; its stdout and stderr go to one log file. Killed (SIGKILL) on destruction if running.
class process {
 public:
  process(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  bool running();
  void signal(int signo);
  /// The exit code, or 128 + signal when it was killed by one; nullopt if still running after timeout.
  std::optional<int> wait_exit(millis timeout);
  [[nodiscard]] std::string output() const;
  /// Waits until the output (from byte offset `from`) contains needle; false on timeout or exit.
  bool wait_for_output(std::string_view needle, millis timeout, std::size_t from = 0);
  /// Waits for "listening on http://HOST:PORT" (the n-th such line) and returns "HOST:PORT".
  std::string wait_for_listen(millis timeout = 10s, int nth = 0);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

struct http_reply {
  int status = 0;  ///< 0 when the exchange failed
  std::string body;
  std::map<std::string, std::string> headers;  ///< names lower-cased
  std::string error;                           ///< what failed, when status is 0
  [[nodiscard]] std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

/// A blocking HTTP/1.1 client that keeps its connection alive between requests.
class http_client {
 public:
  /// "127.0.0.1:8750" or "unix:/path".
  explicit http_client(std::string address, millis timeout = 10s);
  ~http_client();
  http_client(http_client&&) noexcept;
  http_reply request(std::string_view method, std::string_view target, std::string_view body = {},
                     const std::vector<std::pair<std::string, std::string>>& headers = {});
  http_reply get(std::string_view target) { return request("GET", target); }
  http_reply post(std::string_view target, std::string_view body,
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request("POST", target, body, headers);
  }
  /// How many connections this client has opened (1 when keep-alive held).
  [[nodiscard]] int connections_opened() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Sends raw bytes (optionally half-closing the write side), reads until the peer closes or timeout.
std::string raw_exchange(const std::string& address, std::string_view bytes, bool half_close = true,
                         millis timeout = 5s);

/// A raw TCP connection for tests that must control when each byte is sent.
class raw_connection {
 public:
  explicit raw_connection(const std::string& address, millis timeout = 5s);
  ~raw_connection();
  void send(std::string_view bytes);
  /// Reads until the peer closes or the timeout passes.
  std::string read_all();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests that start a server next).
int free_port();

/// Paths of the programs under test (from the build) and the source tree.
std::string sidecar_bin();
std::string fake_ingest_bin();
std::string source_dir();

/// A running aforo-sidecar with a config written into its own temp dir.
class sidecar_process {
 public:
  /// `yaml` is the config text; `listen` is added unless the yaml sets it ("127.0.0.1:0").
  explicit sidecar_process(std::string yaml, std::vector<std::string> extra_env = {});
  [[nodiscard]] const std::string& address() const { return address_; }
  [[nodiscard]] const temp_dir& dir() const { return dir_; }
  [[nodiscard]] process& proc() { return *proc_; }
  [[nodiscard]] http_client client() const { return http_client(address_); }
  /// The value of one /metrics series (name with its labels, e.g. `x_total{reason="a"}`); -1 if absent.
  [[nodiscard]] double metric(const std::string& series) const;
  /// Restarts with the same config and data dir (after it exited or was killed).
  void restart();
  [[nodiscard]] const std::string& config_path() const { return config_path_; }

 private:
  void start();
  temp_dir dir_;
  std::string config_path_;
  std::vector<std::string> env_;
  std::unique_ptr<process> proc_;
  std::string address_;
};

/// Waits until the sidecar's /metrics series (as sidecar_process::metric: -1 when absent) satisfies
/// pred; returns the last value read, so a failed wait reports what it saw.
template <class Pred>
double wait_metric(const sidecar_process& sc, const std::string& series, Pred&& pred, millis timeout = 10s) {
  double v = -1;
  wait_until([&] { return pred(v = sc.metric(series)); }, timeout);
  return v;
}

/// Waits until the sidecar's Redis link is up (aforo_sidecar_redis_up 1, set as it logs "redis connected")
/// after at least `connects` connections in all (aforo_sidecar_redis_connects_total): 2 after a reconnect.
bool wait_redis_connected(const sidecar_process& sc, int connects = 1, millis timeout = 10s);
/// Waits until the sidecar's Redis link, once up, is down (aforo_sidecar_redis_up 0, set as it logs
/// "redis unavailable"). A sidecar that never connected is down from the start: wait on its log line.
bool wait_redis_down(const sidecar_process& sc, millis timeout = 5s);

/// Waits until the file at path contains needle (from byte offset `from`); false on timeout.
bool wait_file_contains(const std::string& path, std::string_view needle, millis timeout = 10s, std::size_t from = 0);

/// A throwaway redis-server on 127.0.0.1 and a fixed port (so it can be restarted on the same
/// one), no persistence: a restart comes back empty. Throws when it does not start within 10 s.
class redis_server {
 public:
  explicit redis_server(int port);
  void start();
  /// SIGKILL, and waits for the exit.
  void kill();
  [[nodiscard]] process& proc() { return *proc_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  /// The sum of a hash's field values (a shared counter's total), read over a fresh connection;
  /// 0 when the key does not exist. Throws when Redis does not answer within 5 s.
  [[nodiscard]] std::int64_t hash_sum(const std::string& key) const;

 private:
  int port_;
  std::unique_ptr<process> proc_;
};

}  // namespace aforo::testkit
