// The startup handshake and the ingest state; see handshake_service.hpp.
#include "app/pipeline/handshake_service.hpp"

#include <boost/asio/io_context.hpp>

#include "app/pipeline/test_event.hpp"
#include "io/clients/aforo_client.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace aforo::app {

std::string describe_unreachable(io::client_result::error_kind kind, const std::string& host,
                                 const std::string& message) {
  using k = io::client_result::error_kind;
  if (kind == k::timeout || kind == k::connect_timeout) return "network timeout to " + host;
  if (kind == k::tls) {
    // The client's message reads "TLS handshake with <host> failed: <reason>": keep the reason.
    const auto p = message.find("failed: ");
    return "TLS failure to " + host + ": " + (p == std::string::npos ? message : message.substr(p + 8));
  }
  return "ingest unreachable at " + host + ": " + (message.empty() ? std::string(io::to_string(kind)) : message);
}

std::string describe_unauthorized(int status) { return "invalid API key (" + std::to_string(status) + ")"; }

void ingest_status::accepted(const std::string& host) {
  if (tracker_.accepted()) {
    util::log::info("handshake ok (ingest " + host + ", tenant " + (tenant_.empty() ? std::string("unset") : tenant_) +
                    ")");
  }
}

void ingest_status::unauthorized(int status) {
  const auto problem = describe_unauthorized(status);
  if (tracker_.unauthorized(problem)) util::log::error(problem);
}

void ingest_status::unreachable(io::client_result::error_kind kind, const std::string& host,
                                const std::string& message) {
  const auto problem = describe_unreachable(kind, host, message);
  if (tracker_.unreachable(problem)) util::log::error(problem);
}

handshake_service::handshake_service(context& ctx, ingest_status& status, ingest_probe_fn probe,
                                     std::function<void()> encoding_probe)
    : ctx_(ctx),
      status_(status),
      probe_(std::move(probe)),
      encoding_probe_(std::move(encoding_probe)),
      timer_(ctx.ioc),
      test_client_(std::make_unique<io::http_client>(ctx.ioc, io::aforo_client_options(ctx.config))) {}

handshake_service::~handshake_service() { alive_.end(); }

void handshake_service::register_routes(io::router& routes) {
  routes.add("POST", "/v1/test-event", [this](io::http_request&, io::respond_fn respond) {
    if (stopping_) {
      respond(io::http_response::error(503, "shutting_down", "the sidecar is stopping"));
      return;
    }
    // The config in force (a reload may have changed ingest_url); the key is the one loaded at start.
    send_test_event(*test_client_, ctx_.config, ctx_.secrets,
                    [respond = std::move(respond), alive = alive_.watch()](test_event_result r) {
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
  if (probe_) perform(reprobe_.start(status_.confirmed()));
}

void handshake_service::perform(const core::handshake_step& step) {
  using k = core::handshake_step::kind;
  switch (step.what) {
    case k::none:
      return;
    case k::check_encoding:
      if (encoding_probe_) encoding_probe_();  // once: the key is confirmed, no probe follows
      return;
    case k::probe:
      probe_(R"({"events":[]})", [this, alive = alive_.watch()](io::client_result r) {
        if (alive.expired()) return;
        on_probe(r);
      });
      return;
    case k::wait:
      timer_.expires_after(step.wait);
      timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        perform(reprobe_.on_timer(status_.confirmed()));
      });
      return;
  }
}

void handshake_service::on_probe(const io::client_result& r) {
  if (stopping_) return;
  if (r.error == io::client_result::error_kind::aborted) return perform(reprobe_.on_aborted());
  if (!r.ok()) {
    status_.unreachable(r.error, r.host, r.error_message);
    return perform(reprobe_.on_no_answer(util::steady_now()));
  }
  const auto verdict = judge_probe(r.status);
  switch (verdict) {
    case probe_verdict::accepted:
      status_.accepted(r.host);
      break;
    case probe_verdict::unauthorized:
      status_.unauthorized(r.status);
      break;
    case probe_verdict::inconclusive:
      util::log::warn("handshake: ingest " + r.host + " answered " + std::to_string(r.status) +
                      " to the key check; check aforo.ingest_url");
      break;
  }
  perform(reprobe_.on_answer(verdict, ctx_.config.retry.unauthorized_probe, util::steady_now()));
}

void handshake_service::stop(std::function<void()> done) {
  stopping_ = true;
  reprobe_.stop();
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
