// io::http_client against the real aforo-fake-ingest over loopback sockets: statuses, keep-alive and
// reconnects, LZ4 bodies, refused connections, timeouts, and HTTPS certificate verification.
#include <catch2/catch.hpp>

#include <lz4frame.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#include "fakes/fake_ingest/fake_ingest_process.hpp"
#include "support/testkit.hpp"

namespace {

using aforo::fake::blocking_client;
using aforo::fake::fake_ingest_options;
using aforo::fake::fake_ingest_process;
using aforo::io::client_options;
using aforo::io::client_request;
using aforo::io::client_result;
using kind = client_result::error_kind;
using headers = std::vector<std::pair<std::string, std::string>>;

const std::string one_event = R"({"events":[{"customerId":"cust_acme","metricName":"api_calls","quantity":1,)"
                              R"("occurredAt":"2026-11-26T10:00:00Z","idempotencyKey":"kong:req-1"}]})";

headers ingest_headers(const std::string& key = "test-key-0001") {
  return {{"Content-Type", "application/json"}, {"X-API-Key", key}, {"X-Tenant-Id", "tenant-1"}};
}

std::string lz4_compress(const std::string& in) {
  std::string out(LZ4F_compressFrameBound(in.size(), nullptr), '\0');
  const std::size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), nullptr);
  REQUIRE_FALSE(LZ4F_isError(n));
  out.resize(n);
  return out;
}

std::string events_json(int n, const std::string& prefix) {
  std::string s = R"({"events":[)";
  for (int i = 0; i < n; ++i) {
    if (i != 0) s += ",";
    s += R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-11-26T10:00:00Z",)";
    s += R"("idempotencyKey":")" + prefix + std::to_string(i) + R"("})";
  }
  return s + "]}";
}

// A self-signed certificate for 127.0.0.1 and localhost (or for `san`), made with the openssl tool.
struct test_cert {
  explicit test_cert(const aforo::testkit::temp_dir& dir, const std::string& san = "DNS:localhost,IP:127.0.0.1")
      : cert(dir.file("cert.pem")), key(dir.file("key.pem")) {
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=aforo-test -addext "
        "subjectAltName=" +
        san + " -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  std::string cert;
  std::string key;
};

}  // namespace

TEST_CASE("http client: a POST reaches the ingest and returns its 202 envelope", "[http_client]") {
  fake_ingest_process fake;
  client_options opts;
  opts.user_agent = "aforo-sidecar/test";
  blocking_client c(opts);

  const client_result r = c.send("POST", fake.ingest_url(), one_event, ingest_headers());
  REQUIRE(r.ok());
  CHECK(r.status == 202);
  CHECK(r.host == "127.0.0.1");
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.body.find(R"("accepted":1)") != std::string::npos);

  auto got = fake.received();
  REQUIRE(got["requests"].Size() == 1);
  CHECK(std::string(got["requests"][0]["user_agent"].GetString()) == "aforo-sidecar/test");
  CHECK(std::string(got["requests"][0]["api_key"].GetString()) == "match");
  CHECK(std::string(got["events"][0]["event"]["idempotencyKey"].GetString()) == "kong:req-1");
}

TEST_CASE("http client: requests to one origin share one kept-alive connection", "[http_client]") {
  fake_ingest_process fake;
  blocking_client c;
  for (int i = 0; i < 3; ++i) {
    const auto r = c.send("POST", fake.ingest_url(), events_json(1, "k" + std::to_string(i)), ingest_headers());
    REQUIRE(r.ok());
    CHECK(r.status == 202);
    CHECK(r.reused_connection == (i > 0));
  }
  CHECK(c.client().connections_opened() == 1);
  auto got = fake.received();
  REQUIRE(got["requests"].Size() == 3);
  const auto conn = got["requests"][0]["connection"].GetUint64();
  CHECK(got["requests"][1]["connection"].GetUint64() == conn);
  CHECK(got["requests"][2]["connection"].GetUint64() == conn);
}

TEST_CASE("http client: a kept-alive connection the server closed is replaced transparently", "[http_client]") {
  fake_ingest_process fake;
  blocking_client c;
  REQUIRE(c.send("POST", fake.ingest_url(), events_json(1, "a"), ingest_headers()).status == 202);
  // Refusing closes every ingest connection (ours is now stale); reopening lets a fresh one in.
  fake.refuse(true);
  fake.refuse(false);
  const auto r = c.send("POST", fake.ingest_url(), events_json(1, "b"), ingest_headers());
  REQUIRE(r.ok());
  CHECK(r.status == 202);
  CHECK_FALSE(r.reused_connection);
  CHECK(c.client().connections_opened() == 2);
  CHECK(fake.stats()["accepted"].GetUint() == 2);
}

TEST_CASE("http client: a connection dropped without an answer is reported as closed", "[http_client]") {
  fake_ingest_process fake;
  fake.set_faults(R"([{"close":true}])");
  blocking_client c;
  const auto r = c.send("POST", fake.ingest_url(), one_event, ingest_headers());
  CHECK(r.error == kind::closed);
  CHECK(r.status == 0);
  // The next request opens a new connection and succeeds.
  CHECK(c.send("POST", fake.ingest_url(), one_event, ingest_headers()).status == 202);
}

TEST_CASE("http client: an LZ4 frame body is accepted and decoded by the ingest", "[http_client][lz4]") {
  fake_ingest_process fake;
  blocking_client c;
  const std::string raw = events_json(50, "lz4-");
  auto h = ingest_headers();
  h.emplace_back("Content-Encoding", "lz4");
  const auto r = c.send("POST", fake.ingest_url(), lz4_compress(raw), h);
  REQUIRE(r.ok());
  CHECK(r.status == 202);
  CHECK(r.body.find(R"("accepted":50)") != std::string::npos);
  auto got = fake.received();
  const auto& req = got["requests"][0];
  CHECK(std::string(req["content_encoding"].GetString()) == "lz4");
  CHECK(req["decoded_bytes"].GetUint64() == raw.size());
  CHECK(req["raw_bytes"].GetUint64() < raw.size());
}

TEST_CASE("http client: a wrong API key gets a 401 response, not a transport error", "[http_client]") {
  fake_ingest_process fake;
  blocking_client c;
  const auto r = c.send("POST", fake.ingest_url(), one_event, ingest_headers("wrong-key"));
  REQUIRE(r.ok());
  CHECK(r.status == 401);
  auto got = fake.received();
  CHECK(std::string(got["requests"][0]["api_key"].GetString()) == "mismatch");
  CHECK(got["events"].Size() == 0);
}

TEST_CASE("http client: a refused connection is reported as connect_refused", "[http_client]") {
  fake_ingest_process fake;
  fake.refuse(true);
  blocking_client c;
  const auto r = c.send("POST", fake.ingest_url(), one_event, ingest_headers());
  CHECK(r.error == kind::connect_refused);
  CHECK(r.host == "127.0.0.1");
  fake.refuse(false);
  CHECK(c.send("POST", fake.ingest_url(), one_event, ingest_headers()).status == 202);
}

TEST_CASE("http client: a slow answer past the request timeout is reported as timeout", "[http_client]") {
  fake_ingest_process fake;
  fake.set_faults(R"([{"delay_ms":3000}])");
  client_options opts;
  opts.request_timeout = std::chrono::milliseconds(300);
  blocking_client c(opts);
  const auto start = std::chrono::steady_clock::now();
  const auto r = c.send("POST", fake.ingest_url(), one_event, ingest_headers());
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.error == kind::timeout);
  CHECK(took < std::chrono::milliseconds(2500));
  // A per-request timeout overrides the default: the next answer is delayed 500 ms and waited for.
  fake.set_faults(R"([{"delay_ms":500}])");
  client_request req{"POST", fake.ingest_url(), ingest_headers(), events_json(1, "slow"), std::chrono::seconds(5)};
  const auto r2 = c.send(req);
  REQUIRE(r2.ok());
  CHECK(r2.status == 202);
}

TEST_CASE("http client: URLs that are not absolute http(s) are rejected as values", "[http_client]") {
  blocking_client c;
  CHECK(c.send("GET", "not a url").error == kind::invalid_url);
  CHECK(c.send("GET", "ftp://127.0.0.1/x").error == kind::invalid_url);
}

TEST_CASE("http client: HTTPS verifies the certificate against the system store and ca_file", "[http_client][tls]") {
  aforo::testkit::temp_dir dir;
  const test_cert cert(dir);
  fake_ingest_options fo;
  fo.tls_cert = cert.cert;
  fo.tls_key = cert.key;
  fake_ingest_process fake(fo);
  REQUIRE(fake.base_url().rfind("https://", 0) == 0);

  SECTION("a self-signed certificate is refused by default") {
    blocking_client c;
    const auto r = c.send("POST", fake.ingest_url(), one_event, ingest_headers());
    CHECK(r.error == kind::tls);
    CHECK(r.error_message.find("self") != std::string::npos);
    CHECK(fake.stats()["requests"].GetUint() == 0);
  }
  SECTION("the certificate is accepted with ca_file, by IP and by host name, and kept alive") {
    client_options opts;
    opts.ca_file = cert.cert;
    blocking_client c(opts);
    const auto r = c.send("POST", fake.ingest_url(), events_json(1, "tls-a"), ingest_headers());
    REQUIRE(r.error_message.empty());
    CHECK(r.status == 202);
    const auto r2 = c.send("POST", fake.ingest_url(), events_json(1, "tls-b"), ingest_headers());
    CHECK(r2.status == 202);
    CHECK(r2.reused_connection);
    const std::string by_name = "https://localhost:" + fake.base_url().substr(fake.base_url().rfind(':') + 1);
    const auto r3 = c.send("POST", by_name + "/v1/ingest/batch", events_json(1, "tls-c"), ingest_headers());
    CHECK(r3.error_message.empty());
    CHECK(r3.status == 202);
  }
}

TEST_CASE("http client: HTTPS refuses a trusted certificate issued for another host name", "[http_client][tls]") {
  aforo::testkit::temp_dir dir;
  const test_cert cert(dir, "DNS:ingest.example.com");
  fake_ingest_options fo;
  fo.tls_cert = cert.cert;
  fo.tls_key = cert.key;
  fake_ingest_process fake(fo);
  client_options opts;
  opts.ca_file = cert.cert;
  blocking_client c(opts);
  const auto r = c.send("POST", fake.ingest_url(), one_event, ingest_headers());
  CHECK(r.error == kind::tls);
}

TEST_CASE("http client: an unreadable ca_file fails at construction", "[http_client][tls]") {
  boost::asio::io_context ioc;
  client_options opts;
  opts.ca_file = "/nonexistent/ca.pem";
  CHECK_THROWS_WITH(aforo::io::http_client(ioc, opts), Catch::Contains("/nonexistent/ca.pem"));
}

TEST_CASE("http client: a connect that gets no answer is reported as connect_timeout", "[http_client]") {
  // A listener that never accepts, its backlog filled: the kernel drops further SYNs unanswered.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  acceptor.listen(0);
  const auto ep = acceptor.local_endpoint();
  std::vector<int> fillers;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(ep.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 4; ++i) {
    fillers.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    (void)::connect(fillers.back(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);  // fills the queue
  }
  client_options opts;
  opts.connect_timeout = std::chrono::milliseconds(300);
  blocking_client c(opts);
  const auto start = std::chrono::steady_clock::now();
  const auto r = c.send("GET", "http://127.0.0.1:" + std::to_string(ep.port()) + "/");
  CHECK(r.error == kind::connect_timeout);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  for (const int fd : fillers) ::close(fd);
}
