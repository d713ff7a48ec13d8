// The daemon's object graph; see daemon_graph.hpp.
#include "app/daemon_graph.hpp"

#include <string>
#include <utility>

#include <boost/asio/post.hpp>

#include "app/entitlements/redis_entitlements_sharing.hpp"
#include "util/log.hpp"

namespace aforo::app {

namespace {

std::unique_ptr<entitlements_sharing> make_sharing(context& ctx) {
  if (ctx.config.cache.redis.empty()) return std::make_unique<local_entitlements_sharing>();
  return std::make_unique<redis_entitlements_sharing>(ctx);
}

}  // namespace

daemon_graph::daemon_graph(context& ctx)
    : ctx_(ctx),
      sharing_(make_sharing(ctx)),
      margin_(ctx, snapshot_, ctx.config.cache.redis.empty() ? nullptr : sharing_.get()),
      decisions_(ctx, *sharing_, &margin_, snapshot_),
      discovery_(ctx),
      ingest_(ctx.secrets.tenant_id),
      pipeline_(ctx, ingest_, margin_, discovery_),
      handshake_(
          ctx, ingest_,
          [&p = pipeline_](std::string body, io::http_client::completion done) {
            p.probe_ingest(std::move(body), std::move(done));
          },
          [&p = pipeline_] { p.probe_compression(); }),
      // Facts in this order: the first service not ready gives /readyz its reason.
      ops_(ctx, {&decisions_, &margin_, &discovery_, &pipeline_, &handshake_}),
      order_{&margin_, &decisions_, &discovery_, &pipeline_, &handshake_, &ops_},
      names_{"margin", "decisions", "discovery", "pipeline", "handshake", "ops"} {}

daemon_graph::~daemon_graph() = default;

void daemon_graph::register_routes(io::router& routes) {
  for (auto* s : order_) s->register_routes(routes);
}

void daemon_graph::start() {
  for (std::size_t i = 0; i < order_.size(); ++i) {
    order_[i]->start();
    util::log::debug(std::string("service ") + names_[i] + " started");
  }
}

void daemon_graph::reload(const config::sidecar_config& next) {
  for (auto* s : order_) s->reload(next);
}

void daemon_graph::stop(std::function<void()> done) { stop_from(order_.size(), std::move(done)); }

// Stops order_[n - 1], then (from the io loop) the ones before it.
void daemon_graph::stop_from(std::size_t n, std::function<void()> done) {
  if (n == 0) {
    done();
    return;
  }
  const std::size_t i = n - 1;
  util::log::debug(std::string("stopping service ") + names_[i]);
  order_[i]->stop([this, i, done = std::move(done)]() mutable {
    util::log::debug(std::string("service ") + names_[i] + " stopped");
    boost::asio::post(ctx_.ioc, [this, i, done = std::move(done)]() mutable { stop_from(i, std::move(done)); });
  });
}

bool daemon_graph::persist_now() {
  bool all = true;
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) all = (*it)->persist_now() && all;
  return all;
}

}  // namespace aforo::app
