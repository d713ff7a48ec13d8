// A format-neutral document tree (maps, sequences, scalar text) that JSON and YAML snapshots are
// converted into, so one validator builds the snapshot from either format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::core::entitlements {

/// Scalars keep their source text (numbers too), so decimals stay exact.
struct doc_node {
  enum class kind : std::uint8_t { null, scalar, map, seq };

  kind type = kind::null;
  std::string text;                ///< scalar text ("true", "42", "0.004", "cust_acme")
  std::vector<std::string> keys;   ///< map keys in source order
  std::vector<doc_node> children;  ///< map values (parallel to keys) or sequence items

  [[nodiscard]] bool is_null() const { return type == kind::null; }
  [[nodiscard]] bool is_scalar() const { return type == kind::scalar; }
  [[nodiscard]] bool is_map() const { return type == kind::map; }
  [[nodiscard]] bool is_seq() const { return type == kind::seq; }

  /// The map value under key, or null when absent (or not a map).
  [[nodiscard]] const doc_node* find(std::string_view key) const {
    if (type != kind::map) return nullptr;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return &children[i];
    }
    return nullptr;
  }
};

}  // namespace aforo::core::entitlements
