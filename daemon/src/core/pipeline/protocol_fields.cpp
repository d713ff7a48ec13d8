// See protocol_fields.hpp. Pure: no allocation unless a string is truncated.
#include "core/pipeline/protocol_fields.hpp"

#include <cmath>
#include <string_view>

namespace aforo::core::pipeline_detail {
namespace {

namespace rj = rapidjson;

std::string_view view(const rj::Value& v) { return {v.GetString(), v.GetStringLength()}; }
bool is_null(const rj::Value* v) { return v == nullptr || v->IsNull(); }

/// Byte offset where character `max_chars` + 1 starts, or s.size() when s has at most max_chars
/// characters (continuation bytes 10xxxxxx do not start one).
std::size_t cut_at(std::string_view s, std::size_t max_chars) {
  if (s.size() <= max_chars) return s.size();
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0u) != 0x80u && chars++ == max_chars) return i;
  }
  return s.size();
}

bool non_negative_integer(const rj::Value& v) {
  if (v.IsUint64()) return true;
  if (!v.IsDouble()) return false;
  const double d = v.GetDouble();
  return d >= 0 && d < 0x1p53 && d == std::floor(d);
}

bool non_negative_number(const rj::Value& v) { return v.IsNumber() && (v.IsUint64() || v.GetDouble() >= 0); }

bool short_string(const rj::Value& v, std::size_t max_chars) {
  return v.IsString() && v.GetStringLength() > 0 && cut_at(view(v), max_chars) == v.GetStringLength();
}

struct limited {
  field index;
  std::size_t max_chars;
  const char* error;  // when the value is not a string
};
constexpr limited truncated_fields[] = {
    {f_trace_id, max_trace_id_chars, "traceId: must be a string"},
    {f_span_id, max_span_id_chars, "spanId: must be a string"},
    {f_session_id, max_session_id_chars, "sessionId: must be a string"},
    {f_agent_id, max_agent_id_chars, "agentId: must be a string"},
    {f_tool_name, max_tool_name_chars, "toolName: must be a string"},
    {f_capability_name, max_capability_name_chars, "capabilityName: must be a string"},
    {f_subscription_id, max_subscription_id_chars, "subscriptionId: must be a string"},
    {f_grpc_service, max_grpc_service_chars, "grpcService: must be a string"},
    {f_grpc_method, max_grpc_method_chars, "grpcMethod: must be a string"},
    {f_gql_operation_name, max_gql_operation_name_chars, "gqlOperationName: must be a string"},
    {f_ws_connection_id, max_ws_connection_id_chars, "wsConnectionId: must be a string"},
    {f_mqtt_topic, max_mqtt_topic_chars, "mqttTopic: must be a string"},
    {f_mqtt_client_id, max_mqtt_client_id_chars, "mqttClientId: must be a string"},
};

struct enumeration {
  field index;
  const char* error;
};
constexpr enumeration enum_fields[] = {
    {f_grpc_call_type, "grpcCallType: must be a string of 1 to 20 characters"},
    {f_gql_operation_type, "gqlOperationType: must be a string of 1 to 20 characters"},
    {f_ws_direction, "wsDirection: must be a string of 1 to 20 characters"},
    {f_ws_frame_type, "wsFrameType: must be a string of 1 to 20 characters"},
};

enum class product {
  none,
  api,
  agentic_api,
  ai_agent,
  mcp_server,
  grpc_api,
  graphql_api,
  websocket_api,
  mqtt_broker,
  bad
};

product product_of(const rj::Value* v) {
  if (is_null(v)) return product::none;
  if (!v->IsString()) return product::bad;
  const std::string_view s = view(*v);
  if (is(s, "API")) return product::api;
  if (is(s, "AGENTIC_API")) return product::agentic_api;
  if (is(s, "AI_AGENT")) return product::ai_agent;
  if (is(s, "MCP_SERVER")) return product::mcp_server;
  if (is(s, "GRPC_API")) return product::grpc_api;
  if (is(s, "GRAPHQL_API")) return product::graphql_api;
  if (is(s, "WEBSOCKET_API")) return product::websocket_api;
  if (is(s, "MQTT_BROKER")) return product::mqtt_broker;
  return product::bad;
}

bool valid_execution_status(const rj::Value& v) {
  if (!v.IsString()) return false;
  const std::string_view s = view(v);
  return is(s, "SUCCESS") || is(s, "PARTIAL") || is(s, "TIMEOUT") || is(s, "ERROR") || is(s, "VALIDATION_FAILED") ||
         is(s, "FAILED") || is(s, "FAILURE") || is(s, "CANCELLED") || is(s, "PENDING") || is(s, "BLOCKED") ||
         is(s, "HITL_REQUIRED");
}

const char* check_trace(const rj::Value& t) {
  if (!t.IsObject()) return "trace: must be an object";
  for (const auto& m : t.GetObject()) {
    const std::string_view key = view(m.name);
    if (!(is(key, "traceparent") || is(key, "tracestate") || is(key, "xTraceId") || is(key, "xRequestId"))) {
      return "trace: members are traceparent, tracestate, xTraceId and xRequestId only";
    }
    if (m.value.IsNull()) continue;
    if (!m.value.IsString() || cut_at(view(m.value), max_trace_member_chars) != m.value.GetStringLength()) {
      return "trace: members must be strings of at most 512 characters";
    }
  }
  return nullptr;
}

bool present(const rj::Value* v) { return !is_null(v) && (!v->IsString() || v->GetStringLength() > 0); }

const char* check_requirements(product p, const rj::Value* const (&f)[field_count]) {
  switch (p) {
    case product::mcp_server:
      if (!present(f[f_tool_name])) return "toolName: required for productType MCP_SERVER";
      if (!present(f[f_agent_id])) return "agentId: required for productType MCP_SERVER";
      return nullptr;
    case product::grpc_api:
      if (!present(f[f_grpc_service])) return "grpcService: required for productType GRPC_API";
      if (!present(f[f_grpc_method])) return "grpcMethod: required for productType GRPC_API";
      return nullptr;
    case product::graphql_api:
      if (!present(f[f_gql_operation_type])) return "gqlOperationType: required for productType GRAPHQL_API";
      return nullptr;
    case product::websocket_api:
      if (!present(f[f_ws_connection_id])) return "wsConnectionId: required for productType WEBSOCKET_API";
      return nullptr;
    case product::ai_agent:
      if (!present(f[f_agent_id])) return "agentId: required for productType AI_AGENT";
      if (!present(f[f_session_id])) return "sessionId: required for productType AI_AGENT";
      return nullptr;
    default:
      return nullptr;
  }
}

}  // namespace

const char* check_protocol_fields(const rj::Value* (&f)[field_count], rj::Value (&cut)[field_count],
                                  std::deque<std::string>& keep, bool& changed) {
  const product p = product_of(f[f_product_type]);
  if (p == product::bad) {
    return "productType: must be one of API, AGENTIC_API, AI_AGENT, MCP_SERVER, GRPC_API, GRAPHQL_API, "
           "WEBSOCKET_API, MQTT_BROKER";
  }
  if (!is_null(f[f_execution_status]) && !valid_execution_status(*f[f_execution_status])) {
    return "executionStatus: must be SUCCESS, PARTIAL, TIMEOUT, ERROR, VALIDATION_FAILED, FAILED, FAILURE, "
           "CANCELLED, PENDING, BLOCKED or HITL_REQUIRED";
  }
  for (const auto& l : truncated_fields) {
    const rj::Value* v = f[l.index];
    if (is_null(v)) continue;
    if (!v->IsString()) return l.error;
    const std::string_view s = view(*v);
    const std::size_t end = cut_at(s, l.max_chars);
    if (end == s.size()) continue;
    const auto& kept = keep.emplace_back(s.substr(0, end));
    cut[l.index].SetString(rj::StringRef(kept.data(), static_cast<rj::SizeType>(kept.size())));
    f[l.index] = &cut[l.index];
    changed = true;
  }
  for (const auto& e : enum_fields) {
    if (!is_null(f[e.index]) && !short_string(*f[e.index], max_enum_chars)) return e.error;
  }
  if (!is_null(f[f_execution_duration_ms]) && !non_negative_number(*f[f_execution_duration_ms])) {
    return "executionDurationMs: must be a number >= 0";
  }
  if (!is_null(f[f_message_count]) && !non_negative_integer(*f[f_message_count])) {
    return "messageCount: must be an integer >= 0";
  }
  if (!is_null(f[f_grpc_status_code]) && !non_negative_integer(*f[f_grpc_status_code])) {
    return "grpcStatusCode: must be an integer >= 0";
  }
  if (!is_null(f[f_gql_complexity]) && !non_negative_number(*f[f_gql_complexity])) {
    return "gqlComplexity: must be a number >= 0";
  }
  if (!is_null(f[f_gql_has_errors]) && !f[f_gql_has_errors]->IsBool()) return "gqlHasErrors: must be true or false";
  if (!is_null(f[f_trace])) {
    if (const char* err = check_trace(*f[f_trace])) return err;
  }
  return check_requirements(p, f);
}

}  // namespace aforo::core::pipeline_detail
