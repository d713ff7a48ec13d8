// Fuzzes POST /v1/ingest bodies (one event): parse_ingest_single and its re-serialized event.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/pipeline/event_validation.hpp"
#include "fuzz_check.hpp"

namespace core = aforo::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const auto r = core::parse_ingest_single(body);
  if (r.error != core::ingest_request_error::none) {
    FUZZ_CHECK(r.accepted.empty() && r.errors.empty());
    (void)core::build_ingest_error_body(r.error, r.error_message);
    return 0;
  }
  FUZZ_CHECK(r.accepted.size() + r.errors.size() == 1);
  for (const auto& e : r.errors) FUZZ_CHECK(e.index == 0 && !e.message.empty());
  for (const auto& ev : r.accepted) {
    // The re-serialized event is what goes to the spool and to Aforo: it must validate on its own and
    // keep its identity and billing fields (numbers may move by an ulp: RapidJSON's default parse).
    const auto again = core::parse_ingest_single(std::string(ev.json));
    FUZZ_CHECK(again.error == core::ingest_request_error::none);
    FUZZ_CHECK(again.accepted.size() == 1 && again.errors.empty());
    FUZZ_CHECK(again.accepted[0].idempotency_key == ev.idempotency_key);
    FUZZ_CHECK(again.accepted[0].customer_id == ev.customer_id && again.accepted[0].metric_name == ev.metric_name);
    FUZZ_CHECK(std::fabs(again.accepted[0].quantity - ev.quantity) <= 1e-12 * std::fabs(ev.quantity));
  }
  (void)core::build_ingest_response(r.accepted.size(), r.errors);
  return 0;
}
