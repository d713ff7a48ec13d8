// What decision_service.cpp and decision_service_reservations.cpp share: the clock helpers, a request
// waiting for its quota reservation, and the service's metrics. Included by those two files only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "app/decisions/decision_service.hpp"
#include "core/entitlements/check_request.hpp"
#include "util/clock.hpp"
#include "util/metrics.hpp"

namespace aforo::app {

namespace decision_detail {

namespace ce = core::entitlements;
using util::unix_now;
using owned_check = ce::owned_check_request;

inline std::int64_t steady_ms(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline double seconds_of(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace decision_detail

/// A request waiting for its quota reservation; decided again (with leased 0: already counted).
struct decision_service::waiter {
  std::shared_ptr<decision_detail::owned_check> req;
  snapshot_ptr snap;
  entitlements_sharing::customer_ptr looked_up;  // keeps a customer from the shared store alive
  const core::entitlements::customer* cust = nullptr;
  std::string_view cache;
  clock::time_point started;
  io::respond_fn respond;
  bool waited = false;  // counted in aforo_sidecar_quota_reservation_waits_total
};

struct decision_service::metrics_set {
  util::histogram_metric& latency = util::metrics().histogram(
      "aforo_sidecar_check_duration_seconds", "Time to answer POST /v1/check inside the sidecar, seconds.",
      {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01});
  util::counter_metric& hit = lookups("hit");
  util::counter_metric& stale = lookups("stale");
  util::counter_metric& miss = lookups("miss");
  util::counter_metric& no_snapshot = util::metrics().counter(
      "aforo_sidecar_check_unavailable_total", "POST /v1/check answered 503 (no snapshot, or past max_stale).");
  util::counter_metric& bad_request = util::metrics().counter("aforo_sidecar_check_bad_requests_total",
                                                              "POST /v1/check answered 400 (malformed body).");
  util::counter_metric& leases = util::metrics().counter(
      "aforo_sidecar_check_leases_total",
      "Allowed decisions that carried a decision lease (the plugin may admit further requests without asking).");
  util::counter_metric& leased = util::metrics().counter(
      "aforo_sidecar_check_leased_requests_total",
      "Requests the plugin reported as admitted under decision leases (added to the quota counters).");
  util::counter_metric& report_repeats = reports("repeated");
  util::counter_metric& report_unknown = reports("unknown_resend");
  util::counter_metric& quota_waits = util::metrics().counter(
      "aforo_sidecar_quota_reservation_waits_total",
      "Checks that waited for a quota reservation from Redis (too few units held: near the limit, or a key's first use).");
  util::counter_metric& quota_down = util::metrics().counter(
      "aforo_sidecar_quota_redis_down_admitted_total",
      "Quota units admitted beyond the chunks held while Redis was unavailable (cache.quota_redis_down_allowance).");
  util::counter_metric& loads = util::metrics().counter("aforo_sidecar_entitlements_snapshot_loads_total",
                                                        "Entitlement snapshots loaded from the source.");
  util::counter_metric& load_failures = util::metrics().counter(
      "aforo_sidecar_entitlements_snapshot_load_failures_total",
      "Failed snapshot refreshes (unreadable or invalid file, control plane error); the snapshot in force stays.");
  util::counter_metric& lkg_loaded = lkg("loaded");
  util::counter_metric& lkg_ignored = lkg("ignored");

  static util::counter_metric& lkg(const char* result) {
    return util::metrics().counter(
        "aforo_sidecar_entitlements_last_known_good_loads_total",
        "Startups whose source could not give a snapshot: the persisted last known good one loaded, or "
        "ignored (none, corrupt, truncated or invalid).",
        std::string("result=\"") + result + "\"");
  }

  static util::counter_metric& reports(const char* kind) {
    return util::metrics().counter(
        "aforo_sidecar_check_lease_reports_resent_total",
        "Lease reports the plugin sent again after a failed check: repeated (known: only what "
        "was not applied yet is counted), unknown_resend (forgotten or from before a restart: "
        "leased counted, lease_unused not given back).",
        std::string("kind=\"") + kind + "\"");
  }
  static util::counter_metric& lookups(const char* result) {
    return util::metrics().counter(
        "aforo_sidecar_entitlements_cache_lookups_total",
        "Customer look-ups by POST /v1/check: hit, stale (served from an aging snapshot) or miss.",
        std::string("result=\"") + result + "\"");
  }
};

}  // namespace aforo::app
