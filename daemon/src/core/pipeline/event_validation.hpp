// Parses and validates usage events posted to POST /v1/ingest/batch and /v1/ingest
// (docs/design/ingest-contract.md#local-ingest).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::core {

/// Field limits of docs/design/event-fields.md#required; shared by the validator and its tests.
inline constexpr std::size_t max_customer_id_chars = 64;
inline constexpr std::size_t max_metric_name_chars = 255;
inline constexpr std::size_t max_idempotency_key_chars = 255;
inline constexpr std::size_t max_short_string_chars = 255;  ///< metadata strings
/// Aforo's endpointPath limit. A longer path is truncated to this many bytes (before a UTF-8
/// character, never inside one), never a reason to reject the event; see normalize_endpoint_path.
inline constexpr std::size_t max_endpoint_path_bytes = 512;
inline constexpr std::size_t max_http_method_chars = 16;
inline constexpr double max_quantity_exclusive = 1e14;  ///< 14 integer digits
inline constexpr int max_quantity_decimals = 6;

/// One event the sidecar takes custody of. Its strings are views into the ingest_parse_result that
/// holds it (the posted body, parsed in place, and the events that had to be re-serialized): valid
/// while that result, or a copy or move of it, lives.
/// `json` is the event re-serialized compactly: only the fields of docs/design/event-fields.md at the top level, in
/// that order (unknown top-level fields and nulls are dropped, so Aforo never rejects a whole batch
/// for them); `metadata` keeps its unknown keys (a free-form map) but drops nulls. An event posted in
/// exactly that form (as the plugin builds it) is forwarded as posted: the same bytes, not rewritten.
struct accepted_event {
  std::string_view json;
  std::string_view idempotency_key;
  std::string_view customer_id;
  std::string_view metric_name;
  double quantity = 0;
  std::optional<double> cost;  ///< metadata.cost, when present
  /// What discovery and the margin guard read (what `json` holds; empty when absent): httpMethod,
  /// endpointPath, metadata.service and metadata.route.
  std::string_view http_method;
  std::string_view endpoint_path;
  std::string_view service;
  std::string_view route;
  /// The protocol dimensions (docs/design/event-fields.md#optional) that discovery names operations by (as `json`
  /// holds them, after truncation; empty when absent): productType, grpcService/grpcMethod,
  /// gqlOperationType/gqlOperationName and toolName.
  std::string_view product_type;
  std::string_view grpc_service;
  std::string_view grpc_method;
  std::string_view gql_operation_type;
  std::string_view gql_operation_name;
  std::string_view tool_name;
};

/// A rejected event: its index in the posted `events` array and why.
struct event_error {
  std::uint32_t index = 0;
  std::string message;
};

/// Whole-request failures. The HTTP status each one maps to is `status_for(...)`.
enum class ingest_request_error {
  none,
  malformed_json,   ///< 400
  not_an_object,    ///< 400
  missing_events,   ///< 400: no `events` array
  too_many_events,  ///< 413: more than max_batch_events; the sender should split the batch
};

/// Outcome of parsing one request body. With `error != none` nothing was taken.
struct ingest_parse_result {
  ingest_request_error error = ingest_request_error::none;
  std::string error_message;             ///< for the 400/413 body, when error != none
  std::vector<accepted_event> accepted;  ///< in posted order
  std::vector<event_error> errors;       ///< in posted order
  std::shared_ptr<const void> storage;   ///< what the accepted events' views point into
  std::size_t rewritten = 0;             ///< accepted events re-serialized, not forwarded as posted
};

/// endpointPath as forwarded: every byte that is not part of a valid UTF-8 sequence percent-encoded
/// ("%FF", as the plugin does: the form a client sent it in before the gateway decoded it), then
/// truncated to max_endpoint_path_bytes before a character. nullopt when `path` is already that.
[[nodiscard]] std::optional<std::string> normalize_endpoint_path(std::string_view path);

/// HTTP status for a whole-request error: 400, or 413 for too_many_events; 202 for none.
[[nodiscard]] int status_for(ingest_request_error error) noexcept;

/// Parses a `{"events":[...]}` body and validates every event. Linear in the body size; one parse, in
/// place in `body` (which the result keeps), and no per-event allocation for an event forwarded as posted.
/// A string that is not valid UTF-8 rejects only its event (checked on the re-serialized event;
/// dropped unknown fields are not checked). Thread-safe (no shared state).
[[nodiscard]] ingest_parse_result parse_ingest_batch(std::string body, std::size_t max_batch_events);

/// Parses a single-event body (POST /v1/ingest); a bad event is reported as index 0.
[[nodiscard]] ingest_parse_result parse_ingest_single(std::string body);

/// The 202 body: `{"accepted":N,"failed":M,"errors":[{"index":i,"message":"..."}]}`.
[[nodiscard]] std::string build_ingest_response(std::size_t accepted, const std::vector<event_error>& errors);

/// The 400/413 body: `{"error":{"code":"bad_request"|"payload_too_large","message":"..."}}`.
[[nodiscard]] std::string build_ingest_error_body(ingest_request_error error, std::string_view message);

}  // namespace aforo::core
