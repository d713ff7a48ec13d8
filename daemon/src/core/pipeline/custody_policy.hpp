// Where accepted events go and what a full spool does (buffer.durability, buffer.when_full;
// docs/design/resilience.md#chain and #full): pure decisions; custody (app/pipeline/pipeline_custody)
// and the spool (io/spool/spool_store) carry them out.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/pipeline/when_full.hpp"

namespace aforo::core {

/// How a request's events are split between the memory buffer and one spool record.
struct custody_split {
  std::size_t to_memory = 0;  ///< the first events of the request
  std::size_t to_spool = 0;   ///< the rest, as one spool record
};

/// durability memory (`memory_mode`): the memory buffer keeps what fits in `memory_room`, the rest
/// spills to the spool; durability disk: the whole request goes to the spool before its 202.
[[nodiscard]] custody_split split_custody(bool memory_mode, std::size_t memory_room, std::size_t events) noexcept;

/// What the spool does with a new record.
enum class spool_admission {
  append,       ///< it fits
  too_large,    ///< no spool could hold it (larger than buffer.spool_max_bytes or a record's limit)
  reject_full,  ///< full, when_full reject: refused (the request gets 503 + Retry-After)
  drop_oldest,  ///< full, when_full drop_oldest: the oldest records go until it fits, then append
};

/// The spool holds `used_bytes` of at most `max_bytes`; the record's payload is `payload_bytes`
/// (plus its header).
[[nodiscard]] spool_admission admit_to_spool(std::uint64_t used_bytes, std::uint64_t payload_bytes,
                                             std::uint64_t max_bytes, when_full_policy when_full) noexcept;

}  // namespace aforo::core
