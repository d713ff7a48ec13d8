// Decisions from Aforo's own endpoints (entitlements.source aforo_api, or aforo_api.fill_missing):
// the pre-flight quota check per customer and metric and the margin quick check per customer, behind
// answer_cache (single-flight per key, refresh ahead of expiry, stale-while-error).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "app/service.hpp"
#include "core/aforo_api/answer_cache.hpp"
#include "core/aforo_api/answers.hpp"
#include "core/entitlements/check_request.hpp"
#include "core/entitlements/decision.hpp"
#include "io/http/http_client.hpp"
#include "util/lifetime.hpp"

namespace aforo::app {

/// A check never waits on Aforo longer than entitlements.aforo_api.wait: with a fresh answer cached
/// it is decided at once (a refresh may start in the background); with none, it waits for the one
/// call in flight for its key (every concurrent check of the key waits on the same call) and is
/// answered when that call ends or the wait passes. Then, without a usable answer (first call not
/// back yet, or failed with nothing cached), `done(nullptr)`: the caller answers 503 and the
/// plugin's fallback_on_error applies (allow = fail-open by default), as for a missing snapshot.
/// After a failed call the last answer keeps serving (cache "stale"), up to entitlements.max_stale
/// when that is set, and the key is asked again after error_retry.
/// Threading: io thread only. Destroying it answers every waiting check with done(nullptr).
class aforo_api_decider {
 public:
  /// Called once per check: the decision (valid only during the call) or null (no decision).
  using done_fn = std::function<void(const core::entitlements::decision*)>;

  /// Throws std::runtime_error when aforo.ca_file cannot be loaded (startup).
  explicit aforo_api_decider(const context& ctx);
  ~aforo_api_decider();
  aforo_api_decider(const aforo_api_decider&) = delete;
  aforo_api_decider& operator=(const aforo_api_decider&) = delete;

  /// Applies the live keys of entitlements.aforo_api (TTLs, wait, checks on or off, metric).
  void reload(const config::sidecar_config& next);

  /// Decides req (its views need not outlive this call). metric: the metricName to ask about
  /// (empty = entitlements.aforo_api.metric).
  void check(const core::entitlements::check_request& req, std::string_view metric, done_fn done);

  /// Calls made to Aforo since start (tests and the bench read them from /metrics too).
  [[nodiscard]] std::uint64_t calls() const { return calls_; }

 private:
  struct pending;
  struct metrics_set;

  void apply(const config::sidecar_config& c);
  void fetch_quota(const std::string& key, const std::string& customer, const std::string& metric);
  void fetch_margin(const std::string& key, const std::string& customer);
  void send(io::client_request req, std::function<void(io::client_result)> on_result);
  void settle(std::unordered_map<std::string, std::vector<std::shared_ptr<pending>>>& waiters, const std::string& key,
              bool quota);
  void finish(const std::shared_ptr<pending>& p);
  void note_failure(const char* what, const std::string& why);
  void schedule_sweep();
  [[nodiscard]] std::int64_t now_ms() const;

  const context& ctx_;
  config::aforo_api_config cfg_;
  std::int64_t max_stale_ms_ = 0;
  std::string quota_url_;
  std::string margin_url_;
  std::vector<std::unique_ptr<io::http_client>> clients_;
  std::size_t next_client_ = 0;
  core::aforo_api::answer_cache<core::aforo_api::quota_answer> quota_cache_;
  core::aforo_api::answer_cache<core::aforo_api::margin_answer> margin_cache_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<pending>>> quota_waiters_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<pending>>> margin_waiters_;
  std::unordered_map<std::string, std::int64_t> throttle_credit_;  // by customer, at L2
  boost::asio::steady_timer sweep_timer_;
  std::uint64_t calls_ = 0;
  std::string failing_;  // the failure last logged; empty while healthy
  std::unique_ptr<metrics_set> metrics_;
  util::lifetime alive_;
};

}  // namespace aforo::app
