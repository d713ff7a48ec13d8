// The top-level fields of an Aforo usage event (contracts §2): their order as written, and the index of a
// field name. Shared by event validation and the verbatim-tracking parser (core/pipeline).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aforo::core::pipeline_detail {

/// `s` equals the literal. Its length is a constant, so the comparison is inlined, not a memcmp call.
template <std::size_t N>
constexpr bool is(std::string_view s, const char (&lit)[N]) {
  return s.size() == N - 1 && std::char_traits<char>::compare(s.data(), lit, N - 1) == 0;
}

// The top-level fields of contracts §2, in the order they are written out.
enum field : std::uint8_t {
  f_customer_id, f_metric_name, f_quantity, f_occurred_at, f_idempotency_key, f_product_type,
  f_execution_status, f_endpoint_path, f_http_method, f_status_code, f_response_time_ms, f_data_bytes,
  f_metadata, field_count
};
constexpr std::string_view field_names[field_count] = {
    "customerId", "metricName", "quantity", "occurredAt", "idempotencyKey", "productType",
    "executionStatus", "endpointPath", "httpMethod", "statusCode", "responseTimeMs", "dataBytes", "metadata"};

/// The field `name` is, or -1.
constexpr int field_index(std::string_view n) {
  switch (n.size()) {
    case 8: return is(n, "quantity") ? f_quantity : is(n, "metadata") ? f_metadata : -1;
    case 9: return is(n, "dataBytes") ? f_data_bytes : -1;
    case 10:
      return is(n, "customerId")   ? f_customer_id
             : is(n, "metricName") ? f_metric_name
             : is(n, "occurredAt") ? f_occurred_at
             : is(n, "httpMethod") ? f_http_method
             : is(n, "statusCode") ? f_status_code
                                   : -1;
    case 11: return is(n, "productType") ? f_product_type : -1;
    case 12: return is(n, "endpointPath") ? f_endpoint_path : -1;
    case 14: return is(n, "idempotencyKey") ? f_idempotency_key : is(n, "responseTimeMs") ? f_response_time_ms : -1;
    case 15: return is(n, "executionStatus") ? f_execution_status : -1;
    default: return -1;
  }
}
constexpr bool field_index_knows_every_field() {
  for (int i = 0; i < field_count; ++i) {
    if (field_index(field_names[i]) != i) return false;
  }
  return true;
}
static_assert(field_index_knows_every_field());

}  // namespace aforo::core::pipeline_detail
