// Custody's choices; see custody_policy.hpp.
#include "core/pipeline/custody_policy.hpp"

#include <algorithm>

#include "core/pipeline/spool_record.hpp"

namespace aforo::core {

custody_split split_custody(bool memory_mode, std::size_t memory_room, std::size_t events) noexcept {
  custody_split s;
  s.to_memory = memory_mode ? std::min(memory_room, events) : 0;
  s.to_spool = events - s.to_memory;
  return s;
}

spool_admission admit_to_spool(std::uint64_t used_bytes, std::uint64_t payload_bytes, std::uint64_t max_bytes,
                               when_full_policy when_full) noexcept {
  const std::uint64_t size = spool_header_bytes + payload_bytes;
  if (payload_bytes > spool_max_payload || size > max_bytes) return spool_admission::too_large;
  if (used_bytes + size <= max_bytes) return spool_admission::append;
  return when_full == when_full_policy::reject ? spool_admission::reject_full : spool_admission::drop_oldest;
}

}  // namespace aforo::core
