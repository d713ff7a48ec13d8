// Fuzzes batch body splitting (split_batch_body): spool records and ingest requests are cut into
// their events' texts when a record is larger than a batch, after a 413, and for per-event failures.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/pipeline/batch_split.hpp"
#include "fuzz_check.hpp"

namespace core = aforo::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto events = core::split_batch_body(body);
  if (!events) return 0;
  const char* prev_end = body.data();
  for (const auto e : *events) {
    FUZZ_CHECK(e.data() >= prev_end && e.data() + e.size() <= body.data() + body.size());  // inside, in order
    FUZZ_CHECK(e.size() >= 2 && e.front() == '{' && e.back() == '}');
    prev_end = e.data() + e.size();
  }
  // Joining the events gives a body that splits into the same texts.
  const std::string joined = core::join_events(*events, 0, events->size());
  const auto again = core::split_batch_body(joined);
  FUZZ_CHECK(again && again->size() == events->size());
  for (std::size_t i = 0; again && i < again->size(); ++i) FUZZ_CHECK((*again)[i] == (*events)[i]);
  return 0;
}
