// Chooses the snapshot source named by the config; see snapshot_source.hpp.
#include "app/entitlements/snapshot_source.hpp"

#include <stdexcept>

#include "app/entitlements/control_plane_snapshot_source.hpp"
#include "app/entitlements/file_snapshot_source.hpp"

namespace aforo::app {

std::unique_ptr<snapshot_source> make_snapshot_source(const context& ctx, snapshot_events events) {
  const auto& e = ctx.config.entitlements;
  if (const auto path = e.file_path(); !path.empty())
    return std::make_unique<file_snapshot_source>(ctx.ioc, path, std::move(events));
  if (e.source == "control_plane") return std::make_unique<control_plane_snapshot_source>(ctx, std::move(events));
  throw std::runtime_error("entitlements.source '" + e.source + "' must be control_plane or file:PATH");
}

}  // namespace aforo::app
