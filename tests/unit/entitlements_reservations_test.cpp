// Quota reservations: N simulated sidecars sharing one simulated store (the reserve script's rules)
// under simulated time: allowed == limit exactly while the store is up; the bounds when it is not.
#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/entitlements/quota_reservations.hpp"

using namespace aforo::core::entitlements;

namespace {
const std::int64_t nov26 = *parse_iso8601("2026-11-26T06:00:00Z");
const std::string key = "c:f:2026-11";

// The store: one hash per key, the rules of quota_reserve_script() step by step.
struct sim_store {
  std::map<std::string, std::map<std::string, std::int64_t>> hashes;
  bool up = true;

  reserve_reply call(const std::string& me, const reserve_call& c, std::int64_t now_ms, std::int64_t ttl_ms) {
    auto& f = hashes[c.key];
    const auto has = [&](const std::string& k) { return f.count(k) > 0; };
    std::vector<std::string> expired;
    for (const auto& [k, v] : f) {
      if (k.rfind("e:", 0) == 0 && k.substr(2) != me && v <= now_ms) expired.push_back(k.substr(2));
    }
    for (const auto& i : expired) {
      std::int64_t h = has("h:" + i) ? f["h:" + i] : 0;
      if (has("r:" + i)) h = std::min(h, f["r:" + i]);
      if (h > 0) f["u:" + i] += h;  // what it may have admitted unseen; the rest returns
      f.erase("h:" + i);
      f.erase("e:" + i);
      f.erase("r:" + i);
    }
    if (!has("u:" + me) && c.others > (has("b:" + me) ? f["b:" + me] : 0)) f["b:" + me] = c.others;
    if (!has("u:" + me) || c.consumed > f["u:" + me]) f["u:" + me] = c.consumed;
    f["h:" + me] = c.held;
    std::int64_t used = 0, holds = 0;
    for (const auto& [k, v] : f) {
      if (k.rfind("u:", 0) == 0 || k.rfind("s:", 0) == 0) used += v;
      if (k.rfind("h:", 0) == 0) holds += v;
    }
    std::int64_t reserved = used + holds;
    for (const auto& [k, v] : f) {
      if (k.rfind("b:", 0) != 0) continue;
      const std::string i = k.substr(2);
      reserved = std::max(reserved, v + (has("u:" + i) ? f["u:" + i] : 0) + (has("h:" + i) ? f["h:" + i] : 0));
    }
    const std::int64_t grant = std::max<std::int64_t>(0, std::min(c.want, c.limit - reserved));
    f["h:" + me] = c.held + grant;
    if (c.held + grant > 0) {
      f["e:" + me] = now_ms + ttl_ms;
      f["r:" + me] = c.bound;
    } else {
      f.erase("h:" + me);
      f.erase("e:" + me);
      f.erase("r:" + me);
    }
    return {grant, used, reserved + grant};
  }
  std::int64_t used(const std::string& k) {
    std::int64_t u = 0;
    for (const auto& [f, v] : hashes[k]) u += (f.rfind("u:", 0) == 0 || f.rfind("s:", 0) == 0) ? v : 0;
    return u;
  }
};

struct sim_node {
  std::string instance;
  quota_reservations q;
  std::deque<std::int64_t> waiting;  // quantities of requests waiting on a reservation
  struct flight {
    reserve_call call;
    reserve_reply reply;
    bool ok;
    std::int64_t at;
  };
  std::vector<flight> flights;
  std::int64_t allowed = 0, denied = 0;
  std::vector<std::int64_t> remaining_seen;
  bool alive = true;
  sim_node(std::string id, reservation_options o) : instance(std::move(id)), q(o, 0) {}
};

struct cluster {
  sim_store store;
  std::vector<std::unique_ptr<sim_node>> nodes;
  reservation_options opts;
  std::int64_t now_ms = 0;
  std::int64_t limit;
  std::int64_t rtt_ms = 1;
  int next_id = 0;

  cluster(int n, std::int64_t lim, reservation_options o = {}) : opts(o), limit(lim) {
    for (int i = 0; i < n; ++i) add_node();
  }
  sim_node& add_node() {
    nodes.push_back(std::make_unique<sim_node>("n" + std::to_string(next_id++), opts));
    nodes.back()->q.set_now_ms(now_ms);
    return *nodes.back();
  }

  void decide(sim_node& n, std::int64_t qty) {
    auto r = n.q.check_and_consume("c", "f", limit, period_kind::month, qty, nov26);
    if (r.pending) {
      n.waiting.push_back(qty);
      return;
    }
    (r.allowed ? n.allowed : n.denied) += r.allowed ? qty : 1;
    n.remaining_seen.push_back(r.remaining);
  }

  void send(sim_node& n, bool report) {
    for (auto& c : n.q.take_calls(nov26, report)) {
      if (!store.up) {
        n.flights.push_back({c, {}, false, now_ms + rtt_ms});
        continue;
      }
      auto reply = store.call(n.instance, c, now_ms, opts.chunk_ttl_ms);
      n.flights.push_back({c, reply, true, now_ms + rtt_ms});
    }
  }

  // One millisecond: replies arrive (waiting requests decide again), requests arrive, calls go out.
  void step(const std::vector<std::int64_t>& requests_per_node, bool report = false) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      sim_node& n = *nodes[i];
      if (!n.alive) continue;
      n.q.set_now_ms(now_ms);
      n.q.set_connected(store.up);
      std::vector<sim_node::flight> arrived;
      for (auto it = n.flights.begin(); it != n.flights.end();) {
        if (it->at <= now_ms) {
          arrived.push_back(*it);
          it = n.flights.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& f : arrived) {
        if (f.ok) n.q.on_reply(f.call, f.reply);
        else n.q.on_failure(f.call);
        auto waiting = std::move(n.waiting);
        n.waiting.clear();
        for (auto qty : waiting) decide(n, qty);
      }
      const std::int64_t reqs = i < requests_per_node.size() ? requests_per_node[i] : 0;
      for (std::int64_t k = 0; k < reqs; ++k) decide(n, 1);
      if (n.q.calls_due() || report) send(n, report);
    }
    ++now_ms;
  }
  void idle(std::int64_t ms) {
    for (std::int64_t t = 0; t < ms; ++t) step({}, t % 100 == 0);
  }
  [[nodiscard]] std::int64_t allowed() const {
    std::int64_t a = 0;
    for (const auto& n : nodes) a += n->allowed;
    return a;
  }
};

void check_monotone(const cluster& c) {
  for (const auto& n : c.nodes) {
    for (std::size_t i = 1; i < n->remaining_seen.size(); ++i) REQUIRE(n->remaining_seen[i] <= n->remaining_seen[i - 1]);
  }
}
}  // namespace

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
      for (int t = 0; t < 2000; ++t) c.step(std::vector<std::int64_t>(static_cast<std::size_t>(nodes), 1), t % 100 == 0);
      CHECK(c.allowed() == limit);
      check_monotone(c);
    }
  }
}

TEST_CASE("reservations: far from the limit requests are admitted from the chunk without a call", "[entitlements][reservations]") {
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
    REQUIRE(r == 10);  // R + nothing leased
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

TEST_CASE("reservations: store down admits held units plus the allowance, reconciled on return", "[entitlements][reservations]") {
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

TEST_CASE("reservations: leases are drawn from the chunk, and units reported unused come back", "[entitlements][reservations]") {
  cluster c(1, 1000000);
  for (int t = 0; t < 300; ++t) c.step({10}, t % 100 == 0);
  auto& n = *c.nodes[0];
  const std::int64_t held = n.q.held(key);
  const std::int64_t lease = n.q.lease("c", "f", period_kind::month, 1000000, 1000, nov26);
  CHECK(lease > 0);
  CHECK(lease <= held);
  CHECK(lease <= 100);  // within R: the plugin may admit it all before anything is reported
  CHECK(n.q.held(key) == held - lease);
  n.q.consume("c", "f", period_kind::month, lease / 2, nov26);  // the plugin reports half admitted
  c.now_ms += 10000;                                          // long past the lease
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

TEST_CASE("reservations: leases nobody reports do not make the requests that ask wait", "[entitlements][reservations]") {
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
  c.step({1, 1}, false);   // reconnected: the first decisions send the reports
  c.step({}, false);
  c.step({}, false);
  CHECK(c.store.used(key) >= allowed);
  for (int t = 0; t < 3000; ++t) c.step({1, 1}, t % 100 == 0);
  CHECK(c.allowed() == 1000);
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
