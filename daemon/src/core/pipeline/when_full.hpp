// What custody does with a new batch once the spool is full (config buffer.when_full).
#pragma once

namespace aforo::core {

enum class when_full_policy { drop_oldest, reject };

}  // namespace aforo::core
