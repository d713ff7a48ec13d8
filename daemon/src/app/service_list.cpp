// The services the daemon runs; see service_list.hpp.
#include "app/service_list.hpp"

#include "app/decisions/decision_service.hpp"
#include "app/discovery/discovery_service.hpp"
#include "app/pipeline/handshake_service.hpp"
#include "app/margin/margin_service.hpp"
#include "app/pipeline/pipeline_service.hpp"
#include "app/entitlements/redis_entitlements_sharing.hpp"

namespace aforo::app {

void add_services(context& ctx, std::vector<std::unique_ptr<service>>& out) {
  // With cache.redis set, decisions share snapshot entries and quota counters through Redis, and
  // the margin guard its COGS over the same connection and sync tick. The sharing object is owned
  // by the decision service, which is destroyed before the margin service (services are destroyed
  // in list order).
  std::unique_ptr<entitlements_sharing> sharing;
  if (!ctx.config.cache.redis.empty()) sharing = std::make_unique<redis_entitlements_sharing>(ctx);
  auto margin = std::make_unique<margin_service>(ctx);
  if (sharing) {
    margin->share_cogs(*sharing);
    margin->claim_webhooks(*sharing);  // one webhook per level change per cluster
  }
  auto decisions = std::make_unique<decision_service>(ctx, std::move(sharing));
  auto handshake = std::make_unique<handshake_service>(ctx);
  auto pipeline = std::make_unique<pipeline_service>(ctx, handshake->status());
  handshake->set_probe([p = pipeline.get()](std::string body, net::http_client::completion done) {
    p->probe_ingest(std::move(body), std::move(done));
  });
  handshake->set_encoding_probe([p = pipeline.get()] { p->probe_compression(); });
  auto discovery = std::make_unique<discovery_service>(ctx);
  decisions->set_margin_hook(margin.get());
  margin->set_snapshot_provider([d = decisions.get()] { return d->current_snapshot(); });
  pipeline->set_margin(margin.get());
  pipeline->set_discovery(discovery.get());
  // Stopped in reverse: discovery and the margin guard outlive the pipeline that feeds them; the
  // handshake stops first (no probe after the pipeline stopped). The pipeline reports deliveries into
  // the handshake's ingest status only while running, never once stopped.
  out.push_back(std::move(decisions));
  out.push_back(std::move(margin));
  out.push_back(std::move(discovery));
  out.push_back(std::move(pipeline));
  out.push_back(std::move(handshake));
}

}  // namespace aforo::app
