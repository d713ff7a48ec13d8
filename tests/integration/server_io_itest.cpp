// The sidecar's HTTP server on the wire, over real sockets: read timeouts (an idle keep-alive connection
// is closed, a request cut short gets 408, every request gets a fresh timeout), pipelining, responses
// larger than the socket takes at once, chunked bodies and Expect: 100-continue.
#include <catch2/catch.hpp>

#include <charconv>
#include <thread>

#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {

std::size_t count_of(const std::string& haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

const std::string check_json =
    R"({"customer_id":"cust_acme","service":"search","method":"GET","path":"/v1/search/items/42"})";

}  // namespace

TEST_CASE("server: read_timeout closes an idle connection, answers a stalled request 408, restarts per request",
          "[server]") {
  sidecar_process sc("server: { read_timeout: 400ms }\n");

  SECTION("an idle connection is closed without an answer") {
    const auto started = std::chrono::steady_clock::now();
    raw_connection idle(sc.address(), 5s);
    CHECK(idle.read_all().empty());
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(took >= 300ms);
    CHECK(took < 3s);
  }
  SECTION("a header that stops arriving gets 408 and a close") {
    raw_connection slow(sc.address(), 5s);
    slow.send("GET /healthz HTTP/1.1\r\nHo");
    const auto out = slow.read_all();
    CHECK(out.rfind("HTTP/1.1 408", 0) == 0);
    CHECK(out.find(R"("code":"request_timeout")") != std::string::npos);
    CHECK(out.find("Connection: close") != std::string::npos);
  }
  SECTION("a body that stops arriving gets 408") {
    raw_connection slow(sc.address(), 5s);
    slow.send("POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{\"customer_id\":");
    const auto out = slow.read_all();
    CHECK(out.rfind("HTTP/1.1 408", 0) == 0);
  }
  SECTION("a keep-alive client pausing under the timeout between requests keeps its connection") {
    auto c = sc.client();
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 6; ++i) {
      REQUIRE(c.get("/healthz").status == 200);
      std::this_thread::sleep_for(250ms);  // pacing: the pause under the timeout is the subject
    }
    CHECK(std::chrono::steady_clock::now() - started > 1200ms);  // well past one read_timeout in all
    CHECK(c.connections_opened() == 1);
  }
  SECTION("a body trickling in over several reads is still served") {
    raw_connection c(sc.address(), 5s);
    c.send("POST /v1/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
           std::to_string(check_json.size()) + "\r\n\r\n");
    for (std::size_t at = 0; at < check_json.size(); at += 30) {
      std::this_thread::sleep_for(60ms);  // about 250 ms after the header in all: within the body's timeout
      c.send(check_json.substr(at, 30));
    }
    const auto out = c.read_all();
    CHECK(out.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(out.find(R"("decision":"allow")") != std::string::npos);
  }
  CHECK(sc.proc().running());
}

TEST_CASE("server: pipelined requests are answered in order, also past what the socket takes at once", "[server]") {
  sidecar_process sc("");

  SECTION("a few small requests in one segment") {
    raw_connection c(sc.address(), 5s);
    c.send(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: " +
        std::to_string(check_json.size()) + "\r\n\r\n" + check_json +
        "GET /no/such HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const auto out = c.read_all();
    const auto first = out.find("HTTP/1.1 200");
    const auto second = out.find(R"("decision":"allow")");
    const auto third = out.find("HTTP/1.1 404");
    CHECK(first == 0);
    CHECK(second != std::string::npos);
    CHECK(third != std::string::npos);
    CHECK(first < second);
    CHECK(second < third);
    CHECK(count_of(out, "HTTP/1.1 ") == 3);
  }
  SECTION("hundreds of /metrics answers the client reads only at the end") {
    // Far more than the socket buffers hold: the server finishes each write asynchronously and keeps
    // the order; the requests are also more than the server serves in a row before yielding.
    std::string burst;
    const int n = 1500;  // about 16 MiB of answers
    for (int i = 0; i < n; ++i) {
      burst += "GET /metrics HTTP/1.1\r\nHost: x\r\n";
      burst += i + 1 == n ? "Connection: close\r\n\r\n" : "\r\n";
    }
    raw_connection c(sc.address(), 30s);
    c.send(burst);
    const auto out = c.read_all();  // until the daemon closes, after the last answer
    CHECK(count_of(out, "HTTP/1.1 200 OK\r\n") == static_cast<std::size_t>(n));
    CHECK(count_of(out, "Connection: close") == 1);
    CHECK(out.size() > 12u * 1024 * 1024);
  }
  auto steady = sc.client();
  CHECK(steady.get("/healthz").status == 200);
}

TEST_CASE("server: a chunked body and an Expect: 100-continue body are read whole", "[server]") {
  sidecar_process sc("");

  SECTION("chunked") {
    raw_connection c(sc.address(), 5s);
    const auto half = check_json.size() / 2;
    auto hex = [](std::size_t v) {
      char buf[2 * sizeof v];
      const auto res = std::to_chars(buf, buf + sizeof buf, v, 16);
      return std::string(buf, res.ptr);
    };
    c.send("POST /v1/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" + hex(half) +
           "\r\n" + check_json.substr(0, half) + "\r\n");
    std::this_thread::sleep_for(100ms);  // pacing: the second chunk comes in a later read
    c.send(hex(check_json.size() - half) + "\r\n" + check_json.substr(half) + "\r\n0\r\n\r\n");
    const auto out = c.read_all();
    CHECK(out.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(out.find(R"("decision":"allow")") != std::string::npos);
  }
  SECTION("100-continue, then the body") {
    raw_connection c(sc.address(), 5s);
    c.send("POST /v1/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: " +
           std::to_string(check_json.size()) + "\r\n\r\n");
    std::this_thread::sleep_for(200ms);  // pacing: the body follows the 100 Continue
    c.send(check_json);
    const auto out = c.read_all();
    CHECK(out.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", 0) == 0);
    CHECK(out.find(R"("decision":"allow")") != std::string::npos);
  }
  SECTION("an HTTP/1.0 client is answered in 1.0 and closed unless it asks for keep-alive") {
    auto out = raw_exchange(sc.address(), "GET /healthz HTTP/1.0\r\n\r\n");
    CHECK(out.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(out.find("Connection:") == std::string::npos);
    out = raw_exchange(sc.address(), "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true);
    CHECK(out.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(out.find("Connection: keep-alive\r\n") != std::string::npos);
  }
}
