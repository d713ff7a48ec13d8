// The entitlement snapshot in force, as the decision service last installed it, for the services that
// read it without deciding (the margin guard prices usage with its feature rules and customers).
#pragma once

#include <memory>
#include <utility>

#include "core/entitlements/snapshot.hpp"

namespace aforo::app {

/// One slot, written by the decision service and read by others; owned by the daemon graph, which
/// builds it before both. Threading: io thread only.
class snapshot_in_force {
 public:
  using snapshot_ptr = std::shared_ptr<const core::entitlements::snapshot>;

  /// The snapshot in force (null before the first load).
  [[nodiscard]] snapshot_ptr get() const { return snap_; }
  void set(snapshot_ptr snap) { snap_ = std::move(snap); }

 private:
  snapshot_ptr snap_;
};

}  // namespace aforo::app
