// What the event-validation unit tests share: events and batches in the ingest wire format.
#pragma once

#include <string>

#include "core/pipeline/event_validation.hpp"

namespace event_validation_test {

using namespace aforo::core;

inline std::string event(const std::string& extra = "", const std::string& quantity = "1",
                         const std::string& key = "kong:req-1") {
  return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":)" + quantity +
         R"(,"occurredAt":"2026-11-26T10:00:00.123Z","idempotencyKey":")" + key + "\"" + extra + "}";
}

inline std::string batch_of(const std::string& events) { return R"({"events":[)" + events + "]}"; }

inline ingest_parse_result single_event_batch(const std::string& ev) { return parse_ingest_batch(batch_of(ev), 1000); }

inline bool accepted_one(const std::string& ev) {
  const auto r = single_event_batch(ev);
  return r.error == ingest_request_error::none && r.accepted.size() == 1 && r.errors.empty();
}

}  // namespace event_validation_test
