// Redis over TLS (rediss://) against a real redis-server with TLS: certificates made here with the
// openssl CLI (a CA, a server certificate it signs for IP:127.0.0.1 and DNS:localhost, and a second
// CA that signed nothing of it). The client itself, two sidecars sharing a limit over TLS with AUTH,
// and the refusals: an unknown CA, a wrong server name, an unreadable CA file.
#include <catch2/catch.hpp>

#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <thread>

#include "redis_itest_support.hpp"

using namespace redis_itest;

namespace {

void openssl(const temp_dir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  for (auto& a : args)
    if (a.rfind("@", 0) == 0) a = dir.file(a.substr(1));  // "@name": a file in the PKI dir
  process p(args);
  const auto rc = p.wait_exit(60s);
  INFO(p.output());
  REQUIRE(rc == 0);
}

// A test PKI: ca.crt signed server.crt (SAN IP:127.0.0.1, DNS:localhost); other-ca.crt is unrelated.
struct test_pki {
  temp_dir dir;
  test_pki() {
    const std::vector<std::string> ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
    auto req = [&](std::vector<std::string> a) {
      std::vector<std::string> args{"req"};
      args.insert(args.end(), ec.begin(), ec.end());
      args.insert(args.end(), a.begin(), a.end());
      openssl(dir, args);
    };
    req({"-x509", "-days", "2", "-subj", "/CN=aforo test CA", "-keyout", "@ca.key", "-out", "@ca.crt"});
    req({"-x509", "-days", "2", "-subj", "/CN=someone else's CA", "-keyout", "@other-ca.key", "-out", "@other-ca.crt"});
    req({"-subj", "/CN=redis test server", "-keyout", "@server.key", "-out", "@server.csr"});
    dir.write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    openssl(dir, {"x509", "-req", "-days", "2", "-in", "@server.csr", "-CA", "@ca.crt", "-CAkey", "@ca.key",
                  "-CAcreateserial", "-extfile", "@server.ext", "-out", "@server.crt"});
  }
  [[nodiscard]] std::string ca() const { return dir.file("ca.crt"); }
  [[nodiscard]] std::string other_ca() const { return dir.file("other-ca.crt"); }
};

// A redis-server answering only TLS on `tls_port` (no plain port); no persistence.
std::unique_ptr<process> start_tls_redis(const test_pki& pki, int tls_port, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{"/usr/bin/redis-server",
                                "--port",
                                "0",
                                "--bind",
                                "127.0.0.1",
                                "--tls-port",
                                std::to_string(tls_port),
                                "--tls-cert-file",
                                pki.dir.file("server.crt"),
                                "--tls-key-file",
                                pki.dir.file("server.key"),
                                "--tls-ca-cert-file",
                                pki.ca(),
                                "--tls-auth-clients",
                                "no",
                                "--save",
                                "",
                                "--appendonly",
                                "no"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = std::make_unique<process>(argv);
  INFO(p->output());
  REQUIRE(p->wait_for_output("Ready to accept connections", 10s));
  return p;
}

std::string tls_url(int port, const std::string& host = "127.0.0.1") {
  return "rediss://" + host + ":" + std::to_string(port) + "/0";
}

io::redis_client_options tls_options(const std::string& url, const std::string& ca_file,
                                     const std::string& password = "") {
  std::string err;
  auto ep = io::parse_redis_url(url, err);
  REQUIRE(ep);
  ep->password = password;
  io::redis_client_options o;
  o.endpoint = *ep;
  o.tls_ca_file = ca_file;
  return o;
}

std::string tls_yaml(const temp_dir& dir, const std::string& url, const std::string& extra_cache = "") {
  return "entitlements: { source: \"file:" + dir.write("snapshot.yaml", shared_snapshot) + "\" }\n" +
         "cache:\n  redis: \"" + url + "\"\n  sync_interval: 50ms\n  redis_timeout: 200ms\n  quota_mode: counters\n" +
         extra_cache;
}

// cust_a's shared `api` total this month, read over TLS.
std::int64_t shared_total(int port, const std::string& ca_file, const std::string& password) {
  return redis_itest::shared_total(tls_options(tls_url(port), ca_file, password));
}

// A sidecar whose Redis is refused: it says why (one of `whys`, OpenSSL's verify error), reports Redis
// unavailable and keeps deciding from its in-memory cache.
void check_refused(sidecar_process& sc, const std::vector<std::string>& whys) {
  REQUIRE(sc.proc().wait_for_output("redis unavailable", 10s));
  const auto log = sc.proc().output();
  INFO(log);
  CHECK(log.find("TLS handshake with 127.0.0.1:") != std::string::npos);
  bool named = false;
  for (const auto& why : whys) named = named || log.find("server certificate rejected: " + why) != std::string::npos;
  CHECK(named);
  CHECK(log.find("answering from the in-memory cache") != std::string::npos);
  CHECK(log.find("redis connected") == std::string::npos);
  auto c = sc.client();
  CHECK(c.get("/v1/handshake").body.find(R"("redis":"unavailable")") != std::string::npos);
  tally t;
  for (int i = 0; i < 5; ++i) check_once(c, t);
  INFO("first error: " << t.first_error);
  CHECK(t.allowed == 5);
  CHECK(c.get("/readyz").status == 200);
  CHECK(sc.metric("aforo_sidecar_redis_up") == 0);
  CHECK(sc.metric("aforo_sidecar_redis_connects_total") <= 0);
  std::this_thread::sleep_for(400ms);  // retries with backoff, without a log line each
  CHECK(sc.proc().running());
}

}  // namespace

TEST_CASE("redis url: rediss:// is TLS, with the same host, port and db rules as redis://", "[redis][tls]") {
  std::string err;
  auto a = io::parse_redis_url("rediss://cache.example.net:6380/2", err);
  REQUIRE(a);
  CHECK(a->tls);
  CHECK(a->host == "cache.example.net");
  CHECK(a->port == 6380);
  CHECK(a->db == 2);
  auto b = io::parse_redis_url("rediss://user:pw@10.0.0.1", err);
  REQUIRE(b);
  CHECK(b->tls);
  CHECK(b->port == 6379);
  CHECK(b->user == "user");
  CHECK(b->password == "pw");
  auto c = io::parse_redis_url("redis://10.0.0.1:6379/0", err);
  REQUIRE(c);
  CHECK_FALSE(c->tls);
  auto u = io::parse_redis_url("unix:/run/redis.sock", err);
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK_FALSE(io::parse_redis_url("rediss:///0", err));
  CHECK(err == "rediss:// needs a host");
  CHECK_FALSE(io::parse_redis_url("rediss://h:6380/x", err));
  CHECK_FALSE(io::parse_redis_url("redis+tls://h:6380/0", err));
  CHECK(err == "scheme must be redis://, rediss:// (TLS) or unix:");
}

TEST_CASE("redis client over TLS: verifies the server by IP and by name, answers and pipelines", "[redis][tls]") {
  test_pki pki;
  const int port = free_port();
  auto server = start_tls_redis(pki, port);
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    INFO(host);
    asio::io_context ioc;
    io::redis_client client(ioc, tls_options(tls_url(port, host), pki.ca()));
    client.start();
    REQUIRE(run_until(ioc, [&] { return client.connected(); }));
    CHECK(call(ioc, client, {"SET", "k", std::string("bin\0ary", 7)}).ok_reply());
    CHECK(call(ioc, client, {"GET", "k"}).reply.str == std::string("bin\0ary", 7));
    const std::string big(200 * 1024, 'x');  // more than one TLS record and read buffer
    CHECK(call(ioc, client, {"SET", "big", big}).ok_reply());
    CHECK(call(ioc, client, {"GET", "big"}).reply.str == big);
    std::vector<std::int64_t> seen;
    for (int i = 0; i < 300; ++i) {
      client.command({"INCR", "p-" + host}, [&](io::redis_result x) { seen.push_back(x.reply.integer); });
    }
    REQUIRE(run_until(ioc, [&] { return seen.size() == 300; }));
    for (int i = 0; i < 300; ++i) CHECK(seen[static_cast<std::size_t>(i)] == i + 1);
  }

  // Redis killed and restarted: the client reconnects, with a new TLS session.
  {
    asio::io_context ioc;
    io::redis_client client(ioc, tls_options(tls_url(port), pki.ca()));
    client.start();
    REQUIRE(run_until(ioc, [&] { return client.connected(); }));
    server->signal(SIGKILL);
    (void)server->wait_exit(5s);
    REQUIRE(run_until(ioc, [&] { return !client.connected(); }));
    CHECK(call(ioc, client, {"PING"}).error == io::redis_error::not_connected);
    server = start_tls_redis(pki, port);
    REQUIRE(run_until(
        ioc, [&] { return client.connected(); }, 10s));
    CHECK(call(ioc, client, {"PING"}).reply.str == "PONG");
  }

  // The system store does not know the test CA: refused, never connected.
  asio::io_context ioc;
  io::redis_client client(ioc, tls_options(tls_url(port), ""));
  client.start();
  run_until(
      ioc, [] { return false; }, 500ms);
  CHECK_FALSE(client.connected());
  CHECK(call(ioc, client, {"PING"}).error == io::redis_error::not_connected);
}

TEST_CASE("redis edge over TLS: two sidecars with the CA file and a password share the limit",
          "[redis][sidecars][tls]") {
  test_pki pki;
  const int port = free_port();
  const std::string password = "tls-redis-pw-5521";
  auto server = start_tls_redis(pki, port, {"--requirepass", password});
  temp_dir dir;
  const std::string ca = "  redis_ca_file: \"" + pki.ca() + "\"\n";
  sidecar_process a(tls_yaml(dir, tls_url(port), ca), {"AFORO_REDIS_PASSWORD=" + password});
  sidecar_process b(tls_yaml(dir, tls_url(port, "localhost"), ca), {"AFORO_REDIS_PASSWORD=" + password});
  REQUIRE(a.proc().wait_for_output("redis connected (127.0.0.1:" + std::to_string(port) + ", TLS)", 10s));
  REQUIRE(b.proc().wait_for_output("redis connected (localhost:" + std::to_string(port) + ", TLS)", 10s));
  auto ca_client = a.client();
  auto cb_client = b.client();
  tally t;
  for (int i = 0; i < 150; ++i) {
    check_once(ca_client, t);
    check_once(cb_client, t);
    std::this_thread::sleep_for(5ms);  // pacing: checks spread over several syncs
  }
  INFO("first error: " << t.first_error << "\nsidecar a:\n"
                       << a.proc().output() << "\nsidecar b:\n"
                       << b.proc().output());
  CHECK(t.errors == 0);
  CHECK(t.allowed >= 100);
  CHECK(t.allowed <= 100 + 12);  // one shared limit (see redis_itest.cpp for the bound)
  CHECK(t.denied == 300 - t.allowed);
  // Shared once the sidecars have pushed (their syncs run every sync_interval).
  CHECK(wait_until([&] { return shared_total(port, pki.ca(), password) == t.allowed; }, 5s));
  CHECK(ca_client.get("/v1/handshake").body.find(R"("redis":"connected")") != std::string::npos);
  CHECK(a.metric("aforo_sidecar_redis_up") == 1);
  CHECK(a.proc().output().find(password) == std::string::npos);

  // Without the password the TLS connection comes up and AUTH is what fails.
  sidecar_process c(tls_yaml(dir, tls_url(port), ca));
  REQUIRE(c.proc().wait_for_output("redis unavailable", 10s));
  CHECK(c.proc().output().find("NOAUTH") != std::string::npos);
}

TEST_CASE("redis edge over TLS: a server certificate from a CA not trusted is refused, decisions go on",
          "[redis][sidecars][tls]") {
  test_pki pki;
  const int port = free_port();
  auto server = start_tls_redis(pki, port);
  temp_dir dir;
  sidecar_process a(tls_yaml(dir, tls_url(port), "  redis_ca_file: \"" + pki.other_ca() + "\"\n"));
  // Redis sends its CA along with its certificate (then OpenSSL names the self-signed root it does not
  // trust) or not (then the issuer it cannot find).
  check_refused(a, {"self-signed certificate in certificate chain", "unable to get local issuer certificate"});
  CHECK(a.proc().output().find("trusted CAs: " + pki.other_ca()) != std::string::npos);
}

TEST_CASE("redis edge over TLS: a certificate for another name is refused, decisions go on", "[redis][sidecars][tls]") {
  test_pki pki;
  const int port = free_port();
  auto server = start_tls_redis(pki, port);
  temp_dir dir;
  sidecar_process a(
      tls_yaml(dir, tls_url(port), "  redis_ca_file: \"" + pki.ca() + "\"\n  redis_tls_server_name: wrong.example\n"));
  check_refused(a, {"hostname mismatch"});
  CHECK(a.proc().output().find("expected name wrong.example") != std::string::npos);

  // The right name given explicitly (the URL holds an IP) is accepted.
  sidecar_process b(
      tls_yaml(dir, tls_url(port), "  redis_ca_file: \"" + pki.ca() + "\"\n  redis_tls_server_name: localhost\n"));
  REQUIRE(wait_redis_connected(b));
}

TEST_CASE("redis edge over TLS: an unreadable cache.redis_ca_file stops the start, naming the file",
          "[redis][sidecars][tls]") {
  temp_dir dir;
  process p({sidecar_bin(), "--config",
             dir.write("sidecar.yaml", tls_yaml(dir, tls_url(6379), "  redis_ca_file: /nonexistent/ca.pem\n") +
                                           "listen: [\"127.0.0.1:0\"]\nbuffer: { spool_dir: \"" + dir.file("spool") +
                                           "\" }\ndiscovery: { enabled: false, state_dir: \"" + dir.file("state") +
                                           "\" }\naforo: { ingest_url: \"http://127.0.0.1:9/v1/ingest/batch\" }\n")});
  const auto rc = p.wait_exit(10s);
  INFO(p.output());
  CHECK(rc == 1);
  CHECK(p.output().find("cache.redis_ca_file: cannot load CA file /nonexistent/ca.pem") != std::string::npos);
}
