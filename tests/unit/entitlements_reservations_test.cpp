// Quota reservations: N simulated sidecars sharing one simulated store (the reserve script's rules)
// under simulated time: allowed == limit exactly while the store is up; the bounds when it is not.
#include "reservations_sim.hpp"

TEST_CASE("reservations: steady load on 2 and 8 sidecars admits exactly the limit", "[entitlements][reservations]") {
  for (int nodes : {2, 8}) {
    for (std::int64_t limit : {1, 10, 100, 10000}) {
      CAPTURE(nodes, limit);
      cluster c(nodes, limit);
      // Each sidecar at its own rate (1 request every 1..4 ms), three times the limit in all.
      std::int64_t sent = 0;
      for (std::int64_t t = 0; sent < 3 * limit + 50 * nodes; ++t) {
        std::vector<std::int64_t> reqs(static_cast<std::size_t>(nodes));
        for (int i = 0; i < nodes; ++i) {
          if (t % (1 + i % 4) == 0) {
            reqs[static_cast<std::size_t>(i)] = 1;
            ++sent;
          }
        }
        c.step(reqs, t % 100 == 0);
        REQUIRE(c.allowed() <= limit);
      }
      c.idle(200);
      CHECK(c.allowed() == limit);
      CHECK(c.store.used(key) == limit);
      check_monotone(c);
    }
  }
}

TEST_CASE("reservations: bursts on 2 and 8 sidecars admit exactly the limit", "[entitlements][reservations]") {
  for (int nodes : {2, 8}) {
    for (std::int64_t limit : {1, 10, 100, 10000}) {
      CAPTURE(nodes, limit);
      cluster c(nodes, limit);
      // Waves: every sidecar gets a burst of limit/nodes + 3 requests in the same millisecond.
      const std::int64_t burst = limit / nodes + 3;
      for (int wave = 0; wave < 6; ++wave) {
        c.step(std::vector<std::int64_t>(static_cast<std::size_t>(nodes), burst), true);
        REQUIRE(c.allowed() <= limit);
        c.idle(5);
        REQUIRE(c.allowed() <= limit);
      }
      // And a steady tail so that units held anywhere are used.
      for (int t = 0; t < 2000; ++t)
        c.step(std::vector<std::int64_t>(static_cast<std::size_t>(nodes), 1), t % 100 == 0);
      CHECK(c.allowed() == limit);
      check_monotone(c);
    }
  }
}

TEST_CASE("reservations: far from the limit requests are admitted from the chunk without a call",
          "[entitlements][reservations]") {
  cluster c(1, 1000000);
  std::int64_t waited = 0;
  for (int t = 0; t < 2000; ++t) {
    c.step({10}, t % 100 == 0);
    if (t >= 200) waited += static_cast<std::int64_t>(c.nodes[0]->waiting.size());
  }
  CHECK(c.allowed() == 20000);
  CHECK(waited == 0);  // refilled before it ran out
  CHECK(c.nodes[0]->q.target(key) > 100);
}

TEST_CASE("reservations: chunks shrink to one near the limit", "[entitlements][reservations]") {
  cluster c(2, 5000);
  std::int64_t last_target = 0;
  for (int t = 0; t < 3000 && c.allowed() < 5000; ++t) {
    c.step({3, 3}, t % 100 == 0);
    last_target = c.nodes[0]->q.target(key);
  }
  CHECK(c.allowed() == 5000);
  CHECK(last_target == 1);
}

TEST_CASE("reservations: a killed sidecar's unused units return after the TTL: under by at most R, never over",
          "[entitlements][reservations]") {
  for (std::int64_t limit : {1000, 10000}) {
    CAPTURE(limit);
    reservation_options o;
    o.chunk_ttl_ms = 3000;
    o.unreported = 10;
    o.unreported_window_ms = 1;  // R = 10 at these rates (2 units a millisecond)
    o.max_chunk = 50;
    cluster c(2, limit, o);
    // A burst on both; node 1 is killed once it holds units and has admitted some unreported.
    sim_node& dead = *c.nodes[1];
    for (int t = 0; t < 5000; ++t) {
      c.step({2, 2}, t % 100 == 0);
      if (t > 3 && dead.q.held(key) > 0 && (dead.q.unacknowledged(key) > 0 || t > 40)) break;
    }
    REQUIRE(dead.q.held(key) > 0);
    dead.alive = false;  // SIGKILL: nothing returned, replies in flight lost
    auto& f = c.store.hashes[key];
    const std::int64_t h = f["h:n1"], r = f["r:n1"], u = f["u:n1"];
    REQUIRE(r == 10);                              // R + nothing leased
    const std::int64_t unseen = dead.allowed - u;  // admitted, not in the store
    CHECK(unseen >= 0);
    CHECK(unseen <= 10);
    // Until the TTL the others have what the dead sidecar does not hold: under by at most its hold.
    for (int t = 0; t < 2500; ++t) {
      c.step({5, 0}, t % 100 == 0);
      REQUIRE(c.allowed() <= limit);
    }
    CHECK(c.allowed() >= limit - h);
    // After it, the hold is settled as u + min(h, R) used and the rest comes back: exactly.
    for (int t = 0; t < 6000; ++t) {
      c.step({5, 0}, t % 100 == 0);
      REQUIRE(c.allowed() <= limit);
    }
    CHECK(c.allowed() == limit - (std::min(h, r) - unseen));
    CHECK(c.allowed() >= limit - 10);
    CHECK(c.store.hashes[key]["u:n1"] == u + std::min(h, r));
    CHECK(c.store.hashes[key].count("h:n1") == 0);
  }
}

TEST_CASE("reservations: a sidecar never admits more than R units beyond what the store acknowledged",
          "[entitlements][reservations]") {
  reservation_options o;
  o.unreported = 20;
  o.unreported_window_ms = 1;  // R = 20 at 10 units a millisecond
  cluster c(1, 1000000, o);
  std::int64_t waited = 0;
  for (int t = 0; t < 2000; ++t) {
    c.step({10}, t % 100 == 0);
    REQUIRE(c.nodes[0]->q.unacknowledged(key) <= 20);
    if (t >= 200) waited += static_cast<std::int64_t>(c.nodes[0]->waiting.size());
  }
  CHECK(c.allowed() == 20000);
  // Reported from half of R in the background: at 10 a millisecond and a 1 ms round trip the
  // report is back before R is reached, so requests seldom wait.
  CHECK(waited < 100);
}

TEST_CASE("reservations: a busy key's R grows with its rate, so its requests do not wait for reports",
          "[entitlements][reservations]") {
  std::int64_t waited[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    reservation_options o;
    o.unreported_window_ms = i == 0 ? 0 : 10;  // R = 100 units, or 10 ms of the rate (1,000)
    cluster c(1, 1000000000, o);
    c.rtt_ms = 2;
    for (int t = 0; t < 2000; ++t) {
      c.step({100}, t % 100 == 0);
      REQUIRE(c.nodes[0]->q.unacknowledged(key) <= std::max<std::int64_t>(100, 1000 + 100));
      if (t >= 200) waited[i] += static_cast<std::int64_t>(c.nodes[0]->waiting.size());
    }
    c.idle(10);
    CHECK(c.allowed() == 200000);
  }
  CHECK(waited[0] > 1000);  // 100 a millisecond, a report every 50 and 2 ms to answer it
  CHECK(waited[1] == 0);
}

TEST_CASE("reservations: a request larger than R waits once, for a call whose bound covers it",
          "[entitlements][reservations]") {
  reservation_options o;
  o.unreported = 10;
  o.unreported_window_ms = 1;
  cluster c(1, 100000, o);
  for (int t = 0; t < 200; ++t) c.step({5}, t % 100 == 0);
  const std::int64_t before = c.allowed();
  c.step({});
  c.decide(*c.nodes[0], 500);  // a batch of 500 units: more than R
  REQUIRE(c.nodes[0]->waiting.size() == 1);
  c.idle(5);
  CHECK(c.allowed() == before + 500);
  CHECK(c.store.hashes[key]["r:n0"] == 10);  // back to R once it is admitted
}

TEST_CASE("reservations: an idle sidecar gives its chunk back for the others", "[entitlements][reservations]") {
  reservation_options o;
  o.chunk_ttl_ms = 3000;
  cluster c(2, 100000, o);
  for (int t = 0; t < 200; ++t) c.step({20, 0}, t % 100 == 0);
  REQUIRE(c.nodes[0]->q.held(key) > 0);
  c.idle(1100);  // a third of the TTL idle
  CHECK(c.nodes[0]->q.held(key) == 0);
  CHECK(c.store.hashes[key].count("h:n0") == 0);
  // Exact to the unit: the other sidecar can take everything left.
  for (int t = 0; t < 20000 && c.allowed() < 100000; ++t) c.step({0, 20}, t % 100 == 0);
  CHECK(c.allowed() == 100000);
}

TEST_CASE("reservations: store down admits held units plus the allowance, reconciled on return",
          "[entitlements][reservations]") {
  reservation_options o;
  o.down_allowance = 5;
  cluster c(2, 100, o);
  for (int t = 0; t < 20; ++t) c.step({1, 1}, t % 100 == 0);
  const std::int64_t before = c.allowed();
  c.store.up = false;
  for (int t = 0; t < 500; ++t) c.step({2, 2}, t % 100 == 0);
  // Bound: the limit plus N x allowance at most; each sidecar used its allowance once held ran out.
  CHECK(c.allowed() <= 100 + 2 * 5);
  CHECK(c.allowed() > before);
  CHECK(c.nodes[0]->q.down_admitted() == 5);
  CHECK(c.nodes[0]->q.take_down_warning());
  CHECK_FALSE(c.nodes[0]->q.take_down_warning());
  c.store.up = true;
  for (int t = 0; t < 2000; ++t) c.step({1, 1}, t % 100 == 0);
  // Reconciled: the store has every admitted unit, and nothing more is admitted past the limit.
  CHECK(c.store.used(key) == c.allowed());
  CHECK(c.allowed() <= 100 + 2 * 5);
  CHECK(c.allowed() >= 100);
}

TEST_CASE("reservations: store down admits a share of a large limit (quota_redis_down_percent), not a refusal",
          "[entitlements][reservations]") {
  reservation_options o;  // down_allowance 0, down_percent 1
  cluster c(2, 100000, o);
  c.store.up = false;  // down before anything is held
  for (int t = 0; t < 3000; ++t) c.step({1, 1}, t % 100 == 0);
  // Each sidecar admits 1% of the limit, 1,000 units, then refuses: the bound is limit + 2 x 1,000.
  CHECK(c.nodes[0]->q.down_admitted() == 1000);
  CHECK(c.nodes[1]->q.down_admitted() == 1000);
  CHECK(c.allowed() == 2000);
  reservation_options none;
  none.down_percent = 0;
  cluster strict(2, 100000, none);
  strict.store.up = false;
  for (int t = 0; t < 100; ++t) strict.step({1, 1}, t % 100 == 0);
  CHECK(strict.allowed() == 0);  // 0% and no allowance: nothing held, nothing admitted
}

TEST_CASE("reservations: a restarted sidecar starts from the store's totals", "[entitlements][reservations]") {
  cluster c(1, 100);
  for (int t = 0; t < 60; ++t) c.step({1}, t % 100 == 0);
  c.idle(50);
  const std::int64_t first = c.allowed();
  REQUIRE(first == 60);
  // Graceful stop: held units go back; the new process is a new holder.
  auto& old = *c.nodes[0];
  old.q.set_now_ms(c.now_ms);
  for (auto& call : old.q.shutdown_calls(nov26)) c.store.call(old.instance, call, c.now_ms, c.opts.chunk_ttl_ms);
  old.alive = false;
  c.add_node();
  for (int t = 0; t < 500; ++t) c.step({0, 1}, t % 100 == 0);
  CHECK(c.nodes[1]->allowed == 40);
}

TEST_CASE("reservations: remaining counts what other sidecars used or hold", "[entitlements][reservations]") {
  cluster c(2, 1000);
  for (int t = 0; t < 40; ++t) c.step({3, 0}, t % 100 == 0);
  c.idle(150);  // node 0 reports its consumption
  const std::int64_t used_by_0 = c.nodes[0]->allowed;
  REQUIRE(used_by_0 == 120);
  const std::int64_t held_by_0 = c.nodes[0]->q.held(key);
  c.step({0, 1});
  c.idle(5);
  REQUIRE(c.nodes[1]->remaining_seen.size() == 1);
  // Node 0's consumption and whatever it still holds count as used for node 1.
  CHECK(c.nodes[1]->remaining_seen[0] <= 1000 - used_by_0 - 1);
  CHECK(c.nodes[1]->remaining_seen[0] == 1000 - used_by_0 - 1 - held_by_0);
}
