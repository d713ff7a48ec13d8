// The startup handshake and the ingest state; see handshake_service.hpp.
#include "app/pipeline/handshake_service.hpp"

#include "io/clients/aforo_client.hpp"
#include <algorithm>

#include <boost/asio/io_context.hpp>

#include "app/pipeline/test_event.hpp"
#include "util/log.hpp"

namespace aforo::app {

const char* to_string(ingest_state s) noexcept {
  switch (s) {
    case ingest_state::ok: return "ok";
    case ingest_state::unauthorized: return "unauthorized";
    case ingest_state::unreachable: return "unreachable";
    case ingest_state::unknown: break;
  }
  return "unknown";
}

std::string describe_unreachable(net::client_result::error_kind kind, const std::string& host,
                                 const std::string& message) {
  using k = net::client_result::error_kind;
  if (kind == k::timeout || kind == k::connect_timeout) return "network timeout to " + host;
  if (kind == k::tls) {
    // The client's message reads "TLS handshake with <host> failed: <reason>": keep the reason.
    const auto p = message.find("failed: ");
    return "TLS failure to " + host + ": " + (p == std::string::npos ? message : message.substr(p + 8));
  }
  return "ingest unreachable at " + host + ": " + (message.empty() ? std::string(net::to_string(kind)) : message);
}

std::string describe_unauthorized(int status) { return "invalid API key (" + std::to_string(status) + ")"; }

probe_verdict judge_probe(int status) noexcept {
  if (status == 401 || status == 403) return probe_verdict::unauthorized;
  if ((status >= 200 && status < 300) || status == 400 || status == 422) return probe_verdict::accepted;
  return probe_verdict::inconclusive;
}

std::chrono::milliseconds handshake_retry_delay(unsigned failures, bool unauthorized,
                                                std::chrono::milliseconds unauthorized_probe) {
  using namespace std::chrono_literals;
  if (unauthorized) return unauthorized_probe;
  const unsigned shift = std::min(failures == 0 ? 0U : failures - 1, 6U);  // 1 s .. 64 s
  return std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000LL << shift), 60s);
}

void ingest_status::accepted(const std::string& host) {
  state_ = ingest_state::ok;
  last_problem_.clear();
  if (!confirmed_) {
    confirmed_ = true;
    util::log::info("handshake ok (ingest " + host + ", tenant " + (tenant_.empty() ? std::string("unset") : tenant_) +
                    ")");
  }
}

void ingest_status::unauthorized(int status) {
  state_ = ingest_state::unauthorized;
  last_problem_ = describe_unauthorized(status);
  util::log::error(last_problem_);
}

void ingest_status::unreachable(net::client_result::error_kind kind, const std::string& host,
                                const std::string& message) {
  state_ = ingest_state::unreachable;
  auto problem = describe_unreachable(kind, host, message);
  if (problem == last_problem_) return;
  util::log::error(problem);
  last_problem_ = std::move(problem);
}

handshake_service::handshake_service(context& ctx, ingest_status& status, ingest_probe_fn probe,
                                     std::function<void()> encoding_probe)
    : ctx_(ctx),
      status_(status),
      probe_(std::move(probe)),
      encoding_probe_(std::move(encoding_probe)),
      timer_(ctx.ioc),
      test_client_(std::make_unique<net::http_client>(ctx.ioc, aforo_client_options(ctx.config))),
      alive_(std::make_shared<bool>(true)) {}

handshake_service::~handshake_service() { *alive_ = false; }

void handshake_service::register_routes(net::router& routes) {
  routes.add("POST", "/v1/test-event", [this](net::http_request&, net::respond_fn respond) {
    if (stopping_) {
      respond(net::http_response::error(503, "shutting_down", "the sidecar is stopping"));
      return;
    }
    // The config in force (a reload may have changed ingest_url); the key is the one loaded at start.
    send_test_event(*test_client_, ctx_.config, ctx_.secrets,
                    [respond = std::move(respond), alive = std::weak_ptr<bool>(alive_)](test_event_result r) {
                      if (alive.expired()) return;
                      if (r.accepted()) {
                        util::log::info("test event accepted by ingest (" + std::to_string(r.status) + ")");
                      } else {
                        util::log::warn("test event: " + r.cause);
                      }
                      respond(test_event_response(r));
                    });
  });
}

void handshake_service::start() {
  if (probe_) probe();
}

void handshake_service::probe() {
  if (stopping_ || status_.confirmed() || !probe_) return;
  probe_(R"({"events":[]})", [this, alive = std::weak_ptr<bool>(alive_)](net::client_result r) {
    if (alive.expired()) return;
    on_probe(r);
  });
}

void handshake_service::on_probe(const net::client_result& r) {
  if (stopping_ || r.error == net::client_result::error_kind::aborted) return;
  if (!r.ok()) {
    status_.unreachable(r.error, r.host, r.error_message);
    retry_later(false);
    return;
  }
  switch (judge_probe(r.status)) {
    case probe_verdict::accepted:
      status_.accepted(r.host);
      failures_ = 0;
      if (encoding_probe_) encoding_probe_();  // once: the key is confirmed, no probe follows
      return;
    case probe_verdict::unauthorized:
      status_.unauthorized(r.status);
      retry_later(true);
      return;
    case probe_verdict::inconclusive:
      util::log::warn("handshake: ingest " + r.host + " answered " + std::to_string(r.status) +
                      " to the key check; check aforo.ingest_url");
      retry_later(false);
      return;
  }
}

void handshake_service::retry_later(bool unauthorized) {
  ++failures_;
  timer_.expires_after(handshake_retry_delay(failures_, unauthorized, ctx_.config.retry.unauthorized_probe));
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    probe();
  });
}

void handshake_service::stop(std::function<void()> done) {
  stopping_ = true;
  timer_.cancel();
  test_client_->shutdown();
  done();
}

void handshake_service::readiness(status_report& r) const {
  // Reported, never fatal: see the class comment.
  r.fields["ingest"] = std::string("\"") + to_string(status_.state()) + "\"";
}

void handshake_service::handshake_fields(std::map<std::string, std::string>& fields) const {
  fields["ingest"] = std::string("\"") + to_string(status_.state()) + "\"";
}

}  // namespace aforo::app
