// Decisions from Aforo's quota and margin endpoints; see aforo_api_decider.hpp.
#include "app/decisions/aforo_api_decider.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "io/clients/aforo_client.hpp"
#include "core/aforo_api/decide.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::app {

namespace ce = core::entitlements;
namespace ca = core::aforo_api;
using namespace std::chrono_literals;

namespace {
constexpr std::size_t max_answer_body = 64 * 1024;
constexpr std::int64_t idle_key_ms = 10 * 60 * 1000;  // a key unused this long is forgotten

std::string origin(std::string base) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

ce::enforcement_mode mode_of(const config::sidecar_config& c) {
  return c.mode == config::enforcement_mode::shadow ? ce::enforcement_mode::shadow : ce::enforcement_mode::enforce;
}
}  // namespace

/// A check waiting for the call(s) in flight for its keys. Owns copies of the request's fields.
struct aforo_api_decider::pending : ce::owned_check_request {
  const std::string& customer = customer_id;
  std::string metric;
  bool use_quota = false, use_margin = false;
  bool need_quota = false, need_margin = false;  // still waiting on that call
  bool answered = false;
  bool waited = false;  // parked for a call in flight
  done_fn done;
  boost::asio::steady_timer timer;

  pending(boost::asio::io_context& ioc, const ce::check_request& r, std::string m)
      : ce::owned_check_request(r), metric(std::move(m)), timer(ioc) {
    leased = 0;  // Aforo's API counts usage itself: the plugin's leased requests are not added here
  }
};

struct aforo_api_decider::metrics_set {
  util::counter_metric& quota_ok = calls("quota", "ok");
  util::counter_metric& quota_error = calls("quota", "error");
  util::counter_metric& margin_ok = calls("margin", "ok");
  util::counter_metric& margin_error = calls("margin", "error");
  util::counter_metric& fresh = checks("fresh");
  util::counter_metric& waited = checks("waited");
  util::counter_metric& stale = checks("stale");
  util::counter_metric& unavailable = checks("unavailable");

  static util::counter_metric& calls(const char* endpoint, const char* result) {
    return util::metrics().counter(
        "aforo_sidecar_aforo_api_calls_total",
        "Calls to Aforo's decision endpoints (quota: POST /api/v1/quota/check, margin: GET "
        "/internal/v1/margin-guard/quick-check) by result (ok: a usable answer; error: network, status or body).",
        std::string("endpoint=\"") + endpoint + "\",result=\"" + result + "\"");
  }
  static util::counter_metric& checks(const char* result) {
    return util::metrics().counter(
        "aforo_sidecar_aforo_api_checks_total",
        "Checks decided from Aforo's answers: fresh (cached within its TTL), waited (for the call in flight), "
        "stale (an expired answer while calls fail) or unavailable (503, the plugin's fallback_on_error applies).",
        std::string("result=\"") + result + "\"");
  }
};

aforo_api_decider::aforo_api_decider(const context& ctx)
    : ctx_(ctx), sweep_timer_(ctx.ioc), metrics_(std::make_unique<metrics_set>()) {
  const auto& api = ctx.config.entitlements.aforo_api;
  const std::string base = origin(api.url.empty() ? ctx.config.aforo.control_url : api.url);
  quota_url_ = base + "/api/v1/quota/check";
  margin_url_ = origin(api.margin_url.empty() ? base : api.margin_url) + "/internal/v1/margin-guard/quick-check";
  auto opts = io::aforo_client_options(ctx.config, max_answer_body);
  opts.request_timeout = api.timeout;
  for (std::uint32_t i = 0; i < std::max<std::uint32_t>(api.connections, 1); ++i)
    clients_.push_back(std::make_unique<io::http_client>(ctx.ioc, opts));
  apply(ctx.config);
  util::metrics().gauge_fn("aforo_sidecar_aforo_api_cached_keys",
                           "Keys held by the cache of Aforo's decision answers (customer x metric, and customer).", "",
                           [this] { return static_cast<double>(quota_cache_.size() + margin_cache_.size()); });
  schedule_sweep();
}

aforo_api_decider::~aforo_api_decider() {
  alive_.end();
  sweep_timer_.cancel();
  for (auto* waiters : {&quota_waiters_, &margin_waiters_})
    for (auto& [key, list] : *waiters)
      for (auto& p : list)
        if (!p->answered) {
          p->answered = true;
          p->timer.cancel();
          p->done(nullptr);
        }
  util::metrics().gauge_fn("aforo_sidecar_aforo_api_cached_keys",
                           "Keys held by the cache of Aforo's decision answers (customer x metric, and customer).", "",
                           [] { return 0.0; });
}

void aforo_api_decider::reload(const config::sidecar_config& next) { apply(next); }

void aforo_api_decider::apply(const config::sidecar_config& c) {
  cfg_ = c.entitlements.aforo_api;
  max_stale_ms_ = c.entitlements.max_stale.count();
  ca::cache_policy p;
  p.refresh_percent = cfg_.refresh_at;
  p.error_retry_ms = cfg_.error_retry.count();
  p.max_stale_ms = max_stale_ms_;
  p.capacity = c.cache.lru_capacity;
  p.ttl_ms = cfg_.quota_ttl.count();
  quota_cache_.set_policy(p);
  p.ttl_ms = cfg_.margin_ttl.count();
  margin_cache_.set_policy(p);
}

std::int64_t aforo_api_decider::now_ms() const { return util::steady_now_ms(); }

void aforo_api_decider::check(const ce::check_request& req, std::string_view metric, done_fn done) {
  const auto now = now_ms();
  auto p =
      std::make_shared<pending>(ctx_.ioc, req, std::string(metric.empty() ? std::string_view(cfg_.metric) : metric));
  p->use_quota = cfg_.quota_check;
  p->use_margin = cfg_.margin_check;
  p->done = std::move(done);
  const std::string quota_key = p->customer + '\n' + p->metric;
  if (p->use_quota) {
    const auto s = quota_cache_.lookup(quota_key, now);
    if (s.start_fetch) fetch_quota(quota_key, p->customer, p->metric);
    p->need_quota = s.wait;
  }
  if (p->use_margin) {
    const auto s = margin_cache_.lookup(p->customer, now);
    if (s.start_fetch) fetch_margin(p->customer, p->customer);
    p->need_margin = s.wait;
  }
  if (!p->need_quota && !p->need_margin) return finish(p);
  p->waited = true;
  if (p->need_quota) quota_waiters_[quota_key].push_back(p);
  if (p->need_margin) margin_waiters_[p->customer].push_back(p);
  if (cfg_.wait.count() <= 0) return finish(p);
  p->timer.expires_after(cfg_.wait);
  p->timer.async_wait([this, p, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    finish(p);
  });
}

void aforo_api_decider::finish(const std::shared_ptr<pending>& p) {
  if (p->answered) return;
  p->answered = true;
  p->timer.cancel();
  const bool waited = p->waited;
  const auto now = now_ms();
  bool quota_fresh = true, margin_fresh = true;
  std::shared_ptr<const ca::quota_answer> q;
  std::shared_ptr<const ca::margin_answer> m;
  if (p->use_quota) q = quota_cache_.usable(p->customer + '\n' + p->metric, now, quota_fresh);
  if (p->use_margin) m = margin_cache_.usable(p->customer, now, margin_fresh);
  if ((p->use_quota && !q) || (p->use_margin && !m)) {
    metrics_->unavailable.inc();
    return p->done(nullptr);
  }
  const bool fresh = quota_fresh && margin_fresh;
  (fresh ? (waited ? metrics_->waited : metrics_->fresh) : metrics_->stale).inc();

  ca::api_inputs in;
  in.quota = q.get();
  in.margin = m.get();
  in.metric = p->metric;
  in.cache = fresh ? "hit" : "stale";
  std::string body;
  if (m) {
    const bool block = m->level == ce::margin_level::l3 || (!m->allowed && m->level != ce::margin_level::l2);
    if (m->level == ce::margin_level::l2 && !block) {
      auto& credit = throttle_credit_.try_emplace(p->customer, ca::initial_throttle_credit).first->second;
      in.throttle_admitted = ca::admit_throttled(credit, m->throttle_rate);
    }
    if (block || (m->level == ce::margin_level::l2 && !in.throttle_admitted)) {
      const auto level = block ? ce::margin_level::l3 : ce::margin_level::l2;
      const std::int64_t retry = m->retry_after_s > 0 ? m->retry_after_s : (block ? 1800 : 1);
      body = ca::margin_deny_body(level, m->message, retry, cfg_.support_url);
      in.margin_body = body;
    }
  }
  const auto req = p->view();
  const auto d = ca::decide(req, in, mode_of(ctx_.config));
  p->done(&d);
}

void aforo_api_decider::settle(std::unordered_map<std::string, std::vector<std::shared_ptr<pending>>>& waiters,
                               const std::string& key, bool quota) {
  const auto it = waiters.find(key);
  if (it == waiters.end()) return;
  auto list = std::move(it->second);
  waiters.erase(it);
  for (auto& p : list) {
    (quota ? p->need_quota : p->need_margin) = false;
    if (!p->need_quota && !p->need_margin) finish(p);
  }
}

void aforo_api_decider::send(io::client_request req, std::function<void(io::client_result)> on_result) {
  ++calls_;
  auto& client = *clients_[next_client_++ % clients_.size()];
  client.async_request(std::move(req), [alive = alive_.watch(), on_result = std::move(on_result)](io::client_result r) {
    if (alive.expired()) return;
    on_result(std::move(r));
  });
}

void aforo_api_decider::note_failure(const char* what, const std::string& why) {
  const std::string line = std::string("aforo_api: ") + what + ": " + why;
  if (line != failing_) {
    util::log::error(line + "; cached answers keep serving, checks without one answer 503 (plugin fallback_on_error)");
    failing_ = line;
  } else {
    util::log::debug("still failing: " + line);
  }
}

namespace {
// Why a call gave no usable answer, safe to log (host and status, never headers or the key).
std::string call_problem(const io::client_result& r) {
  if (!r.ok()) {
    if (r.error == io::client_result::error_kind::timeout || r.error == io::client_result::error_kind::connect_timeout)
      return "ERROR network timeout to " + r.host;
    return r.host + " unreachable (" + std::string(io::to_string(r.error)) + "): " + r.error_message;
  }
  if (r.status == 401 || r.status == 403) return "ERROR invalid API key (" + std::to_string(r.status) + ")";
  return r.host + " answered " + std::to_string(r.status);
}
}  // namespace

void aforo_api_decider::fetch_quota(const std::string& key, const std::string& customer, const std::string& metric) {
  io::client_request req;
  req.method = "POST";
  req.url = quota_url_;
  req.headers = io::aforo_auth_headers(ctx_.config, ctx_.secrets);
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("Accept", "application/json");
  req.body = R"({"customerId":)";
  ce::append_json_string(req.body, customer);
  req.body += R"(,"metricName":)";
  ce::append_json_string(req.body, metric);
  req.body += '}';
  req.timeout = cfg_.timeout;
  send(std::move(req), [this, key](io::client_result r) {
    const auto now = now_ms();
    std::string problem;
    if (r.ok() && r.status >= 200 && r.status < 300) {
      auto parsed = ca::parse_quota_answer(r.body);
      if (parsed.value) {
        metrics_->quota_ok.inc();
        quota_cache_.fetched(key, std::make_shared<const ca::quota_answer>(std::move(*parsed.value)), now);
        if (!failing_.empty()) util::log::info("aforo_api: answering again");
        failing_.clear();
        return settle(quota_waiters_, key, true);
      }
      problem = "unusable answer: " + parsed.error;
    } else {
      problem = call_problem(r);
    }
    metrics_->quota_error.inc();
    quota_cache_.failed(key, now);
    note_failure("quota check", problem);
    settle(quota_waiters_, key, true);
  });
}

void aforo_api_decider::fetch_margin(const std::string& key, const std::string& customer) {
  io::client_request req;
  req.method = "GET";
  boost::urls::url u = boost::urls::parse_absolute_uri(margin_url_).value();
  u.params().append({"tenantId", ctx_.secrets.tenant_id});
  u.params().append({"scopeType", "CUSTOMER"});
  u.params().append({"scopeId", customer});
  req.url = std::string(u.buffer());
  // Aforo's plugin sends the tenant only (the endpoint is internal); the API key stays with the quota check.
  if (!ctx_.secrets.tenant_id.empty()) req.headers.emplace_back("X-Tenant-Id", ctx_.secrets.tenant_id);
  req.headers.emplace_back("Accept", "application/json");
  req.timeout = cfg_.timeout;
  send(std::move(req), [this, key](io::client_result r) {
    const auto now = now_ms();
    std::string problem;
    // 429 carries Aforo's gateway deny body ({"error":{"code":"SERVICE_RESTRICTED_MARGIN",...}}).
    if (r.ok() && ((r.status >= 200 && r.status < 300) || r.status == 429)) {
      auto parsed = ca::parse_margin_answer(r.body);
      if (parsed.value) {
        metrics_->margin_ok.inc();
        margin_cache_.fetched(key, std::make_shared<const ca::margin_answer>(std::move(*parsed.value)), now);
        return settle(margin_waiters_, key, false);
      }
      problem = "unusable answer: " + parsed.error;
    } else {
      problem = call_problem(r);
    }
    metrics_->margin_error.inc();
    margin_cache_.failed(key, now);
    note_failure("margin quick check", problem);
    settle(margin_waiters_, key, false);
  });
}

void aforo_api_decider::schedule_sweep() {
  // Often enough that a burst of new customer ids cannot hold much more than cache.lru_capacity keys.
  sweep_timer_.expires_after(5s);
  sweep_timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    const auto now = now_ms();
    const auto idle = std::max<std::int64_t>(idle_key_ms, max_stale_ms_);
    quota_cache_.sweep(now, idle);
    margin_cache_.sweep(now, idle);
    if (throttle_credit_.size() > margin_cache_.size() + 1024) throttle_credit_.clear();
    schedule_sweep();
  });
}

}  // namespace aforo::app
