// The services the daemon runs; see services.hpp.
#include "app/services.hpp"

namespace aforo::app {

void add_services(context& /*ctx*/, std::vector<std::unique_ptr<service>>& /*out*/) {}

}  // namespace aforo::app
