// The body of POST /v1/check (contracts §2), parsed in place without allocating.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aforo::core::entitlements {

/// A parsed check request. The views point into the body passed to parse_check_request, which
/// must outlive this struct.
struct check_request {
  std::string_view customer_id;             ///< required, 1..64 chars
  std::optional<std::string_view> feature;  ///< the plugin's explicit feature; null/absent = map it
  std::string_view service;
  std::string_view route;
  std::string_view method;
  std::string_view path;
  std::string_view request_id;
  std::int64_t quantity = 1;                ///< integer 0..10^12
  /// Requests the plugin admitted under the previous decision lease of this customer and key and
  /// has not reported yet (decision_engine adds them to the quota counter); integer 0..10^12.
  std::int64_t leased = 0;
};

/// Field limits (characters).
inline constexpr std::size_t max_customer_id_len = 64;
inline constexpr std::size_t max_name_len = 255;     ///< feature, service, route, request_id
inline constexpr std::size_t max_method_len = 16;
inline constexpr std::size_t max_path_len = 8192;
inline constexpr std::int64_t max_quantity = 1'000'000'000'000;

/// Parses body in place (RapidJSON insitu SAX: escapes are decoded inside the buffer, so body is
/// modified; nothing is allocated beyond 3 bytes of padding appended to body and removed again). Unknown keys are ignored; null means absent. Returns
/// nullopt on success, else a message for a 400 ("malformed JSON at offset 12: ...",
/// "customer_id is required", "quantity must be an integer >= 0", "path is longer than 8192 ...").
/// Thread-safe (no shared state).
[[nodiscard]] std::optional<std::string> parse_check_request(std::string& body, check_request& out);

}  // namespace aforo::core::entitlements
