// The top-level fields of an Aforo usage event (docs/design/event-fields.md): their order as written, and the
// index of a field name. Shared by event validation and the verbatim-tracking parser (core/pipeline).
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

// The top-level fields, in the order they are written out: the core ones (docs/design/event-fields.md#required,
// #optional), then the protocol-specific ones (gRPC, GraphQL, WebSocket, MCP, agentic, MQTT), then metadata last.
enum field : std::uint8_t {
  f_customer_id,
  f_metric_name,
  f_quantity,
  f_occurred_at,
  f_idempotency_key,
  f_product_type,
  f_execution_status,
  f_endpoint_path,
  f_http_method,
  f_status_code,
  f_response_time_ms,
  f_data_bytes,
  // protocol-specific (docs/design/event-fields.md#optional)
  f_trace_id,
  f_span_id,
  f_session_id,
  f_agent_id,
  f_tool_name,
  f_capability_name,
  f_subscription_id,
  f_execution_duration_ms,
  f_message_count,
  f_grpc_service,
  f_grpc_method,
  f_grpc_status_code,
  f_grpc_call_type,
  f_gql_operation_type,
  f_gql_operation_name,
  f_gql_complexity,
  f_gql_has_errors,
  f_ws_connection_id,
  f_ws_direction,
  f_ws_frame_type,
  f_mqtt_topic,
  f_mqtt_client_id,
  f_trace,
  f_metadata,
  field_count
};
constexpr std::string_view field_names[field_count] = {
    "customerId",       "metricName",       "quantity",       "occurredAt",     "idempotencyKey",
    "productType",      "executionStatus",  "endpointPath",   "httpMethod",     "statusCode",
    "responseTimeMs",   "dataBytes",        "traceId",        "spanId",         "sessionId",
    "agentId",          "toolName",         "capabilityName", "subscriptionId", "executionDurationMs",
    "messageCount",     "grpcService",      "grpcMethod",     "grpcStatusCode", "grpcCallType",
    "gqlOperationType", "gqlOperationName", "gqlComplexity",  "gqlHasErrors",   "wsConnectionId",
    "wsDirection",      "wsFrameType",      "mqttTopic",      "mqttClientId",   "trace",
    "metadata"};

/// The field `name` is, or -1.
constexpr int field_index(std::string_view n) {
  switch (n.size()) {
    case 5:
      return is(n, "trace") ? f_trace : -1;
    case 6:
      return is(n, "spanId") ? f_span_id : -1;
    case 7:
      return is(n, "traceId") ? f_trace_id : is(n, "agentId") ? f_agent_id : -1;
    case 8:
      return is(n, "quantity") ? f_quantity : is(n, "metadata") ? f_metadata : is(n, "toolName") ? f_tool_name : -1;
    case 9:
      return is(n, "dataBytes")   ? f_data_bytes
             : is(n, "sessionId") ? f_session_id
             : is(n, "mqttTopic") ? f_mqtt_topic
                                  : -1;
    case 10:
      return is(n, "customerId")   ? f_customer_id
             : is(n, "metricName") ? f_metric_name
             : is(n, "occurredAt") ? f_occurred_at
             : is(n, "httpMethod") ? f_http_method
             : is(n, "statusCode") ? f_status_code
             : is(n, "grpcMethod") ? f_grpc_method
                                   : -1;
    case 11:
      return is(n, "productType")   ? f_product_type
             : is(n, "grpcService") ? f_grpc_service
             : is(n, "wsDirection") ? f_ws_direction
             : is(n, "wsFrameType") ? f_ws_frame_type
                                    : -1;
    case 12:
      return is(n, "endpointPath")   ? f_endpoint_path
             : is(n, "messageCount") ? f_message_count
             : is(n, "grpcCallType") ? f_grpc_call_type
             : is(n, "gqlHasErrors") ? f_gql_has_errors
             : is(n, "mqttClientId") ? f_mqtt_client_id
                                     : -1;
    case 13:
      return is(n, "gqlComplexity") ? f_gql_complexity : -1;
    case 14:
      return is(n, "idempotencyKey")   ? f_idempotency_key
             : is(n, "responseTimeMs") ? f_response_time_ms
             : is(n, "capabilityName") ? f_capability_name
             : is(n, "subscriptionId") ? f_subscription_id
             : is(n, "grpcStatusCode") ? f_grpc_status_code
             : is(n, "wsConnectionId") ? f_ws_connection_id
                                       : -1;
    case 15:
      return is(n, "executionStatus") ? f_execution_status : -1;
    case 16:
      return is(n, "gqlOperationType") ? f_gql_operation_type : is(n, "gqlOperationName") ? f_gql_operation_name : -1;
    case 19:
      return is(n, "executionDurationMs") ? f_execution_duration_ms : -1;
    default:
      return -1;
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
