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
    std::vector<std::string> expired;
    for (const auto& [k, v] : f) {
      if (k.rfind("e:", 0) == 0 && k.substr(2) != me && v <= now_ms) expired.push_back(k.substr(2));
    }
    for (const auto& i : expired) {
      if (f["h:" + i] > 0) f["s:" + i] += f["h:" + i];
      f.erase("h:" + i);
      f.erase("e:" + i);
    }
    f["u:" + me] = std::max(f["u:" + me], c.consumed);
    f["h:" + me] = c.held;
    std::int64_t used = 0, holds = 0;
    for (const auto& [k, v] : f) {
      if (k.rfind("u:", 0) == 0 || k.rfind("s:", 0) == 0) used += v;
      if (k.rfind("h:", 0) == 0) holds += v;
    }
    const std::int64_t grant = std::max<std::int64_t>(0, std::min(c.want, c.limit - used - holds));
    f["h:" + me] = c.held + grant;
    if (c.held + grant > 0) {
      f["e:" + me] = now_ms + ttl_ms;
    } else {
      f.erase("h:" + me);
      f.erase("e:" + me);
    }
    return {grant, used, used + holds + grant};
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

TEST_CASE("reservations: a killed sidecar is settled after the TTL, never over-admitting", "[entitlements][reservations]") {
  reservation_options o;
  o.chunk_ttl_ms = 3000;
  cluster c(2, 1000, o);
  for (int t = 0; t < 100 || c.nodes[1]->q.held(key) == 0; ++t) c.step({2, 2}, t % 100 == 0);
  sim_node& dead = *c.nodes[1];
  const std::int64_t dead_held = dead.q.held(key);
  dead.alive = false;  // SIGKILL: nothing returned
  REQUIRE(dead_held > 0);
  for (int t = 0; t < 6000; ++t) {
    c.step({5, 0}, t % 100 == 0);
    REQUIRE(c.allowed() <= 1000);
  }
  // What the dead sidecar held counts as used: under by at most its chunk, never over.
  CHECK(c.allowed() >= 1000 - dead_held);
  CHECK(c.allowed() <= 1000);
  CHECK(c.store.used(key) == 1000);
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

TEST_CASE("reservations: leases are drawn from the chunk and unreported units come back", "[entitlements][reservations]") {
  cluster c(1, 1000000);
  for (int t = 0; t < 300; ++t) c.step({10}, t % 100 == 0);
  auto& n = *c.nodes[0];
  const std::int64_t held = n.q.held(key);
  const std::int64_t lease = n.q.lease("c", "f", period_kind::month, 1000000, 1000, nov26);
  CHECK(lease > 0);
  CHECK(lease <= held);
  CHECK(n.q.held(key) == held - lease);
  n.q.consume("c", "f", period_kind::month, lease / 2, nov26);  // the plugin reports half
  c.now_ms += 1000 + 2000;                                    // past the lease and its grace
  n.q.set_now_ms(c.now_ms);
  CHECK(n.q.held(key) == held - lease);                       // still set aside until looked at
  (void)n.q.check_and_consume("c", "f", 1000000, period_kind::month, 0, nov26);
  CHECK(n.q.held(key) == held - lease / 2);                   // the unreported half is back
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
