// The levels of log lines, from the most verbose; config (log.level) and the logger share them.
#pragma once

namespace aforo::util::log {

enum class level { debug, info, warn, error };

}  // namespace aforo::util::log
