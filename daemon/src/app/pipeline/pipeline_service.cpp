// The usage pipeline service; see pipeline_service.hpp.
#include "app/pipeline/pipeline_service.hpp"

#include "app/discovery/discovery_service.hpp"
#include "app/margin/margin_service.hpp"
#include "io/process/ingest_thread.hpp"
#include "app/pipeline/pipeline_custody.hpp"
#include "app/pipeline/pipeline_deliverer.hpp"
#include "app/pipeline/pipeline_metrics.hpp"
#include "app/pipeline/pipeline_sender.hpp"
#include "app/pipeline/plugin_drops.hpp"
#include "app/pipeline/spool_commit.hpp"
#include "core/pipeline/event_validation.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

#include <boost/asio/post.hpp>

namespace aforo::app {

pipeline_service::pipeline_service(context& ctx, ingest_status& status, margin_service& margin,
                                   discovery_service& discovery)
    : ctx_(ctx),
      metrics_(std::make_unique<pipeline_metrics>()),
      custody_(std::make_unique<pipeline_custody>(ctx.config, *metrics_, util::steady_now())),
      sender_(std::make_unique<pipeline_sender>(ctx.ioc, ctx.config, ctx.secrets, *metrics_)),
      deliverer_(std::make_unique<pipeline_deliverer>(ctx.ioc, *custody_, *sender_, *metrics_, ctx.config, status)),
      commit_(std::make_unique<spool_commit>(ctx.ioc, *custody_, *metrics_, ctx.config.buffer)),
      margin_(margin),
      discovery_(discovery) {
  if (ctx.config.server.ingest_thread) {
    thread_ = std::make_unique<io::ingest_thread>(static_cast<int>(ctx.config.server.ingest_thread_nice));
    sender_->use_thread(thread_.get());
  }
  auto& reg = util::metrics();
  plugin_dropped("buffer_full");  // registered at 0, so the series exist before any report
  plugin_dropped("overflow_full");
  pipeline_custody* c = custody_.get();
  reg.gauge_fn("aforo_sidecar_spool_events", "Events in the disk spool, not yet delivered.", {},
               [c] { return static_cast<double>(c->spool_events()); });
  reg.gauge_fn("aforo_sidecar_spool_bytes", "Bytes of live records in the disk spool.", {},
               [c] { return static_cast<double>(c->spool_bytes()); });
  reg.gauge_fn("aforo_sidecar_memory_buffer_events", "Events in the memory buffer (durability memory).", {},
               [c] { return static_cast<double>(c->memory_events()); });
  reg.gauge_fn("aforo_sidecar_dead_letter_bytes", "Bytes in the dead-letter file and its rotations.", {},
               [c] { return static_cast<double>(c->dead_letter_bytes()); });
}

pipeline_service::~pipeline_service() {
  // The scrape-time gauges must not reach into a destroyed custody.
  auto& reg = util::metrics();
  for (const char* name : {"aforo_sidecar_spool_events", "aforo_sidecar_spool_bytes",
                           "aforo_sidecar_memory_buffer_events", "aforo_sidecar_dead_letter_bytes"})
    reg.gauge_fn(name, "", {}, [] { return 0.0; });
}

void pipeline_service::register_routes(io::router& routes) {
  routes.add("POST", "/v1/ingest/batch",
             [this](io::http_request& req, io::respond_fn respond) { handle(req, respond, false); });
  routes.add("POST", "/v1/ingest",
             [this](io::http_request& req, io::respond_fn respond) { handle(req, respond, true); });
}

void pipeline_service::start() {
  static constexpr const char* fsync_names[] = {"always", "interval", "off"};
  util::log::info(std::string("usage pipeline: durability ") + (custody_->memory_mode() ? "memory" : "disk") +
                  ", fsync " + fsync_names[static_cast<int>(ctx_.config.buffer.fsync)] + ", ingest " +
                  ctx_.config.aforo.ingest_url + ", batches of " + std::to_string(ctx_.config.batch.max_events) +
                  " events");
  commit_->start();
  deliverer_->kick();
}

void pipeline_service::handle(io::http_request& req, const io::respond_fn& respond_plain, bool single) {
  // The plugin's report of events its workers dropped counts once the batch is answered 202 (the
  // plugin sends it again with its next batch otherwise).
  io::respond_fn respond = respond_plain;
  if (const auto h = req.header(plugin_dropped_header); !h.empty()) {
    if (const auto drops = parse_plugin_drops(h); drops.any()) {
      respond = [respond_plain, drops](io::http_response res) {
        if (res.status == 202) count_plugin_drops(drops);
        respond_plain(std::move(res));
      };
    }
  }
  if (stopped_) {
    respond(io::http_response::error(503, "shutting_down", "the sidecar is stopping"));
    return;
  }
  // The body is parsed in place (the accepted events view it), so it moves out of the request.
  const std::size_t max_events = ctx_.config.server.max_batch_events;
  if (!thread_ || thread_->behind()) {
    if (thread_) metrics_->io_thread_work.inc();
    take(single ? core::parse_ingest_single(std::move(req.body))
                : core::parse_ingest_batch(std::move(req.body), max_events),
         respond);
    return;
  }
  thread_->post([this, body = std::make_shared<std::string>(std::move(req.body)), respond, single, max_events] {
    auto parsed = std::make_shared<core::ingest_parse_result>(
        single ? core::parse_ingest_single(std::move(*body)) : core::parse_ingest_batch(std::move(*body), max_events));
    boost::asio::post(ctx_.ioc, [this, parsed, respond] { take(std::move(*parsed), respond); });
  });
}

void pipeline_service::take(core::ingest_parse_result parsed, const io::respond_fn& respond) {
  if (stopped_) {
    // Parsed after stop began (the server's drain normally prevents it): nothing is taken, the
    // sender keeps the events and retries.
    respond(io::http_response::error(503, "shutting_down", "the sidecar is stopping"));
    return;
  }
  if (parsed.error != core::ingest_request_error::none) {
    (parsed.error == core::ingest_request_error::too_many_events ? metrics_->refused_too_many
                                                                 : metrics_->refused_malformed)
        .inc();
    respond(io::http_response::json(core::status_for(parsed.error),
                                    core::build_ingest_error_body(parsed.error, parsed.error_message)));
    return;
  }
  const std::size_t n = parsed.accepted.size();
  metrics_->received.inc(n + parsed.errors.size());
  metrics_->rejected_invalid.inc(parsed.errors.size());
  const auto costs = margin_.price(parsed.accepted);
  discovery_.observe(parsed.accepted);
  const auto r = custody_->take(parsed.accepted, util::steady_now());
  if (r.result != pipeline_custody::take_result::taken) {
    const bool full = r.result == pipeline_custody::take_result::full;
    (full ? metrics_->rejected_full : metrics_->rejected_error).inc(n);
    auto res = io::http_response::error(
        503, full ? "spool_full" : "spool_unavailable",
        full ? "the disk spool is full; retry later" : "the disk spool cannot be written; retry later");
    res.headers.emplace_back("Retry-After", "1");
    respond(std::move(res));
    return;
  }
  metrics_->accepted.inc(n);
  margin_.record(costs);
  if (n != 0) deliverer_->kick();
  auto answer = io::http_response::json(202, core::build_ingest_response(n, parsed.errors));
  if (!r.spooled) {
    respond(std::move(answer));
    return;
  }
  commit_->after_append([respond, answer = std::move(answer)](std::error_code ec) mutable {
    if (!ec) {
      respond(std::move(answer));
      return;
    }
    // On disk but maybe not durable: the sender retries, and Aforo deduplicates what was kept.
    auto res = io::http_response::error(503, "spool_unavailable", "the disk spool could not be synced; retry later");
    res.headers.emplace_back("Retry-After", "1");
    respond(std::move(res));
  });
}

void pipeline_service::reload(const config::sidecar_config& next) {
  custody_->reload(next);
  deliverer_->reload(next);
}

void pipeline_service::stop(std::function<void()> done) {
  persist_now();
  done();
}

bool pipeline_service::persist_now() {
  if (stopped_ && persisted_) return lost_ == 0;
  stopped_ = true;
  persisted_ = true;
  deliverer_->stop();
  commit_->stop();
  const auto r = custody_->persist_memory();
  lost_ = r.lost;
  util::log::info("usage pipeline stopped: " + std::to_string(r.moved) + " buffered events moved to the disk spool, " +
                  std::to_string(custody_->spool_events()) + " events in the spool" +
                  (r.lost != 0 ? ", " + std::to_string(r.lost) + " could not be written" : ""));
  return r.lost == 0;
}

void pipeline_service::probe_ingest(std::string body, io::http_client::completion done) {
  if (stopped_) return;  // the handshake stopped first; nothing is sent afterwards
  sender_->probe(std::move(body), std::move(done));
}

void pipeline_service::probe_compression() {
  if (stopped_) return;
  sender_->probe_compression();
}

void pipeline_service::handshake_fields(std::map<std::string, std::string>& fields) const {
  fields["compression"] = std::string(R"({"configured":")") + sender_->configured_compression() + R"(","effective":")" +
                          sender_->effective_compression() + R"("})";
  const auto d = deliverer_->current();
  fields["delivery"] = R"({"concurrency_limit":)" + std::to_string(d.limit) + R"(,"max_concurrency":)" +
                       std::to_string(d.max) + R"(,"in_flight":)" + std::to_string(d.in_flight) + R"(,"min_rtt_ms":)" +
                       (d.min_rtt ? std::to_string(d.min_rtt->count()) : std::string("null")) + "}";
}

}  // namespace aforo::app
