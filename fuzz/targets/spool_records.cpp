// Fuzzes spool segment decoding (decode_spool_records): a segment file is outside bytes after a crash,
// a torn write or disk corruption.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/pipeline/spool_record.hpp"
#include "fuzz_check.hpp"

namespace core = aforo::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view buf(reinterpret_cast<const char*>(data), size);
  const auto r = core::decode_spool_records(buf);
  FUZZ_CHECK(r.torn_records <= 1);
  std::size_t end = 0;
  std::uint64_t good_bytes = 0;
  for (const auto& rec : r.records) {
    FUZZ_CHECK(rec.offset >= end);  // in order, not overlapping
    FUZZ_CHECK(rec.offset + rec.size <= size);
    FUZZ_CHECK(rec.size == core::spool_header_bytes + rec.payload.size());
    FUZZ_CHECK(rec.payload.data() == buf.data() + rec.offset + core::spool_header_bytes);
    const auto one = core::decode_one_spool_record(buf.substr(rec.offset));
    FUZZ_CHECK(one.size == rec.size && one.event_count == rec.event_count && one.format == rec.format);
    end = rec.offset + rec.size;
    good_bytes += rec.size;
  }
  FUZZ_CHECK(good_bytes + r.skipped_bytes <= size);
  // Re-framing the good payloads gives a clean segment that decodes to the same records.
  std::string clean;
  for (const auto& rec : r.records) core::append_spool_record(clean, rec.payload, rec.event_count, rec.format);
  const auto again = core::decode_spool_records(clean);
  FUZZ_CHECK(again.records.size() == r.records.size());
  for (std::size_t i = 0; i < again.records.size(); ++i) FUZZ_CHECK(again.records[i].format == r.records[i].format);
  FUZZ_CHECK(again.corrupt_records == 0 && again.torn_records == 0 && again.skipped_bytes == 0);
  // A single-record re-read of arbitrary bytes never reaches past them.
  const auto first = core::decode_one_spool_record(buf);
  FUZZ_CHECK(first.size <= size);
  return 0;
}
