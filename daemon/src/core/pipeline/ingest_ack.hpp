// Reads Aforo's 202 envelope for a delivered batch: accepted / duplicates / failed and per-event errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/pipeline/event_validation.hpp"

namespace aforo::core {

/// Counts from `{"success":true,"data":{"accepted","duplicates","failed","errors":[...]},"meta":{}}`.
/// Missing fields read as 0 / empty.
struct ingest_ack {
  std::uint64_t accepted = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t failed = 0;
  std::vector<event_error> errors;  ///< at most `max_errors` kept
  bool success = true;              ///< the envelope's `success`, true when absent
};

/// An event ingest refused inside a 2xx answer.
struct refused_event {
  std::size_t index = 0;  ///< in the request's events
  std::string message;    ///< ingest's message for it
  bool listed = true;     ///< false: not listed, refused because the envelope said success:false
};

/// The events of a request of `events` events that the envelope refuses: each listed error
/// (index in range, first listing wins) with its message; with `success:false`, every event not
/// listed as well. `unidentified`: failures the envelope counts but does not list by index (the
/// caller keeps the whole request for those).
struct refused_events {
  std::vector<refused_event> events;  ///< by index
  std::uint64_t unidentified = 0;
};
[[nodiscard]] refused_events refused_in(const ingest_ack& ack, std::size_t events);

/// Parses the envelope. nullopt when the body is not a JSON object (the batch still counts as
/// delivered on 2xx; the caller only loses the per-event detail). Thread-safe.
[[nodiscard]] std::optional<ingest_ack> parse_ingest_ack(std::string_view body, std::size_t max_errors = 100);

}  // namespace aforo::core
