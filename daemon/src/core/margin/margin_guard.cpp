// The margin guard; see margin_guard.hpp.
#include "core/margin/margin_guard.hpp"

#include <algorithm>

namespace aforo::core::margin {

namespace ce = entitlements;

ce::period_kind cogs_period_of(const ce::customer* cust) {
  return cust != nullptr && cust->revenue ? cust->revenue->period : ce::period_kind::month;
}

void margin_guard::set_guards(guard_set guards) {
  std::vector<state_map> next(guards.guards.size());
  for (std::size_t i = 0; i < guards.guards.size(); ++i) {
    for (std::size_t j = 0; j < guards_.guards.size(); ++j) {
      if (guards_.guards[j].id == guards.guards[i].id) {
        next[i] = std::move(states_[j]);
        break;
      }
    }
  }
  guards_ = std::move(guards);
  states_ = std::move(next);
}

const guard* margin_guard::find_guard(const ce::margin_query& q) const {
  for (const auto& g : guards_.guards) {
    if (g.applies_to.matches(q.customer_id, q.cust.plan, q.feature)) return &g;
  }
  return nullptr;
}

void margin_guard::report(const guard& g, std::string_view customer, margin_level from, margin_level to, micros revenue,
                          micros cogs, const ce::period_window& window, std::int64_t now) {
  level_change c;
  c.guard_id = g.id;
  c.customer_id = std::string(customer);
  c.from = from;
  c.to = to;
  c.mode = g.mode;
  c.margin_bp = margin_bp(revenue, cogs);
  c.threshold_bp = threshold_of(g, to != margin_level::none ? to : from);
  c.min_margin_bp = g.min_margin_bp;
  c.revenue = revenue;
  c.cogs = cogs;
  c.period = std::string(window.key());
  c.period_end = window.end;
  c.at = now;
  if (g.mode != guard_mode::shadow && g.level_1) c.notify = g.level_1->notify;
  changes_.push_back(std::move(c));
}

ce::margin_verdict margin_guard::evaluate_at(const ce::margin_query& q, std::int64_t now_ms) {
  const guard* g = find_guard(q);
  if (g == nullptr) return {};
  state_map& states = states_[static_cast<std::size_t>(g - guards_.guards.data())];
  auto it = states.find(q.customer_id);

  margin_level level = margin_level::none;
  micros revenue = 0;
  micros cogs = 0;
  ce::period_window window;
  if (q.cust.revenue) {
    revenue = q.cust.revenue->amount;
    window = ce::period_of(q.cust.revenue->period, q.now);
    cogs = ledger_.cogs(q.customer_id, q.cust.revenue->period, q.now);
    level = level_for(*g, revenue, cogs);
  }
  const auto margin = q.cust.revenue ? margin_bp(revenue, cogs) : std::nullopt;
  if (it == states.end()) {
    if (level == margin_level::none) {  // healthy customers hold no state
      ce::margin_verdict healthy;
      healthy.margin_bp = margin;
      return healthy;
    }
    it = states.emplace(std::string(q.customer_id), customer_state{}).first;
  }
  customer_state& st = it->second;
  if (level != st.level) {
    report(*g, q.customer_id, st.level, level, revenue, cogs, window, q.now);
    if (level == margin_level::l2 && g->level_2) st.bucket.reset(g->level_2->throttle_rate, now_ms);
    st.level = level;
  }

  ce::margin_verdict v;
  v.level = level;
  v.margin_bp = margin;
  if (g->mode != guard_mode::enforce) return v;
  if (level == margin_level::l2 && g->level_2) {
    if (!st.bucket.try_take(now_ms)) {
      v.deny = true;
      v.retry_after = std::max<std::int64_t>((st.bucket.wait_ms(now_ms) + 999) / 1000, 1);
    }
  } else if (level == margin_level::l3 && g->level_3) {
    v.deny = true;
    v.retry_after = std::max<std::int64_t>(std::min(g->level_3->retry_after_s, window.end - q.now), 1);
  }
  return v;
}

void margin_guard::record_usage(std::span<const ce::feature_rule> rules, const ce::customer* cust,
                                const usage_event& ev, std::int64_t now) {
  const picos cost = usage_cost(rules, ev);
  if (cost <= 0) return;
  ledger_.add(ev.customer_id, cogs_period_of(cust), cost, now);
}

std::vector<level_change> margin_guard::take_changes() {
  std::vector<level_change> out;
  out.swap(changes_);
  return out;
}

std::array<std::size_t, 4> margin_guard::customers_per_level() const {
  std::array<std::size_t, 4> counts{};
  for (const auto& states : states_) {
    for (const auto& [id, st] : states) ++counts[static_cast<std::size_t>(st.level)];
  }
  counts[0] = 0;
  return counts;
}

void margin_guard::expire(std::int64_t now) {
  ledger_.expire(now);
  for (auto& states : states_) {
    std::erase_if(states, [](const auto& kv) { return kv.second.level == margin_level::none; });
  }
}

}  // namespace aforo::core::margin
