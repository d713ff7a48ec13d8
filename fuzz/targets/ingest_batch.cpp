// Fuzzes POST /v1/ingest/batch bodies: parse_ingest_batch, and the 202/400/413 bodies built from its result.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/pipeline/event_validation.hpp"
#include "fuzz_check.hpp"

namespace core = aforo::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t max_events = 50;
  const auto r = core::parse_ingest_batch(body, max_events);
  if (r.error != core::ingest_request_error::none) {
    FUZZ_CHECK(r.accepted.empty() && r.errors.empty());
    const int status = core::status_for(r.error);
    FUZZ_CHECK(status == 400 || status == 413);
    (void)core::build_ingest_error_body(r.error, r.error_message);
    return 0;
  }
  FUZZ_CHECK(r.accepted.size() + r.errors.size() <= max_events);
  std::uint32_t last = 0;
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    FUZZ_CHECK(i == 0 || r.errors[i].index > last);  // in posted order, one error per event
    last = r.errors[i].index;
  }
  for (const auto& ev : r.accepted) {
    FUZZ_CHECK(!ev.customer_id.empty() && ev.customer_id.size() <= 4 * core::max_customer_id_chars);
    FUZZ_CHECK(!ev.metric_name.empty() && !ev.idempotency_key.empty());
    FUZZ_CHECK(ev.quantity >= 0 && ev.quantity < core::max_quantity_exclusive);
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
