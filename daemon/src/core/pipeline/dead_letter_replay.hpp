// The pure parts of `aforo-sidecar replay-dead-letter`: reading one line of the dead-letter file into the
// events it holds, packing events from consecutive lines into POST /v1/ingest/batch bodies of a bounded
// size, and reading the sidecar's 202 answer. No I/O (the file and the HTTP exchange are in app/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::core {

/// What one dead-letter line holds (io/dead_letter.hpp writes them):
/// `{"time","reason","status","events","response","batch":{"events":[...]} or "<raw text>"}`.
struct dead_letter_line {
  enum class kind {
    events,       ///< replayable: `events` holds the batch's events (possibly none)
    blank,        ///< an empty (or whitespace only) line: nothing to do, not a problem
    undecodable,  ///< reason "undecodable": a raw spool payload that cannot be replayed
    malformed,    ///< not a dead-letter line, or a batch that is not `{"events":[{...},...]}`
  };
  kind what = kind::malformed;
  std::string reason;               ///< the line's "reason" (may be empty)
  int status = 0;                   ///< the line's "status"
  std::vector<std::string> events;  ///< each event's JSON text, byte for byte as in the file
  std::vector<std::string> keys;    ///< each event's idempotencyKey ("" when it has none)
  std::string problem;              ///< why the line is not replayable (undecodable, malformed)
};

/// Parses one line (without its '\n') with RapidJSON's iterative reader (no recursion, no document).
/// A `batch` given as a string is replayed when the string itself is a `{"events":[...]}` body, unless
/// the reason is "undecodable". Pure; thread-safe.
[[nodiscard]] dead_letter_line parse_dead_letter_line(std::string_view line);

/// Where an event of a replay request came from, to report a per-event failure.
struct replay_origin {
  std::uint64_t line = 0;   ///< 1-based line number in the dead-letter file
  std::uint32_t index = 0;  ///< the event's index within that line's batch
  std::string key;          ///< its idempotencyKey
};

/// One POST /v1/ingest/batch body and the events' origins, in order.
struct replay_request {
  std::string body;                    ///< `{"events":[...]}`
  std::vector<replay_origin> origins;  ///< one per event
  std::uint64_t first_line = 0;        ///< the line of the first event: replaying from it resends nothing lost
  [[nodiscard]] std::size_t events() const { return origins.size(); }
};

/// Packs events, line after line, into requests of at most `max_events` events and (unless a single
/// event is larger) `max_bytes` bytes of body: small lines are combined, large lines are split.
class replay_batcher {
 public:
  explicit replay_batcher(std::size_t max_events = 1000, std::size_t max_bytes = 4u << 20);

  /// Adds a line's events; returns the requests that became full (in order).
  [[nodiscard]] std::vector<replay_request> add(std::uint64_t line_no, const dead_letter_line& line);
  /// The events not yet in a request, as the last request (nothing when there are none).
  [[nodiscard]] std::optional<replay_request> finish();
  /// Events added but not yet returned in a request.
  [[nodiscard]] std::size_t pending_events() const { return pending_.origins.size(); }

 private:
  void add_event(std::uint64_t line_no, std::uint32_t index, const std::string& event, const std::string& key,
                 std::vector<replay_request>& out);
  replay_request take();

  std::size_t max_events_;
  std::size_t max_bytes_;
  replay_request pending_;
};

/// The sidecar's 202 answer `{"accepted":N,"failed":M,"errors":[{"index":i,"message":"..."}]}`.
struct replay_ack {
  std::uint64_t accepted = 0;
  std::uint64_t failed = 0;
  struct error {
    std::size_t index = 0;  ///< in the request's events
    std::string message;
  };
  std::vector<error> errors;
};

/// Nothing when `body` is not such an object.
[[nodiscard]] std::optional<replay_ack> parse_replay_ack(std::string_view body);

/// Seconds to wait from a Retry-After header value (delta-seconds): `fallback` when absent or not a
/// number, at most `cap`.
[[nodiscard]] unsigned retry_after_seconds(std::string_view header, unsigned fallback = 1, unsigned cap = 60);

}  // namespace aforo::core
