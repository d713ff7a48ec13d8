// Fuzzes POST /v1/ingest bodies (one event): parse_ingest_single and its re-serialized event.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/pipeline/event_validation.hpp"
#include "fuzz_check.hpp"

namespace core = aforo::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto r = core::parse_ingest_single(body);
  if (r.error != core::ingest_request_error::none) {
    FUZZ_CHECK(r.accepted.empty() && r.errors.empty());
    (void)core::build_ingest_error_body(r.error, r.error_message);
    return 0;
  }
  FUZZ_CHECK(r.accepted.size() + r.errors.size() == 1);
  for (const auto& e : r.errors) FUZZ_CHECK(e.index == 0 && !e.message.empty());
  for (const auto& ev : r.accepted) {
    const auto again = core::parse_ingest_single(ev.json);
    FUZZ_CHECK(again.accepted.size() == 1);
    FUZZ_CHECK(again.accepted[0].json == ev.json);
  }
  (void)core::build_ingest_response(r.accepted.size(), r.errors);
  return 0;
}
