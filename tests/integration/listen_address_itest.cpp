// Listen addresses as the config gives them: the forms the server binds, and a clear error for the rest.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "io/http/listen_address.hpp"

using aforo::io::parse_listen_address;

TEST_CASE("listen address: HOST:PORT, [v6]:PORT, localhost and unix: are parsed", "[server][listen]") {
  auto a = parse_listen_address("127.0.0.1:8750");
  CHECK(a.unix_path.empty());
  CHECK(a.ip.to_string() == "127.0.0.1");
  CHECK(a.port == 8750);
  a = parse_listen_address("[::1]:0");
  CHECK(a.ip.is_v6());
  CHECK(a.ip.is_loopback());
  CHECK(a.port == 0);
  CHECK(parse_listen_address("localhost:9").ip.to_string() == "127.0.0.1");
  CHECK(parse_listen_address("unix:/run/aforo/sidecar.sock").unix_path == "/run/aforo/sidecar.sock");
}

TEST_CASE("listen address: a bad one is refused with the address and the reason", "[server][listen]") {
  const auto refused = [](const std::string& address, const std::string& why) {
    try {
      (void)parse_listen_address(address);
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.rfind("listen " + address + ": ", 0) == 0);
      CHECK(msg.find(why) != std::string::npos);
      return;
    }
    FAIL("accepted " << address);
  };
  refused("unix:", "empty unix socket path");
  refused("8750", "expected HOST:PORT");
  refused(":8750", "expected HOST:PORT");
  refused("127.0.0.1:", "expected HOST:PORT");
  refused("127.0.0.1:http", "bad port 'http'");
  refused("127.0.0.1:65536", "bad port '65536'");
  refused("127.0.0.1:80x", "bad port '80x'");
  refused("example.com:80", "'example.com' is not an IP address");
}
