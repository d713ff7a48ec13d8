// The fake ingest's fault script: steps applied one per ingest request, in order, set at run time
// through POST /_control/faults.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace aforo::fake {

/// What to do with one ingest request. An empty step answers normally.
struct fault_step {
  int status = 0;                     ///< answer this status instead of processing (0 = process)
  int retry_after_s = -1;             ///< with status: Retry-After header in seconds (-1 = none)
  std::uint32_t delay_ms = 0;         ///< wait before answering (the batch is processed on arrival)
  std::set<std::size_t> fail_events;  ///< indices reported as per-event failures in a 2xx answer
  std::set<std::string> fail_keys;    ///< idempotency keys reported as per-event failures (any position)
  bool close = false;                 ///< drop the connection without answering
  bool success_false = false;         ///< take nothing: a 2xx envelope with success:false listing fail_events
  std::uint32_t times = 1;            ///< how many consecutive requests this step applies to

  /// One line for logs and GET /_control/received.
  [[nodiscard]] std::string describe() const;
};

/// Not thread-safe: used on the fake's single io thread.
class fault_script {
 public:
  /// Parses `[step, ...]` or `{"steps":[...],"append":bool}`; replaces the queue unless append.
  /// Returns an error message, or nothing on success.
  std::optional<std::string> load(std::string_view json);
  /// The step for the next ingest request (an empty step when the script is exhausted).
  fault_step next();
  void clear() { steps_.clear(); }
  [[nodiscard]] std::size_t pending() const;

 private:
  std::deque<fault_step> steps_;
};

}  // namespace aforo::fake
