// Where the entitlement snapshot comes from: a local file (`file:PATH`) or the Aforo control plane
// (`control_plane`). A source loads in the background and reports each outcome through callbacks.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "app/service.hpp"
#include "core/entitlements/snapshot.hpp"

namespace aforo::app {

using snapshot_ptr = std::shared_ptr<const core::entitlements::snapshot>;

/// What a source tells its owner; every callback runs on the io thread.
struct snapshot_events {
  /// New content, current as of now, with the text it was parsed from (kept as the last known good).
  std::function<void(snapshot_ptr, std::string text)> loaded;
  std::function<void()> confirmed;  ///< the snapshot in force is still current (304, file unchanged)
  std::function<void()> failed;     ///< a refresh failed (the source has logged why)
};

/// Threading: construct, call and destroy on the io thread. Destroying a source cancels its
/// timers and requests; no callback runs afterwards.
class snapshot_source {
 public:
  virtual ~snapshot_source() = default;
  /// Starts loading now and refreshing in the background.
  virtual void start() = 0;
  /// Refreshes now (SIGHUP): a file is re-read even if unchanged; the control plane is asked again.
  virtual void refresh_now() = 0;
  /// How often the source confirms the snapshot when all is well (the age a healthy snapshot reaches).
  [[nodiscard]] virtual std::chrono::milliseconds confirm_period() const = 0;
  /// "file" | "control_plane", for logs and metric labels.
  [[nodiscard]] virtual std::string_view kind() const = 0;
};

/// The source named by config entitlements.source ("file:PATH" or "control_plane").
/// Throws std::runtime_error for an unknown source name or an unreadable aforo.ca_file (startup).
std::unique_ptr<snapshot_source> make_snapshot_source(const context& ctx, snapshot_events events);

}  // namespace aforo::app
