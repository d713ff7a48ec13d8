// The services the daemon runs; see services.hpp.
#include "app/services.hpp"

#include "app/decision_service.hpp"
#include "app/redis_edge.hpp"

namespace aforo::app {

void add_services(context& ctx, std::vector<std::unique_ptr<service>>& out) {
  // With cache.redis set, decisions share snapshot entries and quota counters through Redis.
  std::unique_ptr<entitlements_sharing> sharing;
  if (!ctx.config.cache.redis.empty()) sharing = std::make_unique<redis_entitlements_sharing>(ctx);
  out.push_back(std::make_unique<decision_service>(ctx, std::move(sharing)));
}

}  // namespace aforo::app
