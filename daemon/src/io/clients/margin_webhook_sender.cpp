// Signed, retried level-change webhooks; see margin_webhook_sender.hpp.
#include "io/clients/margin_webhook_sender.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/margin/level_report.hpp"
#include "io/http/http_client.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"
#include "core/margin/webhook_retry.hpp"

namespace aforo::io {

namespace {

// The host of a URL for log lines (paths and queries may carry tokens).
std::string host_of(std::string_view url) {
  const auto scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  return std::string(rest.substr(0, rest.find_first_of("/?#")));
}

// The answer in the machine's terms: a request that cannot be made (bad URL, cancelled) is refused,
// any other missing answer is worth another try.
core::margin::webhook_outcome outcome_of(const io::client_result& r) {
  using ek = io::client_result::error_kind;
  if (r.ok()) return core::margin::judge_webhook_status(r.status);
  return r.error == ek::invalid_url || r.error == ek::aborted ? core::margin::webhook_outcome::refused
                                                              : core::margin::webhook_outcome::retryable;
}

util::counter_metric& outcome(const char* result) {
  return util::metrics().counter("aforo_sidecar_margin_webhooks_total",
                                 "Margin guard level-change webhooks by outcome (sent, failed after retries, or "
                                 "claimed_elsewhere: sent by another sidecar of the cluster).",
                                 std::string("result=\"") + result + "\"");
}

}  // namespace

std::string hmac_sha256_hex(std::string_view secret, std::string_view text) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[mac[i] >> 4]);
    out.push_back(hex[mac[i] & 0xf]);
  }
  return out;
}

struct margin_webhook_sender::delivery {
  core::margin::level_change change;
  std::string url;
  core::margin::webhook_retry retry;
  std::unique_ptr<boost::asio::steady_timer> timer;
};

margin_webhook_sender::margin_webhook_sender(boost::asio::io_context& ioc, std::string secret, std::string ca_file)
    : ioc_(ioc),
      secret_(std::move(secret)),
      sent_(outcome("sent")),
      failed_(outcome("failed")),
      claimed_elsewhere_(outcome("claimed_elsewhere")) {
  io::client_options o;
  o.ca_file = std::move(ca_file);
  o.connect_timeout = std::chrono::seconds(5);
  o.request_timeout = std::chrono::seconds(10);
  o.user_agent = "aforo-sidecar/" AFORO_VERSION;
  o.max_response_body = 64 * 1024;
  client_ = std::make_unique<io::http_client>(ioc, std::move(o));
}

margin_webhook_sender::~margin_webhook_sender() { shutdown(); }

void margin_webhook_sender::send(const core::margin::level_change& change) {
  if (stopped_) return;
  for (const auto& url : change.notify) {
    auto d = std::make_shared<delivery>();
    d->change = change;
    d->url = url;
    ++in_flight_;
    perform(d, d->retry.start(), "");
  }
}

void margin_webhook_sender::skip(const core::margin::level_change& change) {
  claimed_elsewhere_.inc(change.notify.size());
}

void margin_webhook_sender::perform(const std::shared_ptr<delivery>& d, const core::margin::webhook_step& step,
                                    const std::string& why) {
  using k = core::margin::webhook_step::kind;
  switch (step.what) {
    case k::send:
      return attempt(d);
    case k::sent:
      return finish(d, true, "");
    case k::failed:
      return finish(d, false, why);
    case k::none:
      return;
    case k::wait:
      break;
  }
  d->timer = std::make_unique<boost::asio::steady_timer>(ioc_, step.wait);
  live_.insert(d);
  d->timer->async_wait([this, alive = alive_.watch(), d](const boost::system::error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    live_.erase(d);
    perform(d, d->retry.on_timer(), "");
  });
}

void margin_webhook_sender::attempt(const std::shared_ptr<delivery>& d) {
  const std::int64_t ts = util::unix_now();
  io::client_request req;
  req.method = "POST";
  req.url = d->url;
  req.body = core::margin::webhook_body(d->change, ts);
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("X-Aforo-Timestamp", std::to_string(ts));
  if (!secret_.empty()) {
    req.headers.emplace_back("X-Aforo-Signature",
                             "sha256=" + hmac_sha256_hex(secret_, core::margin::signature_input(ts, req.body)));
  }
  client_->async_request(std::move(req), [this, alive = alive_.watch(), d](io::client_result r) {
    if (alive.expired() || stopped_) return;
    const std::string why = r.ok() ? "HTTP " + std::to_string(r.status) : r.error_message;
    perform(d, d->retry.on_result(outcome_of(r), util::steady_now()), why);
  });
}

void margin_webhook_sender::finish(const std::shared_ptr<delivery>& d, bool sent, const std::string& why) {
  --in_flight_;
  if (sent) {
    sent_.inc();
    return;
  }
  failed_.inc();
  util::log::warn("margin guard: webhook for " + d->change.customer_id + " " +
                  std::string(core::entitlements::to_string(d->change.to)) + " to " + host_of(d->url) +
                  " failed after " + std::to_string(d->retry.attempts()) + " attempt(s): " + why);
}

void margin_webhook_sender::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  alive_.end();  // completions still queued on the io_context see this and do nothing
  for (const auto& d : live_) {
    if (d->timer) d->timer->cancel();
  }
  live_.clear();
  if (client_) client_->shutdown();
}

}  // namespace aforo::io
