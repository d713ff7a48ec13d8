// The real aforo-sidecar binary over real sockets: health, malformed input, limits, keep-alive, the unix
// socket, SIGTERM drain, SIGHUP reload and the command line.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <thread>

#include "support/testkit.hpp"

using namespace aforo::testkit;

TEST_CASE("server: /healthz answers 200 and /metrics speaks Prometheus text", "[server]") {
  sidecar_process sc("");
  auto c = sc.client();
  auto r = c.get("/healthz");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"status":"ok"})");
  r = c.get("/metrics");
  CHECK(r.status == 200);
  CHECK(r.header("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(r.body.find("# TYPE aforo_sidecar_http_requests_total counter") != std::string::npos);
  r = c.get("/v1/handshake");
  CHECK(r.status == 200);
  CHECK(r.body.find(R"("sidecar_version":"0.1.0")") != std::string::npos);
  CHECK(r.body.find(R"("max_batch_events":1000)") != std::string::npos);
  r = c.get("/no/such/thing");
  CHECK(r.status == 404);
  CHECK(r.body.find(R"("code":"not_found")") != std::string::npos);
  r = c.post("/healthz", "{}");
  CHECK(r.status == 405);
  CHECK(r.header("allow") == "GET");
}

TEST_CASE("server: keep-alive reuses one connection for many requests", "[server]") {
  sidecar_process sc("");
  auto c = sc.client();
  for (int i = 0; i < 200; ++i) REQUIRE(c.get("/healthz").status == 200);
  CHECK(c.connections_opened() == 1);
}

TEST_CASE("server: garbage, truncated and oversized requests are refused while a keep-alive client is served",
          "[server]") {
  sidecar_process sc("server: { max_body: 4KiB }\n");
  auto steady = sc.client();
  REQUIRE(steady.get("/healthz").status == 200);

  SECTION("garbage bytes get 400 with a JSON error and a close") {
    const auto out = raw_exchange(sc.address(), "\x16\x03\x01\x02\x00garbage\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(out.find(R"("code":"bad_request")") != std::string::npos);
    CHECK(out.find("Connection: close") != std::string::npos);
  }
  SECTION("a request line that is not HTTP gets 400") {
    const auto out = raw_exchange(sc.address(), "HELLO WORLD\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
  }
  SECTION("a truncated request gets 400 or a clean close") {
    const auto out =
        raw_exchange(sc.address(), "POST /v1/ingest/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ev");
    CHECK((out.empty() || out.rfind("HTTP/1.1 400", 0) == 0));
  }
  SECTION("a body over server.max_body gets 413") {
    const std::string body(10 * 1024, 'x');
    const auto out = raw_exchange(sc.address(), "POST /v1/ingest/batch HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                                    std::to_string(body.size()) + "\r\n\r\n" + body);
    CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(out.find(R"("code":"payload_too_large")") != std::string::npos);
  }
  SECTION("a body over the limit announced with Expect: 100-continue gets 413 before it is sent") {
    const auto out = raw_exchange(sc.address(),
                                  "POST /v1/ingest/batch HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                  "Content-Length: 99999999\r\n\r\n",
                                  false, 2s);
    CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
  }
  SECTION("headers over server.max_header get 431") {
    const std::string big(64 * 1024, 'a');
    const auto out = raw_exchange(sc.address(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 431", 0) == 0);
  }
  SECTION("a hundred bad connections in a row") {
    for (int i = 0; i < 100; ++i)
      raw_exchange(sc.address(), std::string(static_cast<std::size_t>(i), '\xff') + "\r\n\r\n");
  }
  // The well-behaved client's kept-alive connection was served throughout.
  for (int i = 0; i < 20; ++i) REQUIRE(steady.get("/healthz").status == 200);
  CHECK(steady.connections_opened() == 1);
  CHECK(sc.proc().running());
  auto m = steady.get("/metrics").body;
  CHECK(m.find("aforo_sidecar_http_requests_total") != std::string::npos);
}

TEST_CASE("server: serves on a unix socket and TCP at once, with the configured permissions", "[server]") {
  temp_dir d;
  const std::string sock = d.file("sidecar.sock");
  sidecar_process sc("listen: [\"127.0.0.1:0\", \"unix:" + sock + "\"]\nserver: { socket_mode: \"0600\" }\n");
  {  // The harness waited for the TCP listener; under ASan the unix one may answer a moment later.
    http_client probe("unix:" + sock);
    wait_until([&] { return probe.get("/healthz").status == 200; }, 2s);
  }
  http_client u("unix:" + sock);
  CHECK(u.get("/healthz").status == 200);
  CHECK(u.get("/healthz").status == 200);
  CHECK(u.connections_opened() == 1);
  CHECK(sc.client().get("/healthz").status == 200);
  struct stat st {};
  REQUIRE(::stat(sock.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("server: SIGTERM finishes the request in flight, closes idle connections and exits 0", "[server][signals]") {
  sidecar_process sc("server: { shutdown_timeout: 5s }\n");
  auto idle = sc.client();
  REQUIRE(idle.get("/healthz").status == 200);

  // A request whose body is still arriving is in flight when SIGTERM lands.
  raw_connection in_flight(sc.address());
  in_flight.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
  // Kept: the daemon having read the partial request is not observable without another connection.
  std::this_thread::sleep_for(200ms);
  const auto started = std::chrono::steady_clock::now();
  sc.proc().signal(SIGTERM);
  REQUIRE(sc.proc().wait_for_output("received SIGTERM", 5s));
  // New connections are refused from now on.
  CHECK(http_client(sc.address(), 1s).get("/healthz").status == 0);
  // The rest of the body arrives after the signal; the answer still comes, with Connection: close.
  in_flight.send("56789");
  const auto reply = in_flight.read_all();
  CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(reply.find("Connection: close") != std::string::npos);
  const auto code = sc.proc().wait_exit(8s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - started < 4s);  // drained, not cut off by the 5 s bound
  CHECK(sc.proc().output().find("stopped") != std::string::npos);
  CHECK(idle.get("/healthz").status == 0);  // the idle connection was closed and the daemon is gone
}

TEST_CASE("server: SIGHUP reloads live keys and names the ones that need a restart", "[server][signals]") {
  sidecar_process sc("server: { max_body: 64KiB }\n");
  auto c = sc.client();
  const std::string body(8 * 1024, ' ');
  CHECK(c.post("/nothing-here", body).status == 404);  // 8 KiB fits in 64 KiB

  // Rewrite the config: a smaller body limit (live), a new listen address (restart), a bad key later.
  auto text = read_file(sc.config_path());
  text.replace(text.find("max_body: 64KiB"), 15, "max_body: 4KiB ");
  text.replace(text.find("127.0.0.1:0"), 11, "127.0.0.1:1");
  sc.dir().write("sidecar.yaml", text);
  const auto mark = sc.proc().output().size();
  sc.proc().signal(SIGHUP);
  REQUIRE(sc.proc().wait_for_output("SIGHUP: applied server.max_body", 5s, mark));
  CHECK(sc.proc().wait_for_output("need a restart to take effect: listen", 5s, mark));
  auto after = sc.client();
  CHECK(after.post("/nothing-here", body).status == 413);

  // A broken file is refused as a whole; the running config stays.
  sc.dir().write("sidecar.yaml", "batch: { max_events: -5 }\n");
  const auto mark2 = sc.proc().output().size();
  sc.proc().signal(SIGHUP);
  REQUIRE(sc.proc().wait_for_output("keeping the config in force", 5s, mark2));
  CHECK(sc.proc().wait_for_output("batch.max_events", 5s, mark2));
  auto again = sc.client();
  CHECK(again.get("/healthz").status == 200);
  CHECK(again.post("/nothing-here", body).status == 413);
}

TEST_CASE("cli: --check-config names every mistake and exits 78, and a good file exits 0", "[cli]") {
  temp_dir d;
  const auto bad = d.write("bad.yaml",
                           "batch: { max_events: 5000, flush_interval: 5 }\nbuffer: { when_full: maybe }\n"
                           "colour: blue\n");
  process p({sidecar_bin(), "--config", bad, "--check-config"});
  REQUIRE(p.wait_exit(10s) == 78);
  const auto out = p.output();
  CHECK(out.find("batch.flush_interval: '5' has no unit") != std::string::npos);
  CHECK(out.find("buffer.when_full: 'maybe' must be one of drop_oldest, reject") != std::string::npos);
  CHECK(out.find("colour: unknown key") != std::string::npos);
  CHECK(out.find("3 problem(s)") != std::string::npos);

  const auto good = d.write("good.yaml", "batch: { max_events: 50 }\n");
  process ok({sidecar_bin(), "--config", good, "--check-config"});
  CHECK(ok.wait_exit(10s) == 0);

  process ref({sidecar_bin(), "--config", source_dir() + "/config/sidecar.yaml", "--check-config"});
  CHECK(ref.wait_exit(10s) == 0);

  process version({sidecar_bin(), "--version"});
  CHECK(version.wait_exit(10s) == 0);
  CHECK(version.output() == "aforo-sidecar 0.1.0\n");

  process usage({sidecar_bin(), "--frobnicate"});
  CHECK(usage.wait_exit(10s) == 64);

  process missing({sidecar_bin(), "--config", d.file("nope.yaml")});
  CHECK(missing.wait_exit(10s) == 78);
  CHECK(missing.output().find("cannot read the config file") != std::string::npos);
}

TEST_CASE("cli: a listener that cannot bind is a clear startup error", "[cli]") {
  sidecar_process first("");
  temp_dir d;
  const auto cfg = d.write("c.yaml", "listen: [\"" + first.address() +
                                         "\"]\ndiscovery: { enabled: false }\n"
                                         "buffer: { spool_dir: \"" +
                                         d.path() + "/spool\" }\n");
  process p({sidecar_bin(), "--config", cfg});
  REQUIRE(p.wait_exit(10s) == 1);
  CHECK(p.output().find("cannot start: listen " + first.address()) != std::string::npos);
}
