// The list of services the daemon runs besides the operational endpoints; one place to add a capability.
#pragma once

#include <memory>
#include <vector>

#include "app/service.hpp"

namespace aforo::app {

/// Appends every capability's service (usage pipeline, decisions, ...) in start order.
void add_services(context& ctx, std::vector<std::unique_ptr<service>>& out);

}  // namespace aforo::app
