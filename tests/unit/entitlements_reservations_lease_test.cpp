// Quota reservations with decision leases and with a store that comes back empty: N simulated
// sidecars sharing one simulated store (reservations_sim.hpp) under simulated time.
#include "reservations_sim.hpp"

TEST_CASE("reservations: leases are drawn from the chunk, and units reported unused come back",
          "[entitlements][reservations]") {
  reservation_options o;
  o.unreported_window_ms = 0;  // R = 100 units
  cluster c(1, 1000000, o);
  for (int t = 0; t < 300; ++t) c.step({10}, t % 100 == 0);
  auto& n = *c.nodes[0];
  const std::int64_t held = n.q.held(key);
  const std::int64_t lease = n.q.lease("c", "f", period_kind::month, 1000000, 1000, nov26);
  CHECK(lease > 0);
  CHECK(lease <= held);
  CHECK(lease <= 50);  // within half of R: the plugin may admit it all before anything is reported
  CHECK(n.q.held(key) == held - lease);
  n.q.consume("c", "f", period_kind::month, lease / 2, nov26);  // the plugin reports half admitted
  c.now_ms += 10000;                                            // long past the lease
  n.q.set_now_ms(c.now_ms);
  (void)n.q.check_and_consume("c", "f", 1000000, period_kind::month, 0, nov26);
  CHECK(n.q.held(key) == held - lease);  // not by time: a report may still come
  CHECK(n.q.lease_pool(key) == lease - lease / 2);
  n.q.release("c", "f", period_kind::month, lease - lease / 2, nov26);  // and the rest unused
  CHECK(n.q.lease_pool(key) == 0);
  CHECK(n.q.held(key) == held - lease / 2);
}

TEST_CASE("reservations: a lease reported long after 3 x lease_ttl never takes the key past its limit",
          "[entitlements][reservations][lease]") {
  cluster c(2, 1000);
  for (int t = 0; t < 50; ++t) c.step({3, 3}, t % 100 == 0);
  auto& n0 = *c.nodes[0];
  const std::int64_t lease = n0.q.lease("c", "f", period_kind::month, 200, 1000, nov26);
  REQUIRE(lease > 0);
  // The plugin admits the whole lease at once; its report comes 10 s later (a slow upstream, no
  // other request of the key on that worker). Meanwhile both sidecars take what they can.
  for (int t = 0; t < 10000; ++t) {
    c.step({1, 1}, t % 100 == 0);
    REQUIRE(c.allowed() + lease <= 1000);
  }
  n0.q.consume("c", "f", period_kind::month, lease, nov26);
  for (int t = 0; t < 2000; ++t) c.step({1, 1}, t % 100 == 0);
  CHECK(c.allowed() + lease == 1000);  // exact: the leased units were kept aside until reported
  CHECK(c.store.used(key) == 1000);
}

TEST_CASE("reservations: an idle key counts its unreported leases as used, and a late report is not counted twice",
          "[entitlements][reservations][lease]") {
  reservation_options o;
  o.chunk_ttl_ms = 3000;
  cluster c(2, 1000, o);
  for (int t = 0; t < 50; ++t) c.step({3, 0}, t % 100 == 0);
  auto& n0 = *c.nodes[0];
  const std::int64_t lease = n0.q.lease("c", "f", period_kind::month, 200, 1000, nov26);
  REQUIRE(lease > 0);
  c.idle(1200);  // a third of the TTL: the chunk goes back, the lease is written off
  CHECK(n0.q.held(key) == 0);
  CHECK(n0.q.lease_pool(key) == 0);
  CHECK(c.store.hashes[key]["u:n0"] == n0.allowed + lease);
  for (int t = 0; t < 3000; ++t) c.step({0, 1}, t % 100 == 0);
  CHECK(c.allowed() + lease == 1000);
  n0.q.consume("c", "f", period_kind::month, lease, nov26);  // the report, at last
  c.idle(300);
  CHECK(c.store.used(key) == 1000);
}

TEST_CASE("reservations: leases nobody reports do not make the requests that ask wait",
          "[entitlements][reservations]") {
  cluster c(1, 1000000);
  std::int64_t waited = 0, leased = 0;
  for (int t = 0; t < 2000; ++t) {
    c.step({10}, t % 100 == 0);
    // A client that ignores the leases it is given: one per request.
    for (int k = 0; k < 10; ++k) leased += c.nodes[0]->q.lease("c", "f", period_kind::month, 200, 1000, nov26);
    if (t >= 200) waited += static_cast<std::int64_t>(c.nodes[0]->waiting.size());
  }
  CHECK(leased > 0);
  CHECK(waited == 0);
  CHECK(c.allowed() == 20000);
}

TEST_CASE("reservations: a store back empty gets every sidecar's part at once, before the periodic report",
          "[entitlements][reservations]") {
  cluster c(2, 1000);
  for (int t = 0; t < 50; ++t) c.step({2, 2}, t % 100 == 0);
  c.idle(5);
  const std::int64_t allowed = c.allowed();
  c.store.up = false;
  c.step({}, false);
  c.store.hashes.clear();  // restarted without persistence
  c.store.up = true;
  c.step({1, 1}, false);  // reconnected: the first decisions send the reports
  c.step({}, false);
  c.step({}, false);
  CHECK(c.store.used(key) >= allowed);
  for (int t = 0; t < 3000; ++t) c.step({1, 1}, t % 100 == 0);
  CHECK(c.allowed() == 1000);
}

TEST_CASE("reservations: a store back empty keeps what a sidecar last saw the others use or hold, even of a dead one",
          "[entitlements][reservations]") {
  cluster c(2, 1000);
  for (int t = 0; t < 120; ++t) c.step({5, 0}, t % 100 == 0);
  c.idle(150);  // node 0 reports
  c.step({0, 1});
  c.idle(5);  // node 1 has seen node 0's part
  auto& f = c.store.hashes[key];
  const std::int64_t u0 = f["u:n0"], h0 = f["h:n0"];
  REQUIRE(u0 == c.nodes[0]->allowed);
  REQUIRE(u0 >= 500);
  c.nodes[0]->alive = false;  // killed
  c.store.hashes.clear();     // Redis restarted without persistence (or flushed): no reconnection seen
  for (int t = 0; t < 5000; ++t) {
    c.step({0, 5}, t % 100 == 0);
    REQUIRE(c.allowed() <= 1000);
  }
  // Under by at most what node 0 held when node 1 last saw it, never over.
  CHECK(c.allowed() == 1000 - h0);
  CHECK(c.store.hashes[key]["b:n1"] == u0 + h0);
}

TEST_CASE("reservations: a killed sidecar's leases count as used when its hold is settled (the plugin may admit them)",
          "[entitlements][reservations][lease]") {
  reservation_options o;
  o.chunk_ttl_ms = 3000;
  o.unreported = 10;
  o.unreported_window_ms = 1;
  cluster c(2, 1000, o);
  for (int t = 0; t < 60; ++t) c.step({2, 2}, t % 100 == 0);
  sim_node& dead = *c.nodes[1];
  const std::int64_t lease = dead.q.lease("c", "f", period_kind::month, 200, 1000, nov26);
  REQUIRE(lease > 0);
  c.step({0, 1});  // the lease's call: the store learns the larger bound
  c.step({});
  REQUIRE(c.store.hashes[key]["r:n1"] >= 10 + lease);
  dead.alive = false;  // killed; its worker's plugin still admits the whole lease
  for (int t = 0; t < 8000; ++t) {
    c.step({3, 0}, t % 100 == 0);
    REQUIRE(c.allowed() + lease <= 1000);
  }
  CHECK(c.allowed() + lease >= 1000 - 10);  // under by at most R
}
