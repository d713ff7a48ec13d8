// The decision table of docs/design/decision-contract.md#reasons.
#include "core/entitlements/decision_engine.hpp"

#include <algorithm>
#include <charconv>

#include "core/entitlements/feature_mapper.hpp"

namespace aforo::core::entitlements {

namespace {
constexpr std::int64_t default_throttle_retry = 1;
constexpr std::int64_t default_block_retry = 1800;

// "85% of quota used" without allocating.
void add_warning_header(header_list& h, std::int64_t used, std::int64_t limit) {
  const auto pct = static_cast<std::int64_t>(static_cast<long double>(used) * 100 / static_cast<long double>(limit));
  char buf[40];
  auto res = std::to_chars(buf, buf + 20, pct);
  constexpr std::string_view tail = "% of quota used";
  char* end = std::copy(tail.begin(), tail.end(), res.ptr);
  h.add("X-RateLimit-Warning", std::string_view(buf, static_cast<std::size_t>(end - buf)));
}
}  // namespace

void decision_engine::deny(decision& d, verdict kind, int status, reason why, std::int64_t retry_after) const {
  d.why = why;
  if (options_.mode == enforcement_mode::shadow) {
    d.shadow = true;  // reported, allowed anyway: kind/status/allowed stay "allow"
    return;
  }
  d.kind = kind;
  d.allowed = false;
  d.status = status;
  d.retry_after = retry_after;
  if (retry_after > 0) d.headers.add("Retry-After", retry_after);
}

void decision_engine::grant_lease(decision& d, const check_request& req, std::span<const feature_rule> rules,
                                  quota_ledger& quota, const feature_entitlement* fe, std::string_view feature,
                                  std::int64_t now) const {
  if (options_.lease_requests <= 0 || !d.allowed || d.shadow || req.quantity != 1 || d.cache != "hit") return;
  if (d.margin == margin_level::l2 || d.margin == margin_level::l3) return;
  const mapping_scope scope =
      scope_of_mapping(rules, req.feature, {req.service, req.route, req.method, req.path, req.operation});
  // A path-scoped lease covers one path, so a worker could hold one per distinct path of a limited
  // feature: no bound on the sum. Limited features are leased only by route or prefix.
  if (d.remaining_quota && scope.scope == mapping_scope::kind::path) return;
  std::int64_t n = options_.lease_requests;
  if (d.remaining_quota) n = std::min(n, *d.remaining_quota / lease_quota_divisor);
  if (n > 0 && fe != nullptr && fe->limit) {
    // Units set aside for a lease return only when reported: not for a client that never reports.
    if (quota.lease_needs_reports() && !req.reports_unused) return;
    n = quota.lease(req.customer_id, feature, fe->period, n, options_.lease_ttl_ms, now);
  }
  if (n <= 0) return;
  d.lease = n;
  d.lease_ttl_ms = options_.lease_ttl_ms;
  switch (scope.scope) {
    case mapping_scope::kind::route:
      d.lease_scope = "route";
      break;
    case mapping_scope::kind::prefix:
      d.lease_scope = "prefix";
      d.lease_prefix = scope.prefix;
      break;
    case mapping_scope::kind::path:
      d.lease_scope = "path";
      break;
  }
}

std::optional<decision> decision_engine::decide(const check_request& req, const snapshot* snap, quota_ledger& quota,
                                                std::int64_t now, std::string_view cache_state,
                                                margin_hook* margin) const {
  if (snap == nullptr) return std::nullopt;
  return decide_for(req, snap->rules, snap->find_customer(req.customer_id), quota, now, cache_state, margin);
}

decision decision_engine::decide_for(const check_request& req, std::span<const feature_rule> rules,
                                     const customer* cust, quota_ledger& quota, std::int64_t now,
                                     std::string_view cache_state, margin_hook* margin) const {
  decision d;
  d.cache = cache_state;
  const resolved_feature rf =
      resolve_feature(rules, req.feature, {req.service, req.route, req.method, req.path, req.operation});
  if (!rf.feature.empty()) d.feature = rf.feature;
  if (rf.rule != nullptr) {
    d.metric = rf.rule->metric;
    d.unit_cost = rf.rule->unit_cost;
  }

  if (cust == nullptr) {
    if (options_.unknown_customer == unknown_customer_policy::allow) {
      d.why = reason::unknown_customer;  // let through, not held to any quota
    } else {
      deny(d, verdict::block, 403, reason::unknown_customer, 0);
    }
    return d;
  }
  d.plan = std::string_view(cust->plan);

  if (!cust->subscription_active(now)) {
    deny(d, verdict::block, 402, reason::subscription_inactive, 0);
    return d;
  }

  const feature_entitlement* fe = nullptr;
  if (!rf.feature.empty()) {
    fe = cust->find_feature(rf.feature);
    if (fe == nullptr) {
      deny(d, verdict::block, 403, reason::feature_not_entitled, 0);
      return d;
    }
    // Requests the plugin admitted under its last lease of this key happened: count them first.
    if (req.leased > 0 && fe->limit) quota.consume(req.customer_id, rf.feature, fe->period, req.leased, now);
    // And units of its ended leases it never admitted go back (reservations: to the chunk).
    if (req.lease_unused > 0 && fe->limit)
      quota.release(req.customer_id, rf.feature, fe->period, req.lease_unused, now);
  }

  bool margin_alert = false;
  if (margin != nullptr) {
    const margin_verdict v = margin->evaluate({req.customer_id, *cust, rf.feature, rf.rule, req.quantity, now});
    d.margin = v.level;
    d.margin_bp = v.margin_bp;
    if (v.deny && v.level == margin_level::l2) {
      const std::int64_t retry = v.retry_after > 0 ? v.retry_after : default_throttle_retry;
      deny(d, verdict::throttle, 429, reason::margin_throttle, retry);
      if (!d.shadow) {
        d.headers.add("X-Aforo-Throttle", "true");
        d.headers.add("X-Margin-Guard", "throttled");
        d.headers.add("X-Margin-Guard-Level", "L2");
      }
      return d;
    }
    if (v.deny && v.level == margin_level::l3) {
      const std::int64_t retry = v.retry_after > 0 ? v.retry_after : default_block_retry;
      deny(d, verdict::block, 429, reason::margin_block, retry);
      if (!d.shadow) {
        d.headers.add("X-Margin-Guard", "blocked");
        d.headers.add("X-Margin-Guard-Level", "L3");
      }
      return d;
    }
    margin_alert = v.level != margin_level::none;
  }

  if (fe != nullptr && fe->limit) {
    const quota_result q =
        quota.check_and_consume(req.customer_id, rf.feature, *fe->limit, fe->period, req.quantity, now);
    if (q.pending) {
      d.quota_pending = true;
      return d;
    }
    const std::int64_t reset_in = std::max<std::int64_t>(q.reset_at - now, 0);
    d.limit = q.limit;
    d.remaining_quota = q.remaining;
    d.quota_reset = q.reset_at;
    d.headers.add("X-RateLimit-Limit", q.limit);
    d.headers.add("X-RateLimit-Remaining", q.remaining);
    d.headers.add("X-RateLimit-Reset", reset_in);
    if (!q.allowed) {
      deny(d, verdict::block, 429, reason::quota_exceeded, std::max<std::int64_t>(reset_in, 1));
      return d;
    }
    d.quota_consumed = true;
    if (q.warning) {
      d.why = reason::quota_warning;
      add_warning_header(d.headers, q.used, q.limit);
    }
  }

  if (margin_alert) {
    d.why = reason::margin_alert;
    d.upstream_headers.add("X-Margin-Guard-Warning", "margin-low");
  }
  grant_lease(d, req, rules, quota, fe, rf.feature, now);
  return d;
}

}  // namespace aforo::core::entitlements
