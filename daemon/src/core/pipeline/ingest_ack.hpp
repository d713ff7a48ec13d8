// Reads Aforo's 202 envelope for a delivered batch: accepted / duplicates / failed and per-event errors.
#pragma once

#include <cstdint>
#include <optional>
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
  std::vector<event_error> errors;   ///< at most `max_errors` kept
  bool success = true;               ///< the envelope's `success`, true when absent
};

/// Parses the envelope. nullopt when the body is not a JSON object (the batch still counts as
/// delivered on 2xx; the caller only loses the per-event detail). Thread-safe.
[[nodiscard]] std::optional<ingest_ack> parse_ingest_ack(std::string_view body, std::size_t max_errors = 100);

}  // namespace aforo::core
