// The body of POST /v1/check (docs/design/decision-contract.md#request), parsed in place without allocating.
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
  /// The protocol operation the plugin identified (GraphQL operation name, MCP tool, gRPC
  /// Service/Method); feature rules with `match.operation` compare it. Empty when absent.
  std::string_view operation;
  std::int64_t quantity = 1;  ///< integer 0..10^12
  /// Requests the plugin admitted under the previous decision lease of this customer and key and
  /// has not reported yet (decision_engine adds them to the quota counter); integer 0..10^12.
  std::int64_t leased = 0;
  /// Units of this key's ended leases the plugin never admitted (replaced, ended by a deny, or
  /// expired) and not reported yet: quota_ledger::release gives them back; integer 0..10^12.
  std::int64_t lease_unused = 0;
  /// The request carried lease_unused (0 included): its client reports what its leases leave
  /// unadmitted. Leases drawn from reserved units go only to such clients (quota_ledger::
  /// lease_needs_reports): a client that ignores them would leave them set aside, counted as used.
  bool reports_unused = false;
  /// Id of the lease report this check carries (its leased and lease_unused), at most 64 chars;
  /// a report sent again keeps its id and counts (cumulative): see lease_reports. Empty = none.
  std::string_view report_id;
  /// The report was sent before (its check failed): the sidecar may have applied it.
  bool report_resent = false;
  /// A background renewal: the check's own request was already admitted under a lease.
  bool renewal = false;
};

/// A check_request whose fields own their text: for a decision made after the request buffer is gone
/// (an asynchronous shared-store lookup, a reservation, an upstream call).
struct owned_check_request {
  std::string customer_id, feature, service, route, method, path, request_id, operation, report_id;
  bool has_feature = false;
  std::int64_t quantity = 1;
  std::int64_t leased = 0;
  std::int64_t lease_unused = 0;
  bool reports_unused = false;
  bool report_resent = false;
  bool renewal = false;

  explicit owned_check_request(const check_request& r)
      : customer_id(r.customer_id),
        feature(r.feature.value_or("")),
        service(r.service),
        route(r.route),
        method(r.method),
        path(r.path),
        request_id(r.request_id),
        operation(r.operation),
        report_id(r.report_id),
        has_feature(r.feature.has_value()),
        quantity(r.quantity),
        leased(r.leased),
        lease_unused(r.lease_unused),
        reports_unused(r.reports_unused),
        report_resent(r.report_resent),
        renewal(r.renewal) {}

  /// Views into this object: valid while it lives.
  [[nodiscard]] check_request view() const {
    check_request r;
    r.customer_id = customer_id;
    if (has_feature) r.feature = std::string_view(feature);
    r.service = service;
    r.route = route;
    r.method = method;
    r.path = path;
    r.request_id = request_id;
    r.operation = operation;
    r.quantity = quantity;
    r.leased = leased;
    r.lease_unused = lease_unused;
    r.reports_unused = reports_unused;
    r.report_id = report_id;
    r.report_resent = report_resent;
    r.renewal = renewal;
    return r;
  }
};

/// Field limits (characters).
inline constexpr std::size_t max_customer_id_len = 64;
inline constexpr std::size_t max_name_len = 255;  ///< feature, service, route, request_id
inline constexpr std::size_t max_method_len = 16;
inline constexpr std::size_t max_path_len = 8192;
/// A gRPC Service/Method is up to 255 + 1 + 128 characters (Aforo's grpcService and grpcMethod).
inline constexpr std::size_t max_operation_len = 512;
inline constexpr std::size_t max_report_id_len = 64;
inline constexpr std::int64_t max_quantity = 1'000'000'000'000;

/// Parses body in place (RapidJSON insitu SAX: escapes are decoded inside the buffer, so body is
/// modified; nothing is allocated beyond 3 bytes of padding appended to body and removed again). Unknown keys are
/// ignored; null means absent. Returns nullopt on success, else a message for a 400 ("malformed JSON at offset 12:
/// ...", "customer_id is required", "quantity must be an integer >= 0", "path is longer than 8192 ..."). Thread-safe
/// (no shared state).
[[nodiscard]] std::optional<std::string> parse_check_request(std::string& body, check_request& out);

}  // namespace aforo::core::entitlements
