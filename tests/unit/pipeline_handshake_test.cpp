// The handshake's machines (core/pipeline/handshake.hpp): the ingest state it reports and when it
// probes the key again, driven by hand with simulated time.
#include <catch2/catch.hpp>

#include "core/pipeline/handshake.hpp"

using namespace aforo::core;
using namespace std::chrono_literals;
using kind = handshake_step::kind;

namespace {
const std::chrono::steady_clock::time_point t0{100s};
constexpr std::chrono::milliseconds unauthorized_probe = 60s;
}  // namespace

TEST_CASE("handshake: the probe's verdicts", "[pipeline][handshake]") {
  for (int s : {200, 202, 204, 400, 422}) CHECK(judge_probe(s) == probe_verdict::accepted);
  for (int s : {401, 403}) CHECK(judge_probe(s) == probe_verdict::unauthorized);
  for (int s : {301, 404, 408, 429, 500, 503}) CHECK(judge_probe(s) == probe_verdict::inconclusive);
  CHECK(std::string(to_string(ingest_state::unknown)) == "unknown");
  CHECK(std::string(to_string(ingest_state::ok)) == "ok");
  CHECK(std::string(to_string(ingest_state::unauthorized)) == "unauthorized");
  CHECK(std::string(to_string(ingest_state::unreachable)) == "unreachable");
}

TEST_CASE("handshake: an accepted key stops the probes and checks the encoding once", "[pipeline][handshake]") {
  handshake_reprobe m;
  REQUIRE(m.start(false).what == kind::probe);
  const auto s = m.on_answer(probe_verdict::accepted, unauthorized_probe, t0);
  CHECK(s.what == kind::check_encoding);
  CHECK(m.failures() == 0);
  CHECK(m.on_timer(true).what == kind::none);
}

TEST_CASE("handshake: no start probe when a delivery confirmed the key first", "[pipeline][handshake]") {
  handshake_reprobe m;
  CHECK(m.start(true).what == kind::none);
}

TEST_CASE("handshake: missing answers probe again after 1 s, 2 s, 4 s ... at most 60 s", "[pipeline][handshake]") {
  handshake_reprobe m;
  REQUIRE(m.start(false).what == kind::probe);
  auto now = t0;
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 9; ++i) {
    const auto s = i % 2 == 0 ? m.on_no_answer(now) : m.on_answer(probe_verdict::inconclusive, unauthorized_probe, now);
    REQUIRE(s.what == kind::wait);
    CHECK(s.at == now + s.wait);
    waits.push_back(s.wait);
    now = s.at;
    REQUIRE(m.on_timer(false).what == kind::probe);
  }
  CHECK(waits == std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s});
  CHECK(m.failures() == 9);
}

TEST_CASE("handshake: a refused key waits retry.unauthorized_probe and still counts as a failure",
          "[pipeline][handshake]") {
  handshake_reprobe m;
  (void)m.start(false);
  auto s = m.on_answer(probe_verdict::unauthorized, 30s, t0);
  CHECK(s.what == kind::wait);
  CHECK(s.wait == 30s);
  REQUIRE(m.on_timer(false).what == kind::probe);
  s = m.on_no_answer(t0 + 30s);  // second failure in a row
  CHECK(s.wait == 2s);
  REQUIRE(m.on_timer(false).what == kind::probe);
  s = m.on_answer(probe_verdict::unauthorized, 90s, t0 + 32s);  // the config in force at the refusal
  CHECK(s.wait == 90s);
}

TEST_CASE("handshake: a delivery that confirms the key during the wait ends the probes", "[pipeline][handshake]") {
  handshake_reprobe m;
  (void)m.start(false);
  REQUIRE(m.on_no_answer(t0).what == kind::wait);
  CHECK(m.on_timer(true).what == kind::none);
  CHECK(m.on_timer(false).what == kind::none);  // no wait armed any more
}

TEST_CASE("handshake: an aborted probe, events out of turn and events after stop do nothing", "[pipeline][handshake]") {
  handshake_reprobe m;
  CHECK(m.on_no_answer(t0).what == kind::none);  // nothing in flight
  CHECK(m.on_timer(false).what == kind::none);   // no wait armed
  REQUIRE(m.start(false).what == kind::probe);
  CHECK(m.start(false).what == kind::none);  // one probe at a time
  CHECK(m.on_aborted().what == kind::none);
  CHECK(m.on_answer(probe_verdict::accepted, unauthorized_probe, t0).what == kind::none);

  handshake_reprobe s;
  REQUIRE(s.start(false).what == kind::probe);
  REQUIRE(s.on_no_answer(t0).what == kind::wait);
  s.stop();
  CHECK(s.on_timer(false).what == kind::none);
  CHECK(s.start(false).what == kind::none);
}

TEST_CASE("handshake: the reported state and which reports are logged", "[pipeline][handshake]") {
  ingest_state_tracker t;
  CHECK(t.state() == ingest_state::unknown);
  CHECK_FALSE(t.confirmed());
  CHECK(t.unreachable("network timeout to ingest"));
  CHECK(t.state() == ingest_state::unreachable);
  CHECK_FALSE(t.unreachable("network timeout to ingest"));  // same problem: quiet
  CHECK(t.unreachable("TLS failure to ingest: expired"));   // a different one: logged
  CHECK(t.unauthorized("invalid API key (401)"));
  CHECK(t.unauthorized("invalid API key (401)"));  // every refusal is logged
  CHECK(t.state() == ingest_state::unauthorized);
  CHECK(t.accepted());  // first acceptance: "handshake ok"
  CHECK(t.confirmed());
  CHECK(t.state() == ingest_state::ok);
  CHECK_FALSE(t.accepted());                      // only once
  CHECK(t.unreachable("invalid API key (401)"));  // an acceptance clears the last problem
  CHECK(t.confirmed());                           // confirmed stays
}
