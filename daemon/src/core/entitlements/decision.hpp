// The answer to POST /v1/check (docs/design/decision-contract.md#response): the decision value and its JSON encoding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/entitlements/money.hpp"
#include "core/json/escape.hpp"

namespace aforo::core::entitlements {

enum class verdict : std::uint8_t { allow, throttle, block };
enum class reason : std::uint8_t {
  ok,
  quota_warning,
  quota_exceeded,
  feature_not_entitled,
  subscription_inactive,
  unknown_customer,
  margin_alert,
  margin_throttle,
  margin_block,
};
/// The margin guard's level for this customer: none, L1 (alert), L2 (throttle), L3 (block).
enum class margin_level : std::uint8_t { none, l1, l2, l3 };

[[nodiscard]] std::string_view to_string(verdict v);       ///< "allow" | "throttle" | "block"
[[nodiscard]] std::string_view to_string(reason r);        ///< "ok", "quota_warning", ...
[[nodiscard]] std::string_view to_string(margin_level m);  ///< "NONE" | "L1" | "L2" | "L3"

/// A small fixed list of headers with inline values: building a decision never allocates.
class header_list {
 public:
  static constexpr std::size_t max_headers = 8;
  static constexpr std::size_t max_value = 47;

  struct field {
    std::string_view name;          ///< static strings only
    char value_buf[max_value + 1];  // only the first value_len bytes are meaningful
    std::uint8_t value_len = 0;
    [[nodiscard]] std::string_view value() const { return {value_buf, value_len}; }
  };

  /// Adds a header (value truncated to 47 chars; ignored past 8 headers).
  void add(std::string_view name, std::string_view value);
  void add(std::string_view name, std::int64_t value);

  /// The value of a header, if present (exact name).
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] const field* begin() const { return fields_; }
  [[nodiscard]] const field* end() const { return fields_ + size_; }

 private:
  field fields_[max_headers];
  std::size_t size_ = 0;
};

/// One decision. The string views point into the snapshot (plan, feature, metric) and the check
/// request (feature override): keep both alive until the decision is encoded.
struct decision {
  verdict kind = verdict::allow;
  bool allowed = true;
  int status = 200;  ///< what the plugin answers when not allowed
  reason why = reason::ok;
  std::optional<std::string_view> plan;     ///< absent for an unknown customer
  std::optional<std::string_view> feature;  ///< absent when the request maps to no feature
  std::optional<std::int64_t> limit;        ///< absent when unlimited / no quota applies
  std::optional<std::int64_t> remaining_quota;
  std::optional<std::int64_t> quota_reset;  ///< unix seconds
  margin_level margin = margin_level::none;
  std::optional<std::int64_t> margin_bp;  ///< margin in basis points when a guard applies
  std::int64_t retry_after = 0;           ///< seconds; > 0 only on a 429
  bool shadow = false;                    ///< mode shadow: would have denied, allowed anyway
  std::string_view cache = "hit";         ///< "hit" | "stale" | "miss"
  /// A decision lease (see decision_engine): the plugin may admit this many further requests of
  /// the same customer and key within lease_ttl_ms without asking; 0 = no lease.
  std::int64_t lease = 0;
  std::int64_t lease_ttl_ms = 0;
  /// What the lease covers besides customer, service, route, method: "route" (every path),
  /// "prefix" (paths under lease_prefix) or "path" (this path only).
  std::string_view lease_scope = "route";
  std::string_view lease_prefix;  ///< points into the snapshot's rules
  /// A deny's message and body from an upstream decider (Aforo's API): "message" replaces the
  /// plugin's default message; "body" (a JSON object) is returned to the client as is. Empty = none.
  std::string_view message;
  std::string_view body;
  /// The quota ledger could not answer yet (units being reserved): not a decision to send; the
  /// caller decides again once the reservation is answered.
  bool quota_pending = false;
  /// The quota counted this request's quantity (a limited feature, allowed).
  bool quota_consumed = false;
  header_list headers;           ///< for the client response
  header_list upstream_headers;  ///< for the request sent upstream
  // For metering, not part of the JSON:
  std::string_view metric;  ///< the rule's metric; empty = the plugin's default
  micros unit_cost = 0;     ///< the rule's cost per unit
};

/// Appends the decision as the JSON of docs/design/decision-contract.md#response to out (reuse one buffer: no
/// allocation once it has grown). Keys without a value (plan, feature, remaining_quota, quota_reset) are omitted
/// rather than null, because Lua's cjson decodes null to a truthy sentinel. "shadow":true is
/// added only in shadow mode; "lease":{"requests":N,"ttl_ms":T,"scope":"route"|"prefix"|"path"}
/// (with "prefix":P for scope prefix) only when a lease is granted. Thread-safe.
void encode_decision(const decision& d, std::string& out);

/// The JSON string escaper, kept visible here for the decision's callers (core/json/escape.hpp).
using json::append_json_string;

}  // namespace aforo::core::entitlements
