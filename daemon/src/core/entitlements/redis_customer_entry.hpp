// One customer's entry in the Redis edge cache: the customer as JSON in the snapshot's own shape
// ({"version":..,"customers":{id:{...}}}), so it is read back with the snapshot parser.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/entitlements/snapshot.hpp"

namespace aforo::core::entitlements {

/// The entry JSON for a customer of snapshot `version`. Pure, thread-safe.
[[nodiscard]] std::string customer_entry_json(const customer& c, std::string_view version);

/// A parsed entry: the customer and the snapshot version it came from.
struct customer_entry {
  customer value;
  std::string version;
};

/// Parses an entry made by customer_entry_json; nullopt if it is malformed or holds no single
/// customer. Pure, thread-safe.
[[nodiscard]] std::optional<customer_entry> parse_customer_entry(std::string_view json);

}  // namespace aforo::core::entitlements
