// Integration-test support; see testkit.hpp.
#include "support/testkit.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <variant>

#include "io/redis/redis_client.hpp"

extern char** environ;

namespace aforo::testkit {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;

temp_dir::temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "aforo-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string temp_dir::write(std::string_view name, std::string_view content) const {
  const auto p = file(name);
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool wait_file_contains(const std::string& path, std::string_view needle, millis timeout, std::size_t from) {
  return wait_until(
      [&] {
        const auto text = read_file(path);
        return text.size() > from && text.find(needle, from) != std::string::npos;
      },
      timeout);
}

void replace_file(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

// ---------------------------------------------------------------- process

process::process(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  char tmpl[] = "/tmp/aforo-proc-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  log_path_ = tmpl;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Asio opens sockets without close-on-exec: a child must not inherit the test's listeners.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  for (auto& e : extra_env) env_store.push_back(std::move(e));
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

process::~process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_exit(5s);
  }
  ::unlink(log_path_.c_str());
}

bool process::running() {
  if (exit_code_) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  if (r == pid_)
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  else
    exit_code_ = -1;
  return false;
}

void process::signal(int signo) {
  if (running()) ::kill(pid_, signo);
}

std::optional<int> process::wait_exit(millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return exit_code_;
}

std::string process::output() const { return read_file(log_path_); }

bool process::wait_for_output(std::string_view needle, millis timeout, std::size_t from) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto out = output();
    if (out.size() > from && out.find(needle, from) != std::string::npos) return true;
    if (!running() || std::chrono::steady_clock::now() > deadline) {
      const auto last = output();
      return last.size() > from && last.find(needle, from) != std::string::npos;
    }
    std::this_thread::sleep_for(5ms);
  }
}

std::string process::wait_for_listen(millis timeout, int nth) {
  static const std::regex re(R"(listening on http://([0-9.\[\]:a-f]+:[0-9]+))");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto out = output();
    int i = 0;
    for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it, ++i)
      if (i == nth) return (*it)[1].str();
    if (!running() || std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("process did not report a listening address; output:\n" + out);
    std::this_thread::sleep_for(5ms);
  }
}

// ---------------------------------------------------------------- http client

namespace {

using tcp_socket = asio::ip::tcp::socket;
using unix_socket = asio::local::stream_protocol::socket;

void set_timeouts(int fd, millis timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

asio::ip::tcp::endpoint tcp_endpoint(const std::string& address) {
  const auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {asio::ip::make_address(host), static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))};
}

}  // namespace

struct http_client::impl {
  asio::io_context ioc;
  std::string address;
  millis timeout;
  std::variant<std::monostate, tcp_socket, unix_socket> sock;
  beast::flat_buffer buffer;
  int opened = 0;

  bool is_unix() const { return address.rfind("unix:", 0) == 0; }

  void connect() {
    buffer.clear();
    if (is_unix()) {
      unix_socket s(ioc);
      s.connect(asio::local::stream_protocol::endpoint(address.substr(5)));
      set_timeouts(s.native_handle(), timeout);
      sock.emplace<unix_socket>(std::move(s));
    } else {
      tcp_socket s(ioc);
      s.connect(tcp_endpoint(address));
      s.set_option(asio::ip::tcp::no_delay(true));
      set_timeouts(s.native_handle(), timeout);
      sock.emplace<tcp_socket>(std::move(s));
    }
    ++opened;
  }

  template <class F>
  void with_socket(F&& f) {
    if (auto* t = std::get_if<tcp_socket>(&sock))
      f(*t);
    else if (auto* u = std::get_if<unix_socket>(&sock))
      f(*u);
  }
};

http_client::http_client(std::string address, millis timeout) : impl_(std::make_unique<impl>()) {
  impl_->address = std::move(address);
  impl_->timeout = timeout;
}
http_client::~http_client() = default;
http_client::http_client(http_client&&) noexcept = default;

int http_client::connections_opened() const { return impl_->opened; }

http_reply http_client::request(std::string_view method, std::string_view target, std::string_view body,
                                const std::vector<std::pair<std::string, std::string>>& headers) {
  http_reply reply;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = std::holds_alternative<std::monostate>(impl_->sock);
    try {
      if (fresh) impl_->connect();
      http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
      req.set(http::field::host, "localhost");
      if (!body.empty() || method == "POST") req.set(http::field::content_type, "application/json");
      for (const auto& [k, v] : headers) req.set(k, v);
      req.body() = std::string(body);
      req.prepare_payload();
      req.keep_alive(true);
      http::response<http::string_body> res;
      beast::error_code ec;
      impl_->with_socket([&](auto& s) {
        http::write(s, req, ec);
        if (!ec) {
          http::response_parser<http::string_body> parser;
          parser.body_limit(256 * 1024 * 1024);
          http::read(s, impl_->buffer, parser, ec);
          if (!ec) res = parser.release();
        }
      });
      if (ec) {
        impl_->sock.emplace<std::monostate>();
        if (!fresh) continue;  // a kept-alive connection the server closed: retry once on a new one
        reply.error = ec.message();
        return reply;
      }
      reply.status = static_cast<int>(res.result_int());
      reply.body = std::move(res.body());
      for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        reply.headers[name] = std::string(f.value());
      }
      if (!res.keep_alive()) impl_->sock.emplace<std::monostate>();
      return reply;
    } catch (const std::exception& e) {
      impl_->sock.emplace<std::monostate>();
      reply.error = e.what();
      if (fresh) return reply;
    }
  }
  return reply;
}

std::string raw_exchange(const std::string& address, std::string_view bytes, bool half_close, millis timeout) {
  asio::io_context ioc;
  std::string out;
  auto run = [&](auto& s) {
    set_timeouts(s.native_handle(), timeout);
    boost::system::error_code ec;
    asio::write(s, asio::buffer(bytes.data(), bytes.size()), ec);
    if (half_close) s.shutdown(asio::socket_base::shutdown_send, ec);
    char buf[4096];
    while (true) {
      const auto n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
  };
  if (address.rfind("unix:", 0) == 0) {
    unix_socket s(ioc);
    s.connect(asio::local::stream_protocol::endpoint(address.substr(5)));
    run(s);
  } else {
    tcp_socket s(ioc);
    s.connect(tcp_endpoint(address));
    run(s);
  }
  return out;
}

struct raw_connection::impl {
  asio::io_context ioc;
  tcp_socket sock{ioc};
};

raw_connection::raw_connection(const std::string& address, millis timeout) : impl_(std::make_unique<impl>()) {
  impl_->sock.connect(tcp_endpoint(address));
  set_timeouts(impl_->sock.native_handle(), timeout);
}
raw_connection::~raw_connection() = default;

void raw_connection::send(std::string_view bytes) {
  boost::system::error_code ec;
  asio::write(impl_->sock, asio::buffer(bytes.data(), bytes.size()), ec);
}

std::string raw_connection::read_all() {
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  while (true) {
    const auto n = impl_->sock.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

int free_port() {
  asio::io_context ioc;
  asio::ip::tcp::acceptor a(ioc, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

std::string sidecar_bin() { return AFORO_SIDECAR_BIN; }
std::string source_dir() { return AFORO_SOURCE_DIR; }
std::string fake_ingest_bin() {
#ifdef AFORO_FAKE_INGEST_BIN
  return AFORO_FAKE_INGEST_BIN;
#else
  throw std::runtime_error("aforo-fake-ingest was not built");
#endif
}

// ---------------------------------------------------------------- sidecar_process

namespace {
std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}
bool has_section(const std::string& yaml, std::string_view name) {
  const std::string key = std::string(name) + ":";
  return yaml.rfind(key, 0) == 0 || yaml.find("\n" + key) != std::string::npos;
}
}  // namespace

sidecar_process::sidecar_process(std::string yaml, std::vector<std::string> extra_env) : env_(std::move(extra_env)) {
  // Sections a test does not set get safe test values: loopback port 0, state under the temp dir,
  // no discovery polling, the example snapshot instead of the control plane.
  if (!has_section(yaml, "listen")) yaml += "\nlisten: [\"127.0.0.1:0\"]\n";
  if (!has_section(yaml, "buffer")) yaml += "\nbuffer:\n  spool_dir: \"{dir}/spool\"\n";
  if (!has_section(yaml, "discovery")) yaml += "\ndiscovery:\n  enabled: false\n  state_dir: \"{dir}/state\"\n";
  if (!has_section(yaml, "entitlements"))
    yaml += "\nentitlements:\n  source: \"file:{source}/config/snapshot.example.yaml\"\n";
  if (!has_section(yaml, "aforo")) yaml += "\naforo:\n  ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\"\n";
  yaml = replace_all(yaml, "{dir}", dir_.path());
  yaml = replace_all(yaml, "{source}", source_dir());
  config_path_ = dir_.write("sidecar.yaml", yaml);
  start();
}

void sidecar_process::start() {
  proc_ = std::make_unique<process>(std::vector<std::string>{sidecar_bin(), "--config", config_path_}, env_);
  address_ = proc_->wait_for_listen();
}

void sidecar_process::restart() {
  if (proc_ && proc_->running()) {
    proc_->signal(SIGKILL);
    proc_->wait_exit(5s);
  }
  proc_.reset();
  start();
}

double sidecar_process::metric(const std::string& series) const {
  const auto r = client().get("/metrics");
  const std::string needle = "\n" + series + " ";
  const auto p = r.body.find(needle);
  if (p == std::string::npos) return -1;
  return std::strtod(r.body.c_str() + p + needle.size(), nullptr);
}

bool wait_redis_connected(const sidecar_process& sc, int connects, millis timeout) {
  return wait_until(
      [&] {
        return sc.metric("aforo_sidecar_redis_connects_total") >= connects && sc.metric("aforo_sidecar_redis_up") == 1;
      },
      timeout);
}

bool wait_redis_down(const sidecar_process& sc, millis timeout) {
  return wait_until([&] { return sc.metric("aforo_sidecar_redis_up") == 0; }, timeout);
}

// ---------------------------------------------------------------- redis_server

redis_server::redis_server(int port) : port_(port) { start(); }

void redis_server::start() {
  proc_ =
      std::make_unique<process>(std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_),
                                                         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"});
  if (!proc_->wait_for_output("Ready to accept connections", 10s)) {
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) + ": " + proc_->output());
  }
}

void redis_server::kill() {
  proc_->signal(SIGKILL);
  (void)proc_->wait_exit(5s);
}

std::int64_t redis_server::hash_sum(const std::string& key) const {
  std::string err;
  auto ep = io::parse_redis_url(url(), err);
  if (!ep) throw std::runtime_error(err);
  io::redis_client_options o;
  o.endpoint = *ep;
  asio::io_context ioc;
  io::redis_client client(ioc, o);
  client.start();
  std::optional<io::redis_result> out;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!out && std::chrono::steady_clock::now() < deadline) {
    if (client.connected()) {
      client.command({"HVALS", key}, [&](io::redis_result r) { out = std::move(r); });
      while (!out && std::chrono::steady_clock::now() < deadline) ioc.run_for(2ms);
    } else {
      ioc.run_for(2ms);
    }
  }
  if (!out || !out->ok_reply()) throw std::runtime_error("redis: HVALS " + key + " failed");
  std::int64_t sum = 0;
  for (const auto& v : out->reply.elements) sum += std::stoll(v.str);
  return sum;
}

}  // namespace aforo::testkit
