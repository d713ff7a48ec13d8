// The reservation tests' simulation: N sidecars (quota_reservations) sharing one simulated store
// that follows the rules of quota_reserve_script() step by step, under simulated time.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
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
        if (f.ok)
          n.q.on_reply(f.call, f.reply);
        else
          n.q.on_failure(f.call);
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

[[maybe_unused]] void check_monotone(const cluster& c) {
  for (const auto& n : c.nodes) {
    for (std::size_t i = 1; i < n->remaining_seen.size(); ++i)
      REQUIRE(n->remaining_seen[i] <= n->remaining_seen[i - 1]);
  }
}
}  // namespace
