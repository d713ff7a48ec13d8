// The protocol-specific event fields of docs/design/event-fields.md#optional (gRPC, GraphQL, WebSocket, MCP, agentic,
// MQTT): their types and Aforo's limits, the product types and what each one requires.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <deque>
#include <string>

#include "core/pipeline/event_fields.hpp"

namespace aforo::core {

/// Aforo's length limits (docs/design/event-fields.md#optional), in characters. A longer value is truncated to the
/// limit (before a character, never inside one), never a reason to reject a metered event.
inline constexpr std::size_t max_trace_id_chars = 128;
inline constexpr std::size_t max_span_id_chars = 32;
inline constexpr std::size_t max_session_id_chars = 64;
inline constexpr std::size_t max_agent_id_chars = 36;
inline constexpr std::size_t max_tool_name_chars = 64;
inline constexpr std::size_t max_capability_name_chars = 64;
inline constexpr std::size_t max_subscription_id_chars = 64;
inline constexpr std::size_t max_grpc_service_chars = 255;
inline constexpr std::size_t max_grpc_method_chars = 128;
inline constexpr std::size_t max_gql_operation_name_chars = 255;
inline constexpr std::size_t max_ws_connection_id_chars = 64;
inline constexpr std::size_t max_mqtt_topic_chars = 500;
inline constexpr std::size_t max_mqtt_client_id_chars = 128;
/// Enumeration-like strings without a published limit (grpcCallType, gqlOperationType, wsDirection,
/// wsFrameType) are held to Aforo's limit for its enumerations (productType, executionStatus): 1 to 20
/// characters; longer is rejected (a cut enumeration value would be a different value).
inline constexpr std::size_t max_enum_chars = 20;
/// The strings of `trace` (traceparent, tracestate, xTraceId, xRequestId): Aforo gives no limit; this
/// one is the W3C tracestate's 512, and a longer value is rejected.
inline constexpr std::size_t max_trace_member_chars = 512;

}  // namespace aforo::core

namespace aforo::core::pipeline_detail {

/// Checks productType, executionStatus and the protocol fields of one event (`f`: its top-level fields by
/// index, null when absent), then the fields its productType requires (MCP_SERVER: toolName and
/// agentId; GRPC_API: grpcService and grpcMethod; GRAPHQL_API: gqlOperationType; WEBSOCKET_API:
/// wsConnectionId; AI_AGENT: agentId and sessionId). A string over its length limit is truncated: the
/// cut text is kept in `keep`, `cut[i]` refers to it, f[i] points at cut[i] and `changed` is set (the
/// event is then re-serialized). Returns the reason the event is rejected, or null.
const char* check_protocol_fields(const rapidjson::Value* (&f)[field_count], rapidjson::Value (&cut)[field_count],
                                  std::deque<std::string>& keep, bool& changed);

}  // namespace aforo::core::pipeline_detail
