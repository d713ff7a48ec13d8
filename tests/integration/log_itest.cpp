// The daemon's log lines as an operator greps them (docs/design/log-lines.md#daemon): every line the
// real aforo-sidecar writes reads "<UTC time> [aforo-sidecar] LEVEL message", or under systemd
// (JOURNAL_STREAM set) "<priority>[aforo-sidecar] LEVEL message"; never the plugin's [aforo-metering].
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/testkit.hpp"

using namespace aforo::testkit;
using namespace std::chrono_literals;

namespace {

// A config for a sidecar that starts without the network: the example snapshot, state under `dir`,
// no discovery, an ingest nobody listens on (so an ERROR line is written too).
std::string config_in(const temp_dir& dir) {
  return "listen: [\"127.0.0.1:0\"]\n"
         "buffer:\n  spool_dir: \"" +
         dir.path() +
         "/spool\"\n"
         "discovery:\n  enabled: false\n  state_dir: \"" +
         dir.path() +
         "/state\"\n"
         "entitlements:\n  source: \"file:" +
         source_dir() +
         "/config/snapshot.example.yaml\"\n"
         "aforo:\n  ingest_url: \"http://127.0.0.1:" +
         std::to_string(free_port()) +
         "/v1/ingest/batch\"\n"
         "  connect_timeout: 1s\n";
}

// Starts the daemon through env(1) with `env_args` (e.g. "-u", "JOURNAL_STREAM"), waits for its ready
// line and the ERROR of the unreachable ingest, stops it, and returns its output as lines.
std::vector<std::string> daemon_lines(const std::vector<std::string>& env_args) {
  temp_dir dir;
  const auto cfg = dir.write("sidecar.yaml", config_in(dir));
  std::vector<std::string> argv{"/usr/bin/env"};
  argv.insert(argv.end(), env_args.begin(), env_args.end());
  argv.insert(argv.end(), {sidecar_bin(), "--config", cfg});
  process p(argv, {"AFORO_API_KEY=sk_test_log_format_key", "AFORO_TENANT_ID=tenant-log"});
  REQUIRE(p.wait_for_output(" ready (tenant tenant-log", 10s));
  REQUIRE(p.wait_for_output("ERROR ingest unreachable at 127.0.0.1", 10s));
  p.signal(SIGTERM);
  REQUIRE(p.wait_exit(10s) == 0);
  std::vector<std::string> lines;
  std::istringstream in(p.output());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("log: every daemon line reads <UTC time> [aforo-sidecar] LEVEL message, never [aforo-metering]", "[log]") {
  const auto lines = daemon_lines({"-u", "JOURNAL_STREAM"});
  REQUIRE(lines.size() >= 3);
  const std::regex shape(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[aforo-sidecar\] (DEBUG|INFO|WARN|ERROR) \S.*)");
  for (const auto& line : lines) {
    INFO(line);
    CHECK(std::regex_match(line, shape));
    CHECK(line.find("[aforo-metering]") == std::string::npos);
  }
  CHECK(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find(" [aforo-sidecar] INFO listening on http://127.0.0.1:") != std::string::npos;
  }));
}

TEST_CASE("log: under systemd a daemon line starts with its syslog priority, then [aforo-sidecar] LEVEL", "[log]") {
  const auto lines = daemon_lines({"JOURNAL_STREAM=8:12345"});
  REQUIRE(lines.size() >= 3);
  const std::regex shape(R"(<([3467])>\[aforo-sidecar\] (DEBUG|INFO|WARN|ERROR) \S.*)");
  bool error_seen = false;
  for (const auto& line : lines) {
    INFO(line);
    std::smatch m;
    REQUIRE(std::regex_match(line, m, shape));
    const char priority = m[1].str()[0];
    const std::string level = m[2].str();
    CHECK(priority == (level == "ERROR" ? '3' : level == "WARN" ? '4' : level == "INFO" ? '6' : '7'));
    error_seen = error_seen || level == "ERROR";
  }
  CHECK(error_seen);
}
